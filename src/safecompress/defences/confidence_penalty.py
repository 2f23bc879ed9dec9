"""Confidence penalty: subtract β·entropy of the prediction from the loss (Pereyra et al., 2017)."""

from __future__ import annotations

import torch.nn.functional as F

from ..params import NonNegative, Params
from ..train import Callback
from .base import Defence, register_defence


class _EntropyBonus(Callback):
    def __init__(self, beta: float):
        self.beta = beta

    def extra_loss(self, trainer, xb, yb, logits):
        logp = F.log_softmax(logits, 1)
        entropy = -(logp.exp() * logp).sum(1).mean()
        return -self.beta * entropy


@register_defence("confidence_penalty")
class ConfidencePenalty(Defence):
    description = "loss − β·H(softmax): discourages over-confident outputs"

    class Params(Params):
        beta: NonNegative = 0.5

    def callbacks(self, ctx):
        return [_EntropyBonus(float(self.params["beta"]))]
