"""Metric attacks: threshold one signal of the output.

* ``loss`` — Yeom et al., "Privacy Risk in Machine Learning", CSF 2018 (members have low loss).
* ``confidence`` — probability of the true label (Yeom et al. 2018; Salem et al. 2019).
* ``entropy`` — prediction entropy (Salem et al., ML-Leaks, NDSS 2019).
* ``m_entropy`` — modified entropy (Song & Mittal, "Systematic Evaluation of Privacy Risks of
  Machine Learning Models", USENIX Security 2021).

The threshold the attacker would use is calibrated on a reference (shadow) model's members and
non-members from the population — never on audit data.
"""

from __future__ import annotations

import numpy as np
import torch

from . import signals
from .base import Attack, AttackContext, BlackBoxTarget, register_attack


class _MetricAttack(Attack):
    references_needed = 1

    def signal(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, target: BlackBoxTarget, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        return self.signal(target.logits(X), y).double().numpy()

    def fit(self, ctx: AttackContext) -> "Attack":
        self.calibrate_threshold(ctx)
        return self


@register_attack("loss")
class LossAttack(_MetricAttack):
    citation = "Yeom et al., CSF 2018"

    def signal(self, logits, y):
        return -signals.loss(logits, y)


@register_attack("confidence")
class ConfidenceAttack(_MetricAttack):
    citation = "Yeom et al., CSF 2018; Salem et al., NDSS 2019"

    def signal(self, logits, y):
        return signals.confidence(logits, y)


@register_attack("entropy")
class EntropyAttack(_MetricAttack):
    citation = "Salem et al., ML-Leaks, NDSS 2019"

    def signal(self, logits, y):
        return -signals.entropy(logits)


@register_attack("m_entropy")
class ModifiedEntropyAttack(_MetricAttack):
    citation = "Song & Mittal, USENIX Security 2021"

    def signal(self, logits, y):
        return -signals.modified_entropy(logits, y)
