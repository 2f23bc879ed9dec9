"""MemGuard (Jia et al., CCS 2019): perturb each served confidence vector so that the defender's own
membership classifier is maximally uncertain about it, without changing the predicted label.

Our implementation of the idea:

1. The defender fits an attack model ``g`` (an MLP on the sorted softmax vector) on its training
   members vs held-out non-members (``val``) — the same kind of attacker the paper assumes.
2. At inference, for every query the logits ``z`` get an additive offset ``δ`` found by ``steps``
   Adam steps on ``g(sort(softmax(z + δ)))² + c·hinge(label margin)``: ``g``'s logit is pushed to 0
   (probability ½) while the top-1 class keeps a positive margin.
3. Utility budget: if the L1 distance between the perturbed and the original probability vectors
   exceeds ``budget``, ``δ`` is scaled down until it fits; a row whose label would still change is
   served unperturbed. Predicted labels — and so accuracy — never change.

MemGuard is a *black-box* defence: label-only attacks and white-box attacks (which hold the weights)
are unaffected, and the audit shows exactly that. The audit is adaptive: each reference model is
served through its own MemGuard (fitted on its own members vs non-members), so black-box attacks
calibrate on what a MemGuard-served model outputs, as an attacker who knows the defence would.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..params import NonNegative, Params
from .base import Defence, Deployed, register_defence

log = logging.getLogger(__name__)


def _features(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, 1).sort(1, descending=True).values


class MemGuardModel(Deployed):
    """The network plus MemGuard's output perturbation (the defender's classifier is not a parameter)."""

    def __init__(self, inner: nn.Module, attack: nn.Module, budget: float, steps: int, lr: float, margin: float = 1e-3):
        super().__init__(inner)
        object.__setattr__(self, "attack", attack.eval())  # hidden: not a parameter of the served model
        self.budget, self.steps, self.lr, self.margin = budget, steps, lr, margin

    def perturbation(self, logits: torch.Tensor) -> torch.Tensor:
        z = logits.detach().float()
        label = z.argmax(1)
        delta = torch.zeros_like(z, requires_grad=True)
        opt = torch.optim.Adam([delta], lr=self.lr)
        onehot = F.one_hot(label, z.shape[1]).bool()
        with torch.enable_grad():
            for _ in range(self.steps):
                zp = z + delta
                top = zp[onehot]
                other = zp.masked_fill(onehot, float("-inf")).max(1).values
                loss = self.attack(_features(zp)).squeeze(1).pow(2) + 10.0 * F.relu(other - top + self.margin)
                opt.zero_grad()
                loss.sum().backward()
                opt.step()
        delta = delta.detach()
        p = torch.softmax(z, 1)
        scale = torch.ones(len(z), 1, device=z.device)
        for _ in range(20):  # shrink rows that exceed the budget or lose their label
            zp = z + scale * delta
            bad = ((torch.softmax(zp, 1) - p).abs().sum(1) > self.budget) | (zp.argmax(1) != label)
            if not bad.any():
                break
            scale[bad] *= 0.7
        zp = z + scale * delta
        keep = ((torch.softmax(zp, 1) - p).abs().sum(1) <= self.budget + 1e-6) & (zp.argmax(1) == label)
        return (scale * delta) * keep[:, None].to(delta.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.inner(x)
        return logits + self.perturbation(logits).to(logits.dtype)


@register_defence("memguard")
class MemGuard(Defence):
    description = "Jia et al. MemGuard: label-preserving output perturbation against the defender's own attack model"

    class Params(Params):
        budget: NonNegative = 0.5
        steps: NonNegative = 60
        lr: NonNegative = 0.1
        attack_steps: NonNegative = 400

    # Training needs nothing extra; deployment fits on train vs val, which every run split has.
    needs_parts = ("train",)

    def check(self) -> None:
        if not 0 < self.params["budget"] <= 2:
            raise ConfigError(
                f"defence 'memguard': budget is an L1 distance between probability vectors and "
                f"must lie in (0, 2], got {self.params['budget']!r}"
            )

    def split_problems(self, sizes: dict[str, int]) -> list[str]:
        if min(sizes["train"], sizes["val"]) < 10:
            return [
                f"defence 'memguard' fits its attack model on train vs val and needs at least 10 of each; the split "
                f"has train={sizes['train']}, val={sizes['val']}: enlarge data.split.val (or the dataset)"
            ]
        return []

    def deploy(self, model, members, nonmembers, seed, device):
        from ..train import predict_logits

        problems = self.split_problems({"train": len(members[1]), "val": len(nonmembers[1])})
        if problems:
            raise ConfigError(problems)
        n = min(len(members[1]), len(nonmembers[1]))
        gen = torch.Generator().manual_seed(seed + 4242)
        pick_in = torch.randperm(len(members[1]), generator=gen)[:n]
        pick_out = torch.randperm(len(nonmembers[1]), generator=gen)[:n]
        with torch.no_grad():
            f_in = _features(predict_logits(model, members[0][pick_in], device))
            f_out = _features(predict_logits(model, nonmembers[0][pick_out], device))
        X = torch.cat([f_in, f_out]).to(device)
        t = torch.cat([torch.ones(n), torch.zeros(n)]).to(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 4243)
            attack = nn.Sequential(nn.Linear(X.shape[1], 64), nn.ReLU(), nn.Linear(64, 1)).to(device)
        opt = torch.optim.Adam(attack.parameters(), lr=1e-2)
        for _ in range(int(self.params["attack_steps"])):
            loss = F.binary_cross_entropy_with_logits(attack(X).squeeze(1), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
        for p in attack.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            acc = float(((attack(X).squeeze(1) > 0).float() == t).float().mean())
        self.fit_report = {"defender_attack_train_accuracy": round(acc, 4), "defender_samples": 2 * n}
        log.info("memguard: defender attack model fitted on %d samples (train accuracy %.3f)", 2 * n, acc)
        p = self.params
        return MemGuardModel(model, attack, float(p["budget"]), int(p["steps"]), float(p["lr"]))
