"""Metric attacks: threshold one signal of the output.

* ``loss`` — Yeom et al., "Privacy Risk in Machine Learning", CSF 2018 (members have low loss).
* ``confidence`` — probability of the true label (Yeom et al. 2018; Salem et al. 2019).
* ``entropy`` — prediction entropy (Salem et al., ML-Leaks, NDSS 2019).
* ``m_entropy`` — modified entropy (Song & Mittal, "Systematic Evaluation of Privacy Risks of
  Machine Learning Models", USENIX Security 2021).

The threshold the attacker would use is calibrated on a reference (shadow) model's members and
non-members from the population — never on audit data. In the SafeCompress loop (knowledge without
references) a metric attack needs no fitting: the loop measures its AUC.
"""

from __future__ import annotations

import numpy as np
import torch

from . import signals
from .base import Attack, register_attack
from .knowledge import Knowledge
from .targets import BlackBoxTarget


class MetricAttack(Attack):
    needs_references = 1
    simulatable = True

    def signal(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, target: BlackBoxTarget, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        return self.signal(target.logits(X), y).double().numpy()

    def fit(self, knowledge: Knowledge) -> "Attack":
        if knowledge.references is not None:
            self.calibrate_threshold(knowledge)
        return self


@register_attack("loss")
class LossAttack(MetricAttack):
    citation = "Yeom et al., CSF 2018"

    def signal(self, logits, y):
        return -signals.loss(logits, y)


@register_attack("confidence")
class ConfidenceAttack(MetricAttack):
    citation = "Yeom et al., CSF 2018; Salem et al., NDSS 2019"

    def signal(self, logits, y):
        return signals.confidence(logits, y)


@register_attack("entropy")
class EntropyAttack(MetricAttack):
    citation = "Salem et al., ML-Leaks, NDSS 2019"

    def signal(self, logits, y):
        return -signals.entropy(logits)


@register_attack("m_entropy")
class ModifiedEntropyAttack(MetricAttack):
    citation = "Song & Mittal, USENIX Security 2021"

    def signal(self, logits, y):
        return -signals.modified_entropy(logits, y)
