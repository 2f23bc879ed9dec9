"""Privacy attacks (one registered plugin per file): membership inference, attribute inference and
model inversion, and the attack contract they share (:mod:`.base`).

Every module of this package is imported here (sorted), so a new attack is one new file with
``@register_attack``; see :mod:`safecompress.plugins` for attacks that live outside the package."""

from __future__ import annotations

from ..plugins import import_package
from .base import ATTACKS, Attack, register_attack
from .knowledge import Knowledge, Labelled, Queries
from .references import ReferencePool
from .result import AttackResult
from .targets import BlackBoxTarget, WhiteBoxTarget, target_view

import_package(__name__, __path__)  # each module registers its attack(s)

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackResult",
    "BlackBoxTarget",
    "Knowledge",
    "Labelled",
    "Queries",
    "ReferencePool",
    "WhiteBoxTarget",
    "register_attack",
    "target_view",
]
