"""``rmia`` — Robust Membership Inference Attack, offline (Zarifzadeh et al., "Low-Cost
High-Power Membership Inference Attacks", ICML 2024).

Likelihood ratio of the query x against population samples z:
  LR(x, z) = [p(x|θ) / p(x)] / [p(z|θ) / p(z)],   score(x) = Pr_z[ LR(x, z) > γ ],
with p(·|θ) the target's probability of the true label and p(x) estimated from reference models
that did not train on x, using the paper's offline correction p(x) = ½((1 + a)·p_out(x) + (1 − a)).
Shares the run's reference models with LiRA.
"""

from __future__ import annotations

import numpy as np
import torch

from . import signals
from .base import Attack, register_attack
from .knowledge import Knowledge


@register_attack("rmia")
class RMIA(Attack):
    citation = "Zarifzadeh et al., ICML 2024"
    needs_references = -1
    defaults = {"n_population": 2000, "a": 0.3, "gamma": 1.0}

    def fit(self, knowledge: Knowledge) -> "Attack":
        self.pool_ = knowledge.references
        self.pool_.ensure(self.pool_.n_models)
        rng = np.random.default_rng(knowledge.seed)
        n_z = min(len(knowledge.population_y), self.params["n_population"])
        idx = torch.from_numpy(rng.choice(len(knowledge.population_y), n_z, replace=False))
        self.Xz_, self.yz_ = knowledge.population_X[idx], knowledge.population_y[idx]
        out = ~np.stack([self.pool_.population_membership(k)[idx.numpy()] for k in range(self.pool_.n_models)])
        self.pz_ref_ = self._p_marginal(self._ref_probs(self.Xz_, self.yz_), out)
        return self

    def _ref_probs(self, X, y) -> np.ndarray:
        return np.stack(
            [signals.confidence(self.pool_.logits(k, X), y).double().numpy() for k in range(self.pool_.n_models)]
        )

    def _p_marginal(self, probs: np.ndarray, out: np.ndarray) -> np.ndarray:
        a = self.params["a"]
        count = out.sum(0)
        p_out = np.where(count > 0, (probs * out).sum(0) / np.maximum(count, 1), probs.mean(0))
        return 0.5 * ((1 + a) * p_out + (1 - a))

    def score(self, target, X, y):
        gamma = self.params["gamma"]
        px = signals.confidence(target.logits(X), y).double().numpy()
        out = ~self.pool_.query_membership(X)
        ratio_x = px / np.maximum(self._p_marginal(self._ref_probs(X, y), out), 1e-30)
        pz = signals.confidence(target.logits(self.Xz_), self.yz_).double().numpy()
        ratio_z = np.sort(pz / np.maximum(self.pz_ref_, 1e-30))
        # fraction of z with ratio_x / ratio_z > gamma  <=>  ratio_z < ratio_x / gamma
        return np.searchsorted(ratio_z, ratio_x / gamma, side="left") / len(ratio_z)
