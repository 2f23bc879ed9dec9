"""RelaxLoss (Chen et al., ICLR 2022): keep the training loss near a target level α instead of zero.

While the batch loss is above α the model descends as usual. Below α it alternates by epoch: on even
epochs it *ascends* (the loss is pushed back up towards α), on odd epochs it flattens the posterior:
correctly classified samples are trained towards a soft target that keeps the model's own confidence
on the true class and spreads the rest uniformly over the other classes, while misclassified ones
keep the ordinary cross-entropy. (The authors' code has per-dataset variants of this flattening
step; this is ours, with the same ascend-below-α schedule.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..params import NonNegative, Params
from ..train import Callback
from .base import Defence, register_defence


class _Relax(Callback):
    def __init__(self, alpha: float, n_classes: int):
        self.alpha, self.n_classes = alpha, n_classes

    def extra_loss(self, trainer, xb, yb, logits):
        ce = F.cross_entropy(logits, yb)
        if float(ce.detach()) > self.alpha:
            return None
        if trainer.state.epoch % 2 == 0:
            return -2.0 * ce  # trainer's CE + (−2 CE) = −CE: gradient ascent
        logp = F.log_softmax(logits, 1)
        with torch.no_grad():
            p = logp.exp()
            p_true = p.gather(1, yb[:, None])
            soft = ((1 - p_true) / max(self.n_classes - 1, 1)).expand_as(p).clone()
            soft.scatter_(1, yb[:, None], p_true)
            correct = (logits.argmax(1) == yb).float()
        flat = -(soft * logp).sum(1)
        target_ce = F.cross_entropy(logits, yb, reduction="none")
        new = correct * flat + (1 - correct) * target_ce
        return new.mean() - ce


@register_defence("relaxloss")
class RelaxLoss(Defence):
    description = "keep the training loss near α: ascend below it, flatten posteriors of correct samples"

    class Params(Params):
        alpha: NonNegative = 1.0

    def callbacks(self, ctx):
        return [_Relax(float(self.params["alpha"]), ctx.spec.n_classes)]
