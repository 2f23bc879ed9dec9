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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import metrics
from .base import Attack, PropertyData, register_attack


def _tv(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


@register_attack("inversion")
class ModelInversion(Attack):
    family = "inversion"
    white_box = True
    references_needed = 0
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
        """(reconstructions (n, *input shape) on CPU, their classes, mean target confidence)."""
        from ..defences.base import unwrap

        net = unwrap(model)
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

    def audit(self, model: nn.Module, data: PropertyData) -> dict[str, Any]:
        classes = self.pick_classes(data.n_classes)
        pop = data.population[0].float()
        recon, recon_y, conf = self.reconstruct(model, pop, classes, data.device, data.seed)
        mu, sd = pop.mean(0), pop.std(0).clamp_min(1e-3)
        X = torch.cat([data.members[0], data.nonmembers[0]]).float()
        y = torch.cat([data.members[1], data.nonmembers[1]]).numpy()
        is_member = np.r_[np.ones(len(data.members[1]), bool), np.zeros(len(data.nonmembers[1]), bool)]
        s = self.distance_scores(recon, recon_y, X, y, mu, sd)
        keep = np.isfinite(s)
        if keep.sum() == 0 or is_member[keep].all() or not is_member[keep].any():
            return {"skipped": "no audit members and non-members in the inverted classes"}
        m = metrics.membership_metrics(s[keep], is_member[keep], n_bootstrap=data.n_bootstrap, seed=data.seed)
        closer = self._closer_rate(recon, recon_y, X, y, is_member, mu, sd, data.seed)
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

    # -- in the SafeCompress loop (view: WhiteBoxTarget, data: simulate.ProbeData) -------------------
    def fit_probe(self, view, data, kind: str, seed: int, epochs: int) -> None:
        """Nothing to learn: the probe records only give the attacker its population statistics."""
        self.pop_ = data.X.float()
        self.seed_ = seed

    def measure_probe(self, view, data, kind: str) -> tuple[float, float]:
        """(AUC, advantage) of the nearest-reconstruction score on probe members vs non-members
        (a lighter inversion than the audit's: ≤ 10 classes, 2 restarts, a fifth of the steps)."""
        classes = self.pick_classes(getattr(self, "n_classes_", None) or int(data.y.max()) + 1, limit=10)
        recon, recon_y, _ = self.reconstruct(
            view.module,
            self.pop_,
            classes,
            view.device,
            self.seed_,
            restarts=2,
            steps=max(20, int(self.params["steps"]) // 5),
        )
        mu, sd = self.pop_.mean(0), self.pop_.std(0).clamp_min(1e-3)
        s = self.distance_scores(recon, recon_y, data.X.float(), data.y.numpy(), mu, sd)
        keep = np.isfinite(s)
        if keep.sum() == 0 or data.is_member[keep].all() or not data.is_member[keep].any():
            return 0.5, 0.0
        return metrics.auc(s[keep], data.is_member[keep]), metrics.advantage(s[keep], data.is_member[keep])
