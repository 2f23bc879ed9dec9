"""``distill``: knowledge distillation into a sparse student (Hinton et al., 2015).

A dense teacher is trained first with the run's recipe; then a sparse student (RigL dynamics at
``sparse.density``) is trained on the same data with
``(1 − α)·CE(student, y) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T))``
(``method.params.alpha``, ``method.params.temperature``). The teacher is cached in the run folder,
so a resumed run does not retrain it. Both models saw the training data: distillation here is a
*compression* baseline, not a privacy defence (DMP-style distillation on public data would be).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from pydantic import Field

from ..params import Params
from ..train import Callback, Trainer, epochs_for
from .base import MethodContext, MethodResult, register_method
from .rigl import RigL

log = logging.getLogger(__name__)


class _Distil(Callback):
    def __init__(self, teacher: torch.nn.Module, alpha: float, temperature: float):
        self.teacher, self.alpha, self.t = teacher.eval(), alpha, temperature

    def extra_loss(self, trainer, xb, yb, logits):
        with torch.no_grad():
            soft = F.log_softmax(self.teacher(xb) / self.t, 1)
        kl = F.kl_div(F.log_softmax(logits / self.t, 1), soft, log_target=True, reduction="batchmean")
        # the trainer already adds CE; reweight it to (1 − α)
        return self.alpha * (self.t**2 * kl - F.cross_entropy(logits, yb))


@register_method("distill")
class Distill(RigL):
    class Params(Params):
        alpha: float = Field(0.7, ge=0, le=1, description="weight of the teacher's soft targets")
        temperature: float = Field(4.0, gt=0, description="softmax temperature")

    def _teacher(self, ctx: MethodContext) -> torch.nn.Module:
        from ..checkpoint import load_tensors, save_tensors

        path = ctx.run_dir / "teacher.safetensors" if ctx.record else None
        teacher = ctx.new_model()
        if path is not None and path.exists():
            tensors, _ = load_tensors(path)
            teacher.load_state_dict(tensors)
            log.info("teacher loaded from %s", path)
            return teacher.to(ctx.device)
        trainer = Trainer(
            teacher,
            ctx.cfg.train,
            seed=ctx.cfg.seed + 1,
            device=ctx.device,
            augment=ctx.augment,
            flip=ctx.flip,
            epochs=epochs_for(ctx.cfg.train, len(ctx.split["train"])),
        )
        trainer.fit(*ctx.part("train"))
        if path is not None:
            save_tensors(path, {k: v.detach().cpu().contiguous() for k, v in teacher.state_dict().items()}, {})
        return teacher

    def extra_callbacks(self, ctx: MethodContext) -> list:
        p = self.params(ctx.cfg)
        return [_Distil(self._teacher(ctx), p.alpha, p.temperature)]

    def train(self, ctx: MethodContext) -> MethodResult:
        result = super().train(ctx)
        p = self.params(ctx.cfg)
        result.report["distill"] = {"alpha": p.alpha, "temperature": p.temperature}
        return result
