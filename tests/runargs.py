"""The tiny runs the tests launch: the ``ci`` preset on scikit-learn's digits with an MLP, no augmentation and
no audit, plus each test module's own settings (one place for the shared part)."""

from __future__ import annotations

from typing import Any

BASE: dict[str, Any] = {
    "data.name": "digits",
    "model.name": "mlp",
    "train.augment": "false",
    "audit.enabled": "false",
}


def ci_overrides(settings: dict[str, Any] | None = None, *, base: dict[str, Any] = BASE) -> list[str]:
    """``["k=v", ...]`` for the base settings updated by ``settings`` (for ``load_config(overrides=...)``)."""
    return [f"{key}={value}" for key, value in {**base, **(settings or {})}.items()]


def ci_args(settings: dict[str, Any] | None = None, *, base: dict[str, Any] = BASE) -> list[str]:
    """``["--preset", "ci", "--set", "k=v", ...]``: the same settings as CLI arguments."""
    args = ["--preset", "ci"]
    for item in ci_overrides(settings, base=base):
        args += ["--set", item]
    return args
