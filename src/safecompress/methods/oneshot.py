"""``oneshot``: train dense, prune once by magnitude to the target density at ``method.params.prune_end`` of
training, then fine-tune the sparse model for the rest (the classic prune-then-fine-tune baseline)."""

from __future__ import annotations

from pydantic import Field

from ..params import Params
from .base import MethodContext, register_method
from .gmp import GMP


@register_method("oneshot")
class OneShot(GMP):
    class Params(Params):
        prune_end: float = Field(0.6, gt=0, le=1, description="prune once at this fraction of training")

    def prune_window(self, ctx: MethodContext) -> tuple[float, float]:
        end = self.params(ctx.cfg).prune_end
        return end, end
