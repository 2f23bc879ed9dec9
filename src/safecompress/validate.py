"""Checks of a run's inputs that need more than one part of the config (split sizes vs method and audit)."""

from __future__ import annotations

from typing import Any

AUDIT_PARTS = ("population", "audit_members", "audit_nonmembers")


def run_split_problems(cfg: Any, sizes: dict[str, int]) -> list[str]:
    """What in the split sizes (part -> count) the method, the defence or the audit cannot work with."""
    from .methods import needed_parts

    problems = []
    for part in needed_parts(cfg):
        if sizes.get(part, 0) == 0:
            problems.append(
                f"data.split.{part} is 0 samples but method {cfg.method.name!r} (defence "
                f"{cfg.defence.name!r}) trains with it; give it a count or fraction > 0"
            )
    if cfg.audit.enabled:
        for part in AUDIT_PARTS:
            if sizes.get(part, 0) == 0:
                problems.append(
                    f"data.split.{part} is 0 samples but the audit needs it; give it a count or "
                    "fraction > 0, or set audit.enabled=false"
                )
    return problems
