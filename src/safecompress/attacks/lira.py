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
from .base import Attack, register_attack
from .knowledge import Knowledge


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
    needs_references = -1  # all of the run's reference models
    defaults = {"online": True, "fixed_variance": None}  # None: fixed when fewer than 8 references

    def fit(self, knowledge: Knowledge) -> "Attack":
        self.pool_ = knowledge.references
        self.pool_.ensure(self.pool_.n_models)
        return self

    def reference_phi(self, X: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        phi = np.stack(
            [signals.scaled_logit(self.pool_.logits(k, X), y).double().numpy() for k in range(self.pool_.n_models)]
        )
        return phi, self.pool_.query_membership(X)

    def score(self, target, X, y):
        phi_t = signals.scaled_logit(target.logits(X), y).double().numpy()
        phi, is_in = self.reference_phi(X, y)
        return lira_scores(phi_t, phi, is_in, self.fixed_variance(len(phi)), self.params["online"], self)

    def fixed_variance(self, n_models: int) -> bool:
        fixed = self.params["fixed_variance"]
        return n_models < 8 if fixed is None else bool(fixed)


def lira_scores(
    phi_t: np.ndarray, phi: np.ndarray, is_in: np.ndarray, fixed: bool, online: bool = True, attack=None
) -> np.ndarray:
    """LiRA scores from the target's scaled logits ``phi_t`` (n,) and the references' ``phi`` (k, n) with
    their membership ``is_in`` (k, n).

    Means are per example. With ``fixed`` the variance is global, as in Carlini et al.: the spread of
    every OUT (IN) reference value around the global mean — a per-example variance from one or two
    references is zero and would turn the test into a nearest-mean rule. Otherwise per example, with
    the global value where an example has fewer than two references on that side. Offline (no IN
    references for some example, or ``online=False``): the one-sided test (φ − μ_out)/σ_out."""
    mu_out, sd_out, n_out = _masked_stats(phi, ~is_in)
    mu_in, sd_in, n_in = _masked_stats(phi, is_in)
    glob_out = float(np.std(phi[~is_in])) if (~is_in).any() else 1.0
    sd_out = np.full_like(phi_t, glob_out) if fixed else np.where(np.isnan(sd_out), glob_out, sd_out)
    sd_out = np.maximum(sd_out, 1e-3)
    mu_out = np.where(np.isnan(mu_out), np.mean(phi), mu_out)
    use_online = online and bool((n_in > 0).all())
    if attack is not None:
        attack.mode_ = "online" if use_online else "offline"
    if not use_online:
        return (phi_t - mu_out) / sd_out
    glob_in = float(np.std(phi[is_in]))
    sd_in = np.full_like(phi_t, glob_in) if fixed else np.where(np.isnan(sd_in), glob_in, sd_in)
    sd_in = np.maximum(sd_in, 1e-3)
    return _gauss_logpdf(phi_t, mu_in, sd_in) - _gauss_logpdf(phi_t, mu_out, sd_out)
