"""Privacy attacks (one registered plugin per file): membership inference, attribute inference and
model inversion, and the attack contract."""

from __future__ import annotations

from . import attribute, inversion, label_only, learned, lira, metric, rmia, whitebox  # noqa: F401  (each registers itself)
from .base import ATTACKS, Attack, AttackContext, BlackBoxTarget, WhiteBoxTarget, register_attack
from .references import ReferencePool

__all__ = ["ATTACKS", "Attack", "AttackContext", "BlackBoxTarget", "WhiteBoxTarget", "ReferencePool", "register_attack"]
