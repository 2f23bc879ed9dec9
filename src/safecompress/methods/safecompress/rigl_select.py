"""``rigl_select``: the ablation that gives RigL SafeCompress's privilege — and nothing else.

It is SafeCompress with exactly one candidate per round, the ordinary RigL update (magnitude prune,
gradient grow, ``sparse.update_fraction`` with the same decay), so the same simulated attackers test
the same model every ΔT steps and the same objective and final-model rule (``safecompress.final``,
``objective``, ``budget``, ``regularizer``) choose the result. Whatever SafeCompress gains over it comes
from its candidates; whatever they share is selection (early stopping when ``final: best_round``).
"""

from __future__ import annotations

import dataclasses

from ...config import CandidateStrategy
from ..base import MethodContext, register_method
from .method import SafeCompress


@register_method("rigl_select")
class RigLSelect(SafeCompress):
    def make_engine(self, ctx: MethodContext, model):
        one = [CandidateStrategy(prune="magnitude", grow="gradient", fraction=ctx.cfg.sparse.update_fraction)]
        sc = ctx.cfg.safecompress.model_copy(update={"candidates": one})
        return super().make_engine(dataclasses.replace(ctx, cfg=ctx.cfg.model_copy(update={"safecompress": sc})), model)
