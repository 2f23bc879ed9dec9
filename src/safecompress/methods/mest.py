"""``mest``: Memory-Economic Sparse Training (Yuan et al. 2021) — elastic mutation: prune by
|w| + λ·|g| (magnitude plus gradient), regrow at random; λ = ``method.params.grad_weight``."""

from __future__ import annotations

import functools

import torch
from pydantic import Field

from ..params import Params
from ..sparse.criteria import GROW, PRUNE, LayerState, require
from .base import MethodContext, register_method
from .sparse_base import DynamicSparseMethod


def mest_score(state: LayerState, grad_weight: float) -> torch.Tensor:
    return state.weight.abs() + grad_weight * require(state.grad, "gradient", "mest").abs()


@register_method("mest")
class MEST(DynamicSparseMethod):
    grow_default = "random"

    class Params(Params):
        grad_weight: float = Field(0.01, ge=0, description="the prune score is |w| + this * |grad|")

    def criteria(self, ctx: MethodContext):
        sp = ctx.cfg.sparse
        weight = self.params(ctx.cfg).grad_weight
        prune = PRUNE.get(sp.prune) if sp.prune else functools.partial(mest_score, grad_weight=weight)
        return prune, GROW.get(sp.grow or self.grow_default)
