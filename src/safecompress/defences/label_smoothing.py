"""Label smoothing: train on (1 − ε)·one-hot + ε/C targets (Szegedy et al., 2016)."""

from __future__ import annotations

import torch.nn.functional as F

from ..params import NonNegative, Params
from ..train import Callback
from .base import Defence, register_defence


class _SmoothTargets(Callback):
    def __init__(self, eps: float):
        self.eps = eps

    def extra_loss(self, trainer, xb, yb, logits):
        # ε · (CE against the uniform target − CE against the label): the trainer's CE plus this term is
        # exactly the cross-entropy against the smoothed target
        logp = F.log_softmax(logits, 1)
        return self.eps * (-logp.mean(1) + logp.gather(1, yb[:, None]).squeeze(1)).mean()


@register_defence("label_smoothing")
class LabelSmoothing(Defence):
    description = "cross-entropy against smoothed targets (1−ε)·onehot + ε/C"

    class Params(Params):
        epsilon: NonNegative = 0.1

    def check(self):
        if not self.params["epsilon"] <= 1:
            from ..errors import ConfigError

            raise ConfigError("defence 'label_smoothing': epsilon must be in [0, 1]")

    def callbacks(self, ctx):
        return [_SmoothTargets(float(self.params["epsilon"]))]
