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
        from .attacks import ATTACKS

        # the attacker's population is the split's population less the canaries drawn from it
        known = {**sizes, "population": sizes.get("population", 0) - int(cfg.audit.canaries or 0)}
        for name in cfg.audit.attacks:
            attack = ATTACKS.get(name)(**cfg.audit.attack_params.get(name, {}))
            problems.extend(attack.split_problems(known))
    return problems
