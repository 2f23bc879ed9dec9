"""``oneshot``: train dense, prune once by magnitude to the target density at ``sparse.prune_end`` of
training, then fine-tune the sparse model for the rest (the classic prune-then-fine-tune baseline)."""

from __future__ import annotations

from .base import MethodContext, register_method
from .gmp import GMP


@register_method("oneshot")
class OneShot(GMP):
    def prune_window(self, ctx: MethodContext) -> tuple[float, float]:
        return ctx.cfg.sparse.prune_end, ctx.cfg.sparse.prune_end
