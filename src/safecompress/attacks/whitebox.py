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
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from ..train import eval_mode
from . import signals
from .base import Attack, register_attack
from .features import last_layer_gradient, logits_and_penultimate
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


def per_sample_grad_norms(
    module: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, device: torch.device, chunk: int = 64
) -> torch.Tensor:
    """‖∇θ loss(x, y)‖₂ for every sample (torch.func, eval mode)."""
    with eval_mode(module):
        return _grad_norms(module, X, y, device, chunk)


def _grad_norms(module, X, y, device, chunk):
    params = {k: v.detach() for k, v in module.named_parameters()}
    buffers = {k: v.detach() for k, v in module.named_buffers()}

    def sample_loss(p, xb, yb):
        out = functional_call(module, (p, buffers), (xb[None],))
        return F.cross_entropy(out, yb[None])

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    norms = []
    for i in range(0, len(X), chunk):
        grads = per_sample(params, X[i : i + chunk].to(device), y[i : i + chunk].to(device))
        sq = sum(g.flatten(1).pow(2).sum(1) for g in grads.values())
        norms.append(sq.sqrt().cpu())
    return torch.cat(norms)


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
