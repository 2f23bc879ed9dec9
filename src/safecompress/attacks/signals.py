"""Per-sample signals computed from a model's outputs (pure functions of logits and labels)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per sample."""
    return F.cross_entropy(logits, y, reduction="none")


def confidence(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Softmax probability of the true label."""
    return torch.softmax(logits, 1).gather(1, y[:, None])[:, 0]


def entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits, 1)
    return -(logp.exp() * logp).sum(1)


def modified_entropy(logits: torch.Tensor, y: torch.Tensor, eps: float = 1e-30) -> torch.Tensor:
    """Song & Mittal (2021): -(1-p_y) log p_y - sum_{i!=y} p_i log(1-p_i); low for members."""
    p = torch.softmax(logits.double(), 1)
    py = p.gather(1, y[:, None])[:, 0]
    term_y = -(1 - py) * torch.log(py.clamp_min(eps))
    others = -(p * torch.log((1 - p).clamp_min(eps)))
    others = others.sum(1) - others.gather(1, y[:, None])[:, 0]
    return (term_y + others).float()


def scaled_logit(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LiRA's statistic log(p_y / (1 - p_y)), computed stably from logits (Carlini et al. 2022)."""
    z = logits.double()
    zy = z.gather(1, y[:, None])[:, 0]
    others = z.scatter(1, y[:, None], float("-inf"))
    return (zy - torch.logsumexp(others, 1)).float()


def onehot_pm1(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """The label as a ±1 vector (the paper's BMIA label encoding)."""
    return F.one_hot(y, n_classes).float() * 2 - 1
