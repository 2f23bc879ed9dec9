"""``calibrated`` — a per-class calibrated likelihood test that needs no reference models.

The statistic is LiRA's scaled logit φ = log(p_y / (1 − p_y)) of the queried model (Carlini et al.,
"Membership Inference Attacks From First Principles", S&P 2022). Instead of per-example OUT
distributions from reference models, the attacker models the OUT distribution *per class* from the
target's own answers on known non-members (its population data): φ of non-members of class c is
taken as Gaussian N(μ_c, σ_c²), with μ_c and σ_c² shrunk towards the all-class values when a class
has few samples. A query (x, y) scores z = (φ(x, y) − μ_y) / σ_y: how far above a typical non-member
of its class it sits. Calibrating by class difficulty is the idea of Watson et al., "On the
Importance of Difficulty Calibration in Membership Inference Attacks", ICLR 2022; here the
difficulty is the class's, not the example's, so no shadow model is trained.

Because it needs only the target's outputs on non-members, the same attack runs in the audit (the
population part) and inside the SafeCompress loop (the fit half of ``probe_nonmembers``), where its
TPR at a low FPR is the low-FPR test signal the audit's LiRA/RMIA reward.
"""

from __future__ import annotations

import numpy as np
import torch

from . import signals
from .base import Attack, register_attack
from .knowledge import Knowledge
from .targets import BlackBoxTarget


def class_gaussians(phi: np.ndarray, y: np.ndarray, n_classes: int, prior: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-class (mean, std) of ``phi``, shrunk with ``prior`` pseudo-samples: the mean towards the
    all-class mean, the variance towards the pooled within-class variance (prior 0: the sample moments)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    sums = np.bincount(y, weights=phi, minlength=n_classes)
    raw_mu = sums / np.maximum(counts, 1)
    within = (phi - raw_mu[y]) ** 2
    ss_raw = np.bincount(y, weights=within, minlength=n_classes)
    dof = len(phi) - int((counts > 0).sum())
    var_pool = float(ss_raw.sum() / dof) if dof > 0 else float(phi.var())
    mu = (sums + prior * float(phi.mean())) / (counts + prior) if prior > 0 else raw_mu
    # each class's squared deviations from its (shrunk) mean, plus the prior's pseudo-samples
    ss = ss_raw + counts * (raw_mu - mu) ** 2
    var = (ss + prior * var_pool) / np.maximum(counts + prior, 1e-12)
    var = np.where(counts + prior > 0, var, var_pool)
    return mu, np.sqrt(np.maximum(var, 1e-12))


@register_attack("calibrated")
class CalibratedAttack(Attack):
    citation = "Carlini et al., S&P 2022; Watson et al., ICLR 2022"
    needs_references = 0
    defaults = {"n_population": 2000, "prior": 20.0}

    def fit(self, knowledge: Knowledge) -> "Attack":
        n = len(knowledge.population_y)
        if n < 2:
            raise ValueError("the calibrated attack needs at least 2 known non-members (population data)")
        k = min(n, int(self.params["n_population"]))
        idx = np.sort(np.random.default_rng(knowledge.seed).choice(n, k, replace=False))
        t = torch.from_numpy(idx)
        self.Xz_, self.yz_ = knowledge.population_X[t], knowledge.population_y[t]
        self.n_classes_ = knowledge.n_classes
        return self

    def score(self, target: BlackBoxTarget, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        phi_z = signals.scaled_logit(target.logits(self.Xz_), self.yz_).double().numpy()
        mu, sd = class_gaussians(phi_z, self.yz_.numpy(), self.n_classes_, float(self.params["prior"]))
        phi = signals.scaled_logit(target.logits(X), y).double().numpy()
        yi = y.numpy()
        return (phi - mu[yi]) / sd[yi]
