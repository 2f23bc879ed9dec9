"""``label_only`` — a label-only attack (Choquette-Choo et al., "Label-Only Membership Inference
Attacks", ICML 2021; Li & Zhang, CCS 2021): members stay correctly classified under perturbation.

Score = fraction of (original + perturbed) queries classified correctly, from predicted labels only.
Images: small translations and horizontal flips; text: 5 % of the tokens replaced by the unknown token;
tables: random feature flips (binary) or Gaussian noise. The threshold is calibrated on a reference model.
"""

from __future__ import annotations

import torch

from .base import Attack, register_attack
from .knowledge import Knowledge


def perturbations(X: torch.Tensor, kind: str, n: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = [X]
    if kind == "image":
        shifts = [(dy, dx) for dy in (-2, -1, 0, 1, 2) for dx in (-2, -1, 0, 1, 2) if (dy, dx) != (0, 0)]
        pick = torch.randperm(len(shifts), generator=gen)[: max(0, n // 2)]
        for i in pick.tolist():
            out.append(torch.roll(X, shifts=shifts[i], dims=(2, 3)))
            out.append(torch.roll(X.flip(3), shifts=shifts[i], dims=(2, 3)))
        return out
    if kind == "text":  # token ids: drop words (to the unknown id), never invent ids
        from ..data.text import PAD, UNK

        for _ in range(n):
            drop = (torch.rand(X.shape, generator=gen) < 0.05) & (X != PAD)
            out.append(torch.where(drop, torch.full_like(X, UNK), X))
        return out
    binary = bool(((X == 0) | (X == 1)).all())
    for _ in range(n):
        if binary:
            flip = torch.rand(X.shape, generator=gen) < 0.01
            out.append(torch.where(flip, 1 - X, X))
        else:
            out.append(X + 0.05 * X.std() * torch.randn(X.shape, generator=gen))
    return out


@register_attack("label_only")
class LabelOnlyAttack(Attack):
    citation = "Choquette-Choo et al., ICML 2021"
    needs_references = 1
    simulatable = True
    defaults = {"n": 10}

    def fit(self, knowledge: Knowledge) -> "Attack":
        self.kind_ = knowledge.kind
        if knowledge.references is not None:
            self.calibrate_threshold(knowledge)
        return self

    def score(self, target, X, y):
        variants = perturbations(X, self.kind_, self.params["n"], 7)
        correct = [(target.logits(Xp).argmax(1) == y).double() for Xp in variants]
        return torch.stack(correct).mean(0).numpy()
