"""``rigl``: Rigging the Lottery (Evci et al. 2020) — magnitude prune, grow by dense-gradient magnitude."""

from __future__ import annotations

from .base import register_method
from .sparse_base import DynamicSparseMethod


@register_method("rigl")
class RigL(DynamicSparseMethod):
    prune_default = "magnitude"
    grow_default = "gradient"
