"""``inversion``: model inversion — reconstruct class-representative inputs from the model by gradient
descent on the input (MI-Face, Fredrikson et al., CCS 2015), with a population prior.

For ``classes`` classes (all, or an evenly spaced subset) the attacker starts ``restarts`` inputs
near the population mean and takes ``steps`` Adam steps on

    −log p(class | x) + prior · ‖(x − μ)/σ‖²/D  [+ tv · total variation, images]

(μ, σ: the population's per-feature mean and spread; x is kept inside the population's range). It
needs gradients with respect to the input, so it uses the network's weights (white-box; an
inference-time output defence does not stop it).

Safety = how much closer the reconstructions are to the private training records of their class
than to non-members of that class. Every audit record of an inverted class is scored by its
distance (standardised, per feature) to the nearest reconstruction of its class; members vs
non-members of these scores give an AUC (0.5 = the reconstructions are no closer to members) with
the usual bootstrap interval and TPR at low FPR. ``member_closer_rate`` is the fraction of
reconstructions whose nearest member is nearer than their nearest non-member (equal numbers of each
per class; 0.5 = no leakage). ``target_confidence`` (mean p(class | reconstruction)) shows whether the
inversion itself succeeded.

Text (token ids) has no input gradient: on a text dataset the attack reports itself skipped.

In the SafeCompress loop the attacker's records are the fit probe half and the inversion is lighter
(≤ 10 classes, 2 restarts, a fifth of the steps); it reports the AUC and advantage on the test half.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import metrics
from .base import Attack, format_ci, loop_result, register_attack
from .knowledge import Knowledge, Queries
from .result import AttackResult
from .targets import WhiteBoxTarget


def _tv(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


@register_attack("inversion")
class ModelInversion(Attack):
    family = "inversion"
    title = "model inversion"
    white_box = True
    needs_references = 0
    simulatable = True
    citation = "Fredrikson et al., CCS 2015 (MI-Face); Zhang et al., CVPR 2020 (priors)"
    defaults = {"classes": 20, "restarts": 4, "steps": 150, "lr": 0.05, "prior": 0.05, "tv": 0.05}

    def pick_classes(self, n_classes: int, limit: int | None = None) -> np.ndarray:
        k = min(n_classes, int(limit or self.params["classes"]))
        return np.unique(np.linspace(0, n_classes - 1, k).round().astype(int))

    def reconstruct(
        self,
        model: nn.Module,
        population: torch.Tensor,
        classes: np.ndarray,
        device,
        seed: int,
        restarts: int | None = None,
        steps: int | None = None,
    ) -> tuple[torch.Tensor, np.ndarray, float]:
        """(reconstructions (n, *input shape) on CPU, their classes, mean target confidence); ``model`` is
        the network (a white-box view's module)."""
        net = model
        was_training = net.training
        net.eval()
        p = self.params
        restarts, steps = int(restarts or p["restarts"]), int(steps or p["steps"])
        pop = population.float()
        mu, sd = pop.mean(0), pop.std(0).clamp_min(1e-3)
        lo, hi = pop.min(0).values, pop.max(0).values
        labels = np.repeat(classes, restarts)
        gen = torch.Generator().manual_seed(int(seed) + 0x1B)
        z = (0.1 * torch.randn((len(labels), *pop.shape[1:]), generator=gen)).to(device).requires_grad_(True)
        mu, sd, lo, hi = (t.to(device) for t in (mu, sd, lo, hi))
        target = torch.as_tensor(labels, device=device)
        opt = torch.optim.Adam([z], lr=float(p["lr"]))
        image = pop.dim() == 4
        for _ in range(steps):
            x = torch.maximum(torch.minimum(mu + sd * z, hi), lo)
            loss = F.cross_entropy(net(x), target) + float(p["prior"]) * z.pow(2).mean()
            if image and p["tv"]:
                loss = loss + float(p["tv"]) * _tv(x)
            opt.zero_grad()
            (z.grad,) = torch.autograd.grad(loss, z)  # only the input: the network's .grad stays untouched
            opt.step()
        with torch.no_grad():
            x = torch.maximum(torch.minimum(mu + sd * z, hi), lo)
            conf = float(torch.softmax(net(x), 1).gather(1, target[:, None]).mean())
        net.train(was_training)
        return x.detach().cpu(), labels, conf

    @staticmethod
    def distance_scores(
        recon: torch.Tensor, recon_y: np.ndarray, X: torch.Tensor, y: np.ndarray, mu: torch.Tensor, sd: torch.Tensor
    ) -> np.ndarray:
        """−(distance of every record to the nearest reconstruction of its class); NaN for classes not inverted."""
        R = ((recon - mu) / sd).flatten(1)
        Z = ((X - mu) / sd).flatten(1)
        out = np.full(len(y), np.nan)
        for c in np.unique(recon_y):
            rows = np.flatnonzero(y == c)
            if len(rows):
                d = (
                    torch.cdist(Z[torch.as_tensor(rows)], R[torch.as_tensor(np.flatnonzero(recon_y == c))])
                    .min(1)
                    .values
                )
                out[rows] = -(d / Z.shape[1] ** 0.5).double().numpy()
        return out

    def fit(self, knowledge: Knowledge) -> "Attack":
        """Nothing to learn: the attacker's records only give it their statistics (the prior)."""
        X, _, _ = knowledge.records()
        self.pop_, self.seed_, self.n_classes_ = X.float(), knowledge.seed, knowledge.n_classes
        self.kind_ = knowledge.kind
        return self

    SKIPPED_TEXT = "text inputs are token ids, which have no gradient to descend on"

    def evaluate(self, target: WhiteBoxTarget, queries: Queries) -> AttackResult:
        if self.kind_ == "text":
            return AttackResult({"skipped": self.SKIPPED_TEXT}, summary=self.summarize({"skipped": self.SKIPPED_TEXT}))
        if queries.in_loop:
            return self._measure_loop(target, queries)
        m = self._measure_audit(target, queries)
        return AttackResult(m, summary=self.summarize(m))

    def _measure_audit(self, target: WhiteBoxTarget, queries: Queries) -> dict[str, Any]:
        classes = self.pick_classes(self.n_classes_)
        pop = self.pop_
        recon, recon_y, conf = self.reconstruct(target.module, pop, classes, target.device, self.seed_)
        mu, sd = pop.mean(0), pop.std(0).clamp_min(1e-3)
        X = queries.X[: queries.n].float()
        y = queries.y[: queries.n].numpy()
        is_member = queries.is_member
        s = self.distance_scores(recon, recon_y, X, y, mu, sd)
        keep = np.isfinite(s)
        if keep.sum() == 0 or is_member[keep].all() or not is_member[keep].any():
            return {"skipped": "no audit members and non-members in the inverted classes"}
        m = metrics.membership_metrics(s[keep], is_member[keep], n_bootstrap=queries.n_bootstrap, seed=queries.seed)
        closer = self._closer_rate(recon, recon_y, X, y, is_member, mu, sd, queries.seed)
        return {
            "classes_inverted": int(len(classes)),
            "reconstructions": int(len(recon_y)),
            "target_confidence": round(conf, 4),
            "records_scored": int(keep.sum()),
            "auc": m["auc"],
            "auc_ci": [round(v, 4) for v in m["auc_ci"]] if m.get("auc_ci") else None,
            "tpr_at_fpr": m["tpr_at_fpr"],
            "member_closer_rate": closer["rate"],
            "member_closer_ci": closer["ci"],
        }

    def _measure_loop(self, target: WhiteBoxTarget, queries: Queries) -> AttackResult:
        """AUC and advantage of the nearest-reconstruction score on probe members vs non-members."""
        classes = self.pick_classes(self.n_classes_, limit=10)
        recon, recon_y, _ = self.reconstruct(
            target.module,
            self.pop_,
            classes,
            target.device,
            self.seed_,
            restarts=2,
            steps=max(20, int(self.params["steps"]) // 5),
        )
        mu, sd = self.pop_.mean(0), self.pop_.std(0).clamp_min(1e-3)
        is_member = queries.is_member
        s = self.distance_scores(recon, recon_y, queries.X.float(), queries.y.numpy(), mu, sd)
        keep = np.isfinite(s)
        if keep.sum() == 0 or is_member[keep].all() or not is_member[keep].any():
            return loop_result(0.5, 0.0)
        return loop_result(metrics.auc(s[keep], is_member[keep]), metrics.advantage(s[keep], is_member[keep]))

    @classmethod
    def summarize(cls, entry: Mapping[str, Any]) -> str:
        if entry.get("skipped") is not None:
            return "n/a: " + entry["skipped"]
        rate, line = entry.get("member_closer_rate"), f"AUC {entry['auc']:.3f}{format_ci(entry.get('auc_ci'))}"
        return line if rate is None else f"{line}; member-closer rate {rate:.2f}"

    @staticmethod
    def _closer_rate(recon, recon_y, X, y, is_member, mu, sd, seed) -> dict[str, Any]:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1C]))
        R = ((recon - mu) / sd).flatten(1)
        Z = ((X - mu) / sd).flatten(1)
        wins = []
        for c in np.unique(recon_y):
            mem, non = np.flatnonzero((y == c) & is_member), np.flatnonzero((y == c) & ~is_member)
            k = min(len(mem), len(non))
            if k == 0:
                continue
            mem, non = rng.choice(mem, k, replace=False), rng.choice(non, k, replace=False)
            r = R[torch.as_tensor(np.flatnonzero(recon_y == c))]
            dm = torch.cdist(r, Z[torch.as_tensor(mem)]).min(1).values
            dn = torch.cdist(r, Z[torch.as_tensor(non)]).min(1).values
            wins += (dm < dn).tolist()
        if not wins:
            return {"rate": None, "ci": None}
        n, rate = len(wins), float(np.mean(wins))
        half = 1.96 * (rate * (1 - rate) / n) ** 0.5 + 0.5 / n  # normal interval with continuity correction
        return {"rate": round(rate, 4), "ci": [round(max(0.0, rate - half), 4), round(min(1.0, rate + half), 4)]}
