"""``static``: a fixed random mask at the target density (ERK by default), never updated."""

from __future__ import annotations

from .base import register_method
from .sparse_base import DynamicSparseMethod


@register_method("static")
class Static(DynamicSparseMethod):
    updates = False
