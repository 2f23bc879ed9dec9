"""``mest``: Memory-Economic Sparse Training (Yuan et al. 2021) — elastic mutation: prune by
|w| + λ·|g| (magnitude plus gradient), regrow at random; λ = ``sparse.mest_grad_weight``."""

from __future__ import annotations

import functools

import torch

from ..sparse.criteria import GROW, PRUNE, LayerState, require
from .base import MethodContext, register_method
from .sparse_base import DynamicSparseMethod


def mest_score(state: LayerState, grad_weight: float) -> torch.Tensor:
    return state.weight.abs() + grad_weight * require(state.grad, "gradient", "mest").abs()


@register_method("mest")
class MEST(DynamicSparseMethod):
    grow_default = "random"

    def criteria(self, ctx: MethodContext):
        sp = ctx.cfg.sparse
        prune = PRUNE.get(sp.prune) if sp.prune else functools.partial(mest_score, grad_weight=sp.mest_grad_weight)
        return prune, GROW.get(sp.grow or self.grow_default)
