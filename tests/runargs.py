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


def ci_args(settings: dict[str, Any] | None = None, *, base: dict[str, Any] = BASE) -> list[str]:
    """``["--preset", "ci", "--set", "k=v", ...]`` for the base settings updated by ``settings``."""
    merged = {**base, **(settings or {})}
    args = ["--preset", "ci"]
    for key, value in merged.items():
        args += ["--set", f"{key}={value}"]
    return args
