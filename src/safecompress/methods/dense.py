"""``dense``: the uncompressed reference — ordinary training of the full model."""

from __future__ import annotations

from .base import Method, MethodContext, MethodResult, register_method


@register_method("dense")
class Dense(Method):
    def train(self, ctx: MethodContext) -> MethodResult:
        model = ctx.new_model()
        trainer = ctx.new_trainer(model)
        ctx.restore(trainer)
        X, y = ctx.part("train")
        state = trainer.fit(X, y)
        return MethodResult(model, {"epochs": state.epoch, "steps": state.step})
