"""Adversarial regularisation (Nasr et al., CCS 2018) as a stand-alone defence for any method.

The same min-max term SafeCompress can use in its loop (``safecompress.adversarial``): an inference
model learns to tell training batches from held-out non-members (``probe_nonmembers``), and the
model is penalised by β·log h(member) on its training batches.
"""

from __future__ import annotations

import numpy as np
import torch

from ..adversarial import AdversarialRegularizer
from ..params import Flag, NonNegative, Params
from .base import Defence, register_defence


@register_defence("advreg")
class AdvReg(Defence):
    description = "Nasr et al. min-max adversarial regularisation against a learned membership attacker"

    class Params(Params):
        beta: NonNegative = 1.0
        steps: NonNegative = 1
        warmup: NonNegative = 0.0
        with_loss: Flag = False

    needs_parts = ("train", "probe_nonmembers")

    def callbacks(self, ctx):
        idx = torch.as_tensor(np.asarray(ctx.split["probe_nonmembers"]))
        p = self.params
        return [
            AdversarialRegularizer(
                ctx.spec.n_classes,
                (ctx.X[idx], ctx.y[idx]),
                beta=float(p["beta"]),
                k=max(1, int(p["steps"])),
                start_step=int(float(p["warmup"]) * ctx.total_steps()),
                with_loss=bool(p["with_loss"]),
                seed=ctx.cfg.seed + 101,
            )
        ]
