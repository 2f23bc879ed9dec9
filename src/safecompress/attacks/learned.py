"""Learned black-box attackers, trained on reference (shadow) models' members vs non-members.

* ``nn`` — the SafeCompress paper's black-box attacker (BMIA, after Nasr et al., CCS 2018): an MLP
  on the full softmax vector and the ±1-encoded label.
* ``top3`` — ML-Leaks (Salem et al., NDSS 2019): an MLP on the three largest probabilities.
* ``shadow`` — Shokri et al., "Membership Inference Attacks against Machine Learning Models",
  S&P 2017: one attack model per class on the softmax vector (a global one where a class has too
  few shadow records).

In the SafeCompress loop (knowledge without references) ``nn``, ``top3`` and ``whitebox`` learn from the
current model's labelled probe records instead of shadow models; ``shadow`` cannot.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from .. import metrics
from . import signals
from .base import Attack, balanced_indices, register_attack
from .features import fit_binary_mlp, predict_binary_mlp
from .knowledge import Knowledge
from .targets import BlackBoxTarget


class LearnedAttack(Attack):
    needs_references = 2
    simulatable = True
    max_per_side = 5000
    defaults = {"shadows": None, "epochs": 40}

    def features(self, target: BlackBoxTarget, X: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
        raise NotImplementedError

    def _shadow_data(self, knowledge: Knowledge):
        rng = np.random.default_rng(knowledge.seed)
        feats, labels, ys = [], [], []
        for view, member in self.shadow_views(knowledge, self.params["shadows"] or self.needs_references):
            idx = balanced_indices(member, rng, self.max_per_side)
            t_idx = torch.from_numpy(idx)
            feats.append(
                self.features(view, knowledge.population_X[t_idx], knowledge.population_y[t_idx], knowledge.n_classes)
            )
            labels.append(member[idx])
            ys.append(knowledge.population_y[t_idx])
        return torch.cat(feats), np.concatenate(labels), torch.cat(ys)

    def fit(self, knowledge: Knowledge) -> "Attack":
        self.n_classes_ = knowledge.n_classes
        epochs = knowledge.epochs or self.params["epochs"]
        own = knowledge.labelled
        if own is not None:  # the loop: the current model's own labelled records
            F = self.features(own.target, own.X, own.y, self.n_classes_)
            self.model_ = fit_binary_mlp(F, own.is_member, seed=knowledge.seed, epochs=epochs)
            return self
        F, labels, _ = self._shadow_data(knowledge)
        self.model_ = fit_binary_mlp(F, labels, seed=knowledge.seed, epochs=epochs)
        _, self.threshold_ = metrics.best_balanced_accuracy(predict_binary_mlp(self.model_, F), labels)
        return self

    def score(self, target: BlackBoxTarget, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        return predict_binary_mlp(self.model_, self.features(target, X, y, self.n_classes_))


@register_attack("nn")
class NNAttack(LearnedAttack):
    citation = "Nasr et al., CCS 2018 (the SafeCompress BMIA attacker)"

    def features(self, target, X, y, n_classes):
        return torch.cat([target.probs(X), signals.onehot_pm1(y, n_classes)], 1)


@register_attack("top3")
class Top3Attack(LearnedAttack):
    citation = "Salem et al., ML-Leaks, NDSS 2019"

    def features(self, target, X, y, n_classes):
        p = target.probs(X)
        return torch.topk(p, min(3, p.shape[1]), dim=1).values


@register_attack("shadow")
class ShadowAttack(LearnedAttack):
    simulatable = False  # one attack model per class needs shadow models' records of every class
    citation = "Shokri et al., S&P 2017"
    min_per_class = 20

    def features(self, target, X, y, n_classes):
        return torch.log(target.probs(X).clamp_min(1e-12))

    def fit(self, knowledge: Knowledge) -> "Attack":
        self.n_classes_ = knowledge.n_classes
        F, labels, ys = self._shadow_data(knowledge)
        X_np, y_np = F.double().numpy(), ys.numpy()
        self.mean_, self.std_ = X_np.mean(0), X_np.std(0) + 1e-6  # standardised: lbfgs converges
        X_np = (X_np - self.mean_) / self.std_
        self.global_ = LogisticRegression(max_iter=1000).fit(X_np, labels)
        self.per_class_: dict[int, LogisticRegression] = {}
        for c in range(knowledge.n_classes):
            rows = y_np == c
            if rows.sum() >= self.min_per_class and 0 < labels[rows].mean() < 1:
                self.per_class_[c] = LogisticRegression(max_iter=1000).fit(X_np[rows], labels[rows])
        _, self.threshold_ = metrics.best_balanced_accuracy(self._predict(X_np, y_np), labels)
        return self

    def _predict(self, X_np: np.ndarray, y_np: np.ndarray) -> np.ndarray:
        out = self.global_.predict_proba(X_np)[:, 1]
        for c, clf in self.per_class_.items():
            rows = y_np == c
            if rows.any():
                out[rows] = clf.predict_proba(X_np[rows])[:, 1]
        return out

    def score(self, target, X, y):
        X_np = (self.features(target, X, y, self.n_classes_).double().numpy() - self.mean_) / self.std_
        return self._predict(X_np, y.numpy())
