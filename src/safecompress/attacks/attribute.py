"""``attribute``: attribute inference — recover a record's sensitive attribute (not the task label)
from what the model reveals about it (Fredrikson et al. 2014; Yeom et al., CSF 2018; Song &
Shmatikov, "Overlearning reveals sensitive attributes", ICLR 2020).

The attacker holds population records with their sensitive attribute. For every record it can see
one *view* of the model:

* ``output`` — the served softmax vector (black-box; after any inference-time defence);
* ``embedding`` — the input of the last linear layer (white-box: the attacker holds the weights);

plus, on tables, the record's public features (the columns other than the sensitive one). A small
MLP per view is trained on the population to predict the attribute and is then applied to the audit
members (private training records) and non-members.

Safety is measured against what the attacker could infer *without the model*:

* ``majority`` — always guess the most common value;
* ``label_prior`` — guess from the record's task label alone (P(s | y) on the population);
* ``features_only`` — (tables) the same MLP on the public features alone.

``advantage`` = member accuracy − the best of these baselines (0 = the model adds nothing);
``member_gap`` = member accuracy − non-member accuracy (what memorisation adds). AUCs are
one-vs-rest, averaged over attribute values; intervals are percentile bootstraps over members.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import metrics
from .base import Attack, BlackBoxTarget, PropertyData, register_attack
from .features import fit_standardised, logits_and_penultimate


def fit_classifier(
    X: torch.Tensor,
    t: np.ndarray,
    n_out: int,
    seed: int,
    epochs: int,
    hidden: int = 64,
    batch_size: int = 128,
    lr: float = 2e-3,
):
    """A standardised-input MLP X → t (n_out classes), seeded; returns a predict_proba function."""
    net, mean, std = fit_standardised(
        lambda d: nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, n_out)),
        X,
        torch.as_tensor(t, dtype=torch.long),
        F.cross_entropy,
        seed,
        epochs,
        lr,
        batch_size,
    )

    @torch.no_grad()
    def predict(Xq: torch.Tensor) -> np.ndarray:
        return torch.softmax(net((Xq - mean) / std), 1).double().numpy()

    return predict


def ovr_auc(proba: np.ndarray, t: np.ndarray) -> float:
    """Mean one-vs-rest AUC over the attribute values present in ``t`` (binary: the plain AUC)."""
    values = [v for v in range(proba.shape[1]) if 0 < (t == v).sum() < len(t)]
    if not values:
        return float("nan")
    if proba.shape[1] == 2:
        return metrics.auc(proba[:, 1], t == 1)
    return float(np.mean([metrics.auc(proba[:, v], t == v) for v in values]))


def _bootstrap(proba: np.ndarray, t: np.ndarray, n: int, seed: int) -> tuple[list[float] | None, list[float] | None]:
    if n <= 0 or len(t) < 2:
        return None, None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xA7]))
    accs, aucs = [], []
    for _ in range(n):
        i = rng.integers(0, len(t), len(t))
        accs.append(float((proba[i].argmax(1) == t[i]).mean()))
        aucs.append(ovr_auc(proba[i], t[i]))
    q = lambda xs: [round(float(np.nanpercentile(xs, 2.5)), 4), round(float(np.nanpercentile(xs, 97.5)), 4)]  # noqa: E731
    return q(accs), q(aucs)


def label_prior(y_pop: np.ndarray, s_pop: np.ndarray, n_classes: int, n_values: int) -> np.ndarray:
    """(n_classes, n_values) P(s | y) on the population, smoothed by one pseudo-count."""
    counts = np.ones((n_classes, n_values))
    np.add.at(counts, (y_pop, s_pop), 1)
    return counts / counts.sum(1, keepdims=True)


@register_attack("attribute")
class AttributeInference(Attack):
    family = "attribute"
    requires_sensitive = True
    references_needed = 0
    citation = "Yeom et al., CSF 2018; Song & Shmatikov, ICLR 2020"
    defaults = {"epochs": 40, "hidden": 64, "with_features": "auto", "max_population": 5000}

    # -- views ------------------------------------------------------------------------------------
    def views(self, model: nn.Module, X: torch.Tensor, device: torch.device, kind: str) -> dict[str, torch.Tensor]:
        from ..defences.base import unwrap

        out = torch.softmax(BlackBoxTarget(model, device).logits(X), 1)
        _, h = logits_and_penultimate(unwrap(model), X, device)
        views = {"output": out, "embedding": h}
        if self._with_features(kind):
            flat = X.flatten(1).float()
            views = {k: torch.cat([v, flat], 1) for k, v in views.items()}
            views["features_only"] = flat
        return views

    def _with_features(self, kind: str) -> bool:
        w = self.params["with_features"]
        return kind == "tabular" if w == "auto" else bool(w)

    # -- the audit --------------------------------------------------------------------------------
    def audit(self, model: nn.Module, data: PropertyData) -> dict[str, Any]:
        if not data.has_sensitive:
            return {
                "skipped": "the dataset has no sensitive attribute; use income, cifar10-synth-attr, or your own "
                "npz/csv with a sensitive array/column (data.sensitive_column)"
            }
        rng = np.random.default_rng(np.random.SeedSequence([data.seed, 0xA1]))
        n_pop = len(data.population[1])
        pick = np.sort(rng.permutation(n_pop)[: int(self.params["max_population"])])
        Xp, yp, sp = data.population[0][pick], data.population[1][pick].numpy(), data.s_population[pick]
        n_values = int(max(sp.max(), data.s_members.max(), data.s_nonmembers.max())) + 1
        vp = self.views(model, Xp, data.device, data.kind)
        vm = self.views(model, data.members[0], data.device, data.kind)
        vn = self.views(model, data.nonmembers[0], data.device, data.kind)
        sm, sn = data.s_members, data.s_nonmembers
        majority = float((sm == np.bincount(sp, minlength=n_values).argmax()).mean())
        prior = label_prior(yp, sp, data.n_classes, n_values)
        baselines = {
            "majority": round(majority, 4),
            "label_prior": round(float((prior[data.members[1].numpy()].argmax(1) == sm).mean()), 4),
        }
        results: dict[str, dict[str, Any]] = {}
        for k, name in enumerate(vp):
            predict = fit_classifier(
                vp[name], sp, n_values, data.seed + 31 * k, int(self.params["epochs"]), int(self.params["hidden"])
            )
            pm, pn = predict(vm[name]), predict(vn[name])
            acc_ci, auc_ci = _bootstrap(pm, sm, data.n_bootstrap, data.seed + k)
            r = {
                "accuracy_members": round(float((pm.argmax(1) == sm).mean()), 4),
                "accuracy_nonmembers": round(float((pn.argmax(1) == sn).mean()), 4),
                "auc_members": round(ovr_auc(pm, sm), 4),
                "auc_nonmembers": round(ovr_auc(pn, sn), 4),
                "accuracy_members_ci": acc_ci,
                "auc_members_ci": auc_ci,
            }
            if name == "features_only":
                baselines["features_only"] = r["accuracy_members"]
                baselines["features_only_auc"] = r["auc_members"]
            else:
                results[name] = r
        best_baseline = max(v for k, v in baselines.items() if not k.endswith("_auc"))
        strongest = max(results, key=lambda v: (results[v]["auc_members"], results[v]["accuracy_members"]))
        top = results[strongest]
        for r in results.values():
            r["advantage"] = round(r["accuracy_members"] - best_baseline, 4)
            r["member_gap"] = round(r["accuracy_members"] - r["accuracy_nonmembers"], 4)
        return {
            "attribute_values": data.sensitive_names or [str(v) for v in range(n_values)],
            "population_used": int(len(pick)),
            "baselines": baselines,
            "views": results,
            "strongest": {
                "view": strongest,
                "auc": top["auc_members"],
                "auc_ci": top["auc_members_ci"],
                "accuracy": top["accuracy_members"],
                "advantage": top["advantage"],
                "member_gap": top["member_gap"],
                "baseline_auc": baselines.get("features_only_auc", 0.5),
            },
        }

    # -- in the SafeCompress loop (view: WhiteBoxTarget, data: simulate.ProbeData) -------------------
    def fit_probe(self, view, data, kind: str, seed: int, epochs: int) -> None:
        """Fit one classifier per view on the probe records (members and non-members) and their attribute."""
        views = self.views(view.module, data.X, view.device, kind)
        views.pop("features_only", None)
        s = data.s
        self.n_values_ = int(s.max()) + 1
        self.majority_ = int(np.bincount(s, minlength=self.n_values_).argmax())
        self.predict_ = {
            name: fit_classifier(v, s, self.n_values_, seed + 31 * k, epochs, int(self.params["hidden"]))
            for k, (name, v) in enumerate(views.items())
        }

    def measure_probe(self, view, data, kind: str) -> tuple[float, float]:
        """(attribute AUC, accuracy − majority) on the private (member) records, for the view that leaks most."""
        rows = np.flatnonzero(data.is_member)
        s = data.s[rows]
        views = self.views(view.module, data.X[torch.as_tensor(rows)], view.device, kind)
        best = (0.5, 0.0)
        for name, predict in self.predict_.items():
            p = predict(views[name])
            cand = (ovr_auc(p, s), float((p.argmax(1) == s).mean() - (s == self.majority_).mean()))
            if np.isfinite(cand[0]) and cand[0] > best[0]:
                best = cand
        return best
