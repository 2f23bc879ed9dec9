"""``gmp``: gradual magnitude pruning (Zhu & Gupta 2017) — start dense, prune by magnitude on a cubic
schedule between ``method.params.prune_start`` and ``prune_end``, then train at the target density."""

from __future__ import annotations

from pydantic import Field
from torch import nn

from ..params import Params
from ..sparse.engine import GradualPruning, SparseEngine
from .base import MethodContext, register_method
from .sparse_base import SparseMethod, target_counts


@register_method("gmp")
class GMP(SparseMethod):
    class Params(Params):
        prune_start: float = Field(0.1, ge=0, lt=1, description="start pruning at this fraction of training")
        prune_end: float = Field(0.6, gt=0, le=1, description="reach the density at this fraction of training")

    def prune_window(self, ctx: MethodContext) -> tuple[float, float]:
        p = self.params(ctx.cfg)
        return p.prune_start, p.prune_end

    def make_engine(self, ctx: MethodContext, model: nn.Module) -> SparseEngine:
        sp = ctx.cfg.sparse
        total = ctx.total_steps()
        start, end = self.prune_window(ctx)
        start_step, end_step = int(start * total), max(1, int(end * total))
        return GradualPruning(
            model,
            target_counts(ctx, model),
            min(start_step, end_step),
            end_step,
            sp.update_every,
            sp.distribution,
            sp.density,
            seed=ctx.cfg.seed,
        )
