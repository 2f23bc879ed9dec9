"""``lira`` — the Likelihood Ratio Attack (Carlini et al., "Membership Inference Attacks From First
Principles", S&P 2022).

For each query, the scaled logit φ = log(p_y / (1 − p_y)) under reference models that did not
train on it ("out") — and, online, those that did ("in") — are fitted by Gaussians. Online score:
log N(φ_target; μ_in, σ_in) − log N(φ_target; μ_out, σ_out); offline score: (φ_target − μ_out)/σ_out
(one-sided test). ``fixed_variance`` uses one pooled σ (better with few references). Reference
models follow the target's own recipe, compression method and density included.
"""

from __future__ import annotations

import numpy as np
import torch

from . import signals
from .base import Attack, AttackContext, register_attack


def _gauss_logpdf(x: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mu) / sigma) ** 2 - np.log(sigma)


def _masked_stats(phi: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column mean/std of ``phi`` over rows where ``mask`` holds; and the count."""
    count = mask.sum(0)
    mu = np.where(count > 0, (phi * mask).sum(0) / np.maximum(count, 1), np.nan)
    var = np.where(count > 1, (((phi - mu) ** 2) * mask).sum(0) / np.maximum(count - 1, 1), np.nan)
    return mu, np.sqrt(var), count


@register_attack("lira")
class LiRA(Attack):
    citation = "Carlini et al., S&P 2022"
    references_needed = -1  # all of the run's reference models
    defaults = {"online": True, "fixed_variance": None}  # None: fixed when fewer than 8 references

    def fit(self, ctx: AttackContext) -> "Attack":
        self.pool_ = ctx.references
        self.pool_.ensure(self.pool_.n_models)
        return self

    def reference_phi(self, X: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        phi = np.stack([signals.scaled_logit(self.pool_.logits(k, X), y).double().numpy()
                        for k in range(self.pool_.n_models)])
        return phi, self.pool_.query_membership(X)

    def score(self, target, X, y):
        phi_t = signals.scaled_logit(target.logits(X), y).double().numpy()
        phi, is_in = self.reference_phi(X, y)
        mu_out, sd_out, n_out = _masked_stats(phi, ~is_in)
        mu_in, sd_in, n_in = _masked_stats(phi, is_in)
        pooled_out = np.nanstd(np.where(~is_in, phi - mu_out, np.nan)) if (~is_in).any() else 1.0
        fixed = self.params["fixed_variance"]
        if fixed is None:
            fixed = len(phi) < 8
        sd_out = np.full_like(phi_t, pooled_out) if fixed else np.where(np.isnan(sd_out), pooled_out, sd_out)
        sd_out = np.maximum(sd_out, 1e-3)
        mu_out = np.where(np.isnan(mu_out), np.nanmean(phi), mu_out)
        online = self.params["online"] and (n_in > 0).all()
        self.mode_ = "online" if online else "offline"
        if not online:
            return (phi_t - mu_out) / sd_out
        pooled_in = np.nanstd(np.where(is_in, phi - mu_in, np.nan))
        sd_in = np.full_like(phi_t, pooled_in) if fixed else np.where(np.isnan(sd_in), pooled_in, sd_in)
        sd_in = np.maximum(sd_in, 1e-3)
        return _gauss_logpdf(phi_t, mu_in, sd_in) - _gauss_logpdf(phi_t, mu_out, sd_out)
