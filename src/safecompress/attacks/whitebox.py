"""White-box attacks.

* ``whitebox`` — the SafeCompress paper's white-box attacker (WMIA; after Nasr et al., "Comprehensive
  Privacy Analysis of Deep Learning", S&P 2019, and ML-Doctor): an MLP on the output vector, the
  per-sample loss, the last layer's per-sample gradient (closed form (softmax − onehot)·hᵀ from one
  forward pass) and the ±1 label, trained on reference models' members vs non-members.
* ``grad_norm`` — the norm of the per-sample gradient of the loss w.r.t. all parameters (members have
  small gradients; e.g. Nasr et al. 2019, Rezaei & Liu 2021), threshold calibrated on a reference model.
"""

from __future__ import annotations

import torch

from . import signals
from .base import Attack, register_attack
from .features import last_layer_gradient, logits_and_penultimate
from .grad_norms import per_sample_grad_norms
from .knowledge import Knowledge
from .learned import LearnedAttack


@register_attack("whitebox")
class WhiteBoxAttack(LearnedAttack):
    white_box = True
    citation = "Nasr et al., S&P 2019 (the SafeCompress WMIA attacker)"
    max_grad_features = 512

    def features(self, target, X, y, n_classes):
        logits, h = logits_and_penultimate(target.module, X, target.device)
        g = last_layer_gradient(logits, h, y).flatten(1)
        if g.shape[1] > self.max_grad_features:  # keep the attack MLP small: fixed random projection
            gen = torch.Generator().manual_seed(1234)
            proj = torch.randn(g.shape[1], self.max_grad_features, generator=gen) / self.max_grad_features**0.5
            g = g @ proj
        return torch.cat(
            [torch.softmax(logits, 1), signals.loss(logits, y)[:, None], g, signals.onehot_pm1(y, n_classes)], 1
        )


@register_attack("grad_norm")
class GradNormAttack(Attack):
    white_box = True
    citation = "Nasr et al., S&P 2019; Rezaei & Liu, CVPR 2021"
    needs_references = 1
    simulatable = True
    defaults = {"calibration_samples": 2000}

    def score(self, target, X, y):
        return -per_sample_grad_norms(target.module, X, y, target.device).double().numpy()

    def fit(self, knowledge: Knowledge) -> "Attack":
        if knowledge.references is not None:
            self.calibrate_threshold(knowledge, self.params["calibration_samples"])
        return self
