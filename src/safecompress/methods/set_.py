"""``set``: Sparse Evolutionary Training (Mocanu et al. 2018) — magnitude prune per sign, random grow."""

from __future__ import annotations

from .base import register_method
from .sparse_base import DynamicSparseMethod


@register_method("set")
class SET(DynamicSparseMethod):
    prune_default = "set"
    grow_default = "random"
