"""Privacy attacks (one registered plugin per file): membership inference, attribute inference and
model inversion, and the attack contract.

Every module of this package is imported here (sorted), so a new attack is one new file with
``@register_attack``; see :mod:`safecompress.plugins` for attacks that live outside the package."""

from __future__ import annotations

from ..plugins import import_package
from .base import ATTACKS, Attack, AttackContext, BlackBoxTarget, WhiteBoxTarget, register_attack
from .references import ReferencePool

import_package(__name__, __path__)  # each module registers its attack(s)

__all__ = ["ATTACKS", "Attack", "AttackContext", "BlackBoxTarget", "WhiteBoxTarget", "ReferencePool", "register_attack"]
