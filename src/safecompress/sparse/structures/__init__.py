"""How the sparse engine shapes its masks (``sparse.structure``): one registered structure per module.

``unstructured`` (the default) prunes and grows single weights; ``channel`` prunes and grows whole output units
(conv filters, Linear rows), so the trained model shrinks into a smaller dense network (:mod:`..shrink`)."""

from __future__ import annotations

from ...plugins import import_package
from .base import STRUCTURES, Structure, prune_and_grow

import_package(__name__, __path__)  # each module registers its structure

__all__ = ["STRUCTURES", "Structure", "prune_and_grow"]
