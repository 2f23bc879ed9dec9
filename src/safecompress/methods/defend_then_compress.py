"""``defend_then_compress``: the two-step pipeline a user would otherwise build — train a *defended*
dense model (the configured ``defence``, e.g. RelaxLoss or DP-SGD), prune it once by magnitude to
``sparse.density`` at ``method.params.prune_end`` of training, and fine-tune the sparse model for the rest
with the defence still on. It is ``oneshot`` that insists on a defence, so a comparison row can never
silently be an undefended model.
"""

from __future__ import annotations

from .base import MethodContext, MethodResult, register_method
from .oneshot import OneShot


@register_method("defend_then_compress")
class DefendThenCompress(OneShot):
    @classmethod
    def config_problems(cls, cfg) -> list[str]:
        if cfg.defence.name == "none":
            return [
                "method 'defend_then_compress' needs a defence: set defence.name (see `safecompress list "
                "defences`), or use method 'oneshot' for an undefended model"
            ]
        return []

    def train(self, ctx: MethodContext) -> MethodResult:
        result = super().train(ctx)
        result.report["pipeline"] = {"defence": ctx.cfg.defence.name, "prune_at": self.params(ctx.cfg).prune_end}
        return result
