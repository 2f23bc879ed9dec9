"""``gmp``: gradual magnitude pruning (Zhu & Gupta 2017) — start dense, prune by magnitude on a cubic
schedule between ``sparse.prune_start`` and ``sparse.prune_end``, then train at the target density."""

from __future__ import annotations

from torch import nn

from ..sparse.engine import GradualPruning, SparseEngine
from .base import MethodContext, register_method
from .sparse_base import SparseMethod, target_counts


@register_method("gmp")
class GMP(SparseMethod):
    def prune_window(self, ctx: MethodContext) -> tuple[float, float]:
        return ctx.cfg.sparse.prune_start, ctx.cfg.sparse.prune_end

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
