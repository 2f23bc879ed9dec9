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

The classifiers learn from the views of the model the attacker holds labelled records of: in the audit,
the queried target on the population; in the SafeCompress loop, the current model on the fit probe
half (no features-only baseline there), measured on the test half's members by the view that leaks most.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import metrics
from .base import Attack, format_ci, loop_result, register_attack
from .features import fit_standardised, logits_and_penultimate
from .knowledge import Knowledge, Queries
from .result import AttackResult
from .targets import WhiteBoxTarget


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
    title = "attribute inference"
    white_box = True  # the embedding view reads the network; the output view is served
    needs_sensitive = True
    needs_references = 0
    simulatable = True
    citation = "Yeom et al., CSF 2018; Song & Shmatikov, ICLR 2020"
    defaults = {"epochs": 40, "hidden": 64, "with_features": "auto", "max_population": 5000}
    SKIPPED = (
        "the dataset has no sensitive attribute; use income, cifar10-synth-attr, or your own "
        "npz/csv with a sensitive array/column (data.sensitive_column)"
    )

    # -- views ------------------------------------------------------------------------------------
    def views(self, target: WhiteBoxTarget, X: torch.Tensor, kind: str, baseline: bool) -> dict[str, torch.Tensor]:
        out = torch.softmax(target.served.logits(X), 1)
        _, h = logits_and_penultimate(target.module, X, target.device)
        views = {"output": out, "embedding": h}
        if self._with_features(kind):
            flat = X.flatten(1).float()
            views = {k: torch.cat([v, flat], 1) for k, v in views.items()}
            if baseline:
                views["features_only"] = flat
        return views

    def _with_features(self, kind: str) -> bool:
        w = self.params["with_features"]
        return kind == "tabular" if w == "auto" else bool(w)

    def _train(self, target: WhiteBoxTarget, X: torch.Tensor, s: np.ndarray, n_values: int, baseline: bool):
        """One classifier per view of ``target`` on records ``X`` with attribute ``s``."""
        views = self.views(target, X, self.kind_, baseline)
        hidden, seed = int(self.params["hidden"]), self.seed_
        return {
            name: fit_classifier(v, s, n_values, seed + 31 * k, self.epochs_, hidden)
            for k, (name, v) in enumerate(views.items())
        }

    # -- the contract -------------------------------------------------------------------------------
    def fit(self, knowledge: Knowledge) -> "Attack":
        X, y, s = knowledge.records()
        self.kind_, self.seed_, self.n_classes_ = knowledge.kind, knowledge.seed, knowledge.n_classes
        self.epochs_ = knowledge.epochs or int(self.params["epochs"])
        self.names_ = knowledge.sensitive_names
        self.own_ = self.records_ = None
        if s is None:
            return self
        if knowledge.labelled is not None:  # the loop: classifiers on the current model, now
            self.n_values_ = int(s.max()) + 1
            self.majority_ = int(np.bincount(s, minlength=self.n_values_).argmax())
            target = knowledge.labelled.target
            self.own_ = self._train(target, X, s, self.n_values_, baseline=False)
            return self
        rng = np.random.default_rng(np.random.SeedSequence([knowledge.seed, 0xA1]))
        pick = np.sort(rng.permutation(len(y))[: int(self.params["max_population"])])
        self.records_ = (X[pick], y[pick].numpy(), s[pick])
        return self

    def evaluate(self, target: WhiteBoxTarget, queries: Queries) -> AttackResult:
        if self.own_ is not None:
            return self._measure_loop(target, queries)
        if self.records_ is None or queries.s is None:
            return AttackResult({"skipped": self.SKIPPED}, summary=self.summarize({"skipped": self.SKIPPED}))
        m = self._measure_audit(target, queries)
        return AttackResult(m, summary=self.summarize(m))

    def _measure_loop(self, target: WhiteBoxTarget, queries: Queries) -> AttackResult:
        """(attribute AUC, accuracy − majority) on the private (member) records, for the view that leaks most."""
        Xm, _ = queries.part(True)
        s = queries.s[queries.is_member]
        views = self.views(target, Xm, self.kind_, baseline=False)
        best = (0.5, 0.0)
        for name, predict in self.own_.items():
            p = predict(views[name])
            cand = (ovr_auc(p, s), float((p.argmax(1) == s).mean() - (s == self.majority_).mean()))
            if np.isfinite(cand[0]) and cand[0] > best[0]:
                best = cand
        return loop_result(*best)

    def _measure_audit(self, target: WhiteBoxTarget, queries: Queries) -> dict[str, Any]:
        Xp, yp, sp = self.records_
        sm, sn = queries.s[queries.is_member], queries.s[~queries.is_member]
        (Xm, ym), (Xn, _) = queries.part(True), queries.part(False)
        n_values = int(max(sp.max(), sm.max(), sn.max())) + 1
        predictors = self._train(target, Xp, sp, n_values, baseline=True)
        vm = self.views(target, Xm, self.kind_, baseline=True)
        vn = self.views(target, Xn, self.kind_, baseline=True)
        majority = float((sm == np.bincount(sp, minlength=n_values).argmax()).mean())
        prior = label_prior(yp, sp, self.n_classes_, n_values)
        baselines = {
            "majority": round(majority, 4),
            "label_prior": round(float((prior[ym.numpy()].argmax(1) == sm).mean()), 4),
        }
        results: dict[str, dict[str, Any]] = {}
        for k, (name, predict) in enumerate(predictors.items()):
            pm, pn = predict(vm[name]), predict(vn[name])
            acc_ci, auc_ci = _bootstrap(pm, sm, queries.n_bootstrap, queries.seed + k)
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
            "attribute_values": self.names_ or [str(v) for v in range(n_values)],
            "population_used": int(len(yp)),
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

    @classmethod
    def summarize(cls, entry: Mapping[str, Any]) -> str:
        if entry.get("skipped") is not None:
            return "n/a: " + entry["skipped"].split(";")[0]
        s = entry["strongest"]
        base = max(v for k, v in entry["baselines"].items() if not k.endswith("_auc"))
        return (
            f"AUC {s['auc']:.3f}{format_ci(s.get('auc_ci'))} ({s['view']}); "
            f"accuracy {s['accuracy']:.3f} vs {base:.3f} without the model"
        )
