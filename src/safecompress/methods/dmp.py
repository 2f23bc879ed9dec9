"""``dmp``: Distillation for Membership Privacy (Shejwalkar & Houmansadr, AAAI 2021) into a sparse student.

1. A dense teacher is trained on the private training set (cached in the run folder like ``distill``).
2. The teacher labels a *reference* set that is disjoint from the private data — here the run's
   ``val`` and ``probe_nonmembers`` parts, which the audit never uses — with its softened outputs.
3. A sparse student (RigL dynamics at ``sparse.density``) learns only from those soft labels
   (``T²·KL`` at ``method.params.temperature``); it never sees a private sample or a private label.

The optional entropy filter of the paper (keep the reference samples the teacher is most certain
about, ``method.params.keep`` < 1) reduces what the soft labels reveal about the private set.
The served model is the student; its "train" numbers in the report are on the private set, and its
``val_accuracy`` is *not* held out (val is part of the student's reference data).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch
from pydantic import Field

from ..params import Params
from ..train import predict_logits
from .base import MethodContext, MethodResult, register_method
from .distill import Distill, _Distil
from .rigl import RigL

log = logging.getLogger(__name__)

REFERENCE_PARTS = ("val", "probe_nonmembers")


@register_method("dmp")
class DMP(Distill):
    needs_parts = ("train", *REFERENCE_PARTS)

    class Params(Params):
        temperature: float = Field(4.0, gt=0, description="softmax temperature of the teacher's soft labels")
        keep: float = Field(1.0, gt=0, le=1, description="fraction of reference samples kept (lowest teacher entropy)")

    @classmethod
    def config_problems(cls, cfg) -> list[str]:
        from ..defences import DEFENCES

        defence = DEFENCES.get(cfg.defence.name)
        if set(defence.needs_parts) - {"train"} or cfg.defence.name == "memguard":
            return [
                f"method 'dmp' cannot take defence {cfg.defence.name!r}: the student trains on the val and "
                "probe_nonmembers parts, so a defence that holds them out as non-members (or selects on val) "
                "would treat training data as unseen; use a defence of the training loss (label_smoothing, "
                "confidence_penalty, relaxloss) or none"
            ]
        return []

    def train(self, ctx: MethodContext) -> MethodResult:
        p = self.params(ctx.cfg)
        teacher = self._teacher(ctx)
        ref = np.sort(np.concatenate([np.asarray(ctx.split[p]) for p in REFERENCE_PARTS]))
        with torch.no_grad():
            logits = predict_logits(teacher, ctx.X[torch.as_tensor(ref)], ctx.device).float()
        if p.keep < 1.0:
            p = torch.softmax(logits, 1)
            entropy = -(p * p.clamp_min(1e-12).log()).sum(1)
            keep = torch.argsort(entropy, stable=True)[: max(1, int(round(p.keep * len(ref))))]
            ref, logits = ref[np.sort(keep.numpy())], logits[torch.as_tensor(np.sort(keep.numpy()))]
        y = ctx.y.clone()
        y[torch.as_tensor(ref)] = logits.argmax(1)  # used only for the student's running accuracy
        student_ctx = dataclasses.replace(ctx, y=y, split={"train": ref})
        self._soft = _Distil(teacher, alpha=1.0, temperature=p.temperature)
        result = RigL.train(self, student_ctx)
        agree = float((logits.argmax(1) == ctx.y[torch.as_tensor(ref)]).float().mean())
        result.report["dmp"] = {
            "reference_samples": int(len(ref)),
            "temperature": p.temperature,
            "keep": p.keep,
            "teacher_reference_accuracy": round(agree, 4),
        }
        log.info("dmp: student trained on %d teacher-labelled reference samples", len(ref))
        return result

    def extra_callbacks(self, ctx: MethodContext) -> list:
        return [self._soft]
