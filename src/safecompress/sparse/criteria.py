"""Prune and grow criteria: each maps a layer's state to a score (higher = keep / grow first).

Prune: ``magnitude`` |w|; ``set`` magnitude per sign (SET removes the smallest positive and the
largest negative weights in proportion); ``random``; ``taylor`` |w · g| (first-order loss change);
``leakage`` (SafeCompress only) magnitude minus the weight's share of the member/non-member loss gap.
Grow: ``random``; ``gradient`` |g| of the dense gradient (RigL); ``momentum`` |optimizer momentum|;
``unfired`` prefers positions that were never active (in-time over-parameterisation), random
within each group.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..registry import Registry


@dataclass
class LayerState:
    weight: torch.Tensor
    mask: torch.Tensor
    grad: torch.Tensor | None  # dense gradient of the last step (None if unavailable)
    momentum: torch.Tensor | None  # SGD momentum buffer or Adam first moment
    ever_active: torch.Tensor
    generator: torch.Generator
    gap_grad: torch.Tensor | None = None  # ∂(loss gap between probe non-members and members)/∂w (SafeCompress)


PRUNE: Registry = Registry("prune criterion")
GROW: Registry = Registry("grow criterion")


def _rand(state: LayerState) -> torch.Tensor:
    return torch.rand(state.weight.shape, generator=state.generator).to(state.weight.device)


def require(tensor: torch.Tensor | None, what: str, criterion: str) -> torch.Tensor:
    if tensor is None:
        raise RuntimeError(f"the {criterion!r} criterion needs the {what}, which is not available at this step")
    return tensor


@PRUNE.register("magnitude")
def prune_magnitude(s: LayerState) -> torch.Tensor:
    return s.weight.abs()


@PRUNE.register("set")
def prune_set(s: LayerState) -> torch.Tensor:
    # rank positive and negative weights separately by |w| and interleave their quantiles, so the
    # removal takes the smallest positives and the largest (closest to zero) negatives in proportion
    w = s.weight.flatten()
    score = torch.empty_like(w)
    for sign in (w > 0, w <= 0):
        vals = w[sign].abs()
        if vals.numel():
            ranks = torch.empty_like(vals)
            ranks[vals.argsort()] = torch.arange(vals.numel(), dtype=vals.dtype, device=vals.device)
            score[sign] = (ranks + 1) / vals.numel()
    return score.view_as(s.weight)


@PRUNE.register("leakage")
def prune_leakage(s: LayerState) -> torch.Tensor:
    """Privacy-aware pruning (ours): keep large weights, but drop those whose first-order contribution
    |w · ∂gap/∂w| to the member/non-member loss gap on probe data is largest. Both terms are scaled
    to [0, 1] per layer; only available inside the SafeCompress loop (it computes the gap gradient)."""
    gap = (s.weight * require(s.gap_grad, "loss-gap gradient (SafeCompress only)", "leakage")).abs()
    mag = s.weight.abs()
    return mag / mag.max().clamp_min(1e-12) - gap / gap.max().clamp_min(1e-12)


@PRUNE.register("random")
def prune_random(s: LayerState) -> torch.Tensor:
    return _rand(s)


@PRUNE.register("taylor")
def prune_taylor(s: LayerState) -> torch.Tensor:
    return (s.weight * require(s.grad, "gradient", "taylor")).abs()


@GROW.register("random")
def grow_random(s: LayerState) -> torch.Tensor:
    return _rand(s)


@GROW.register("gradient")
def grow_gradient(s: LayerState) -> torch.Tensor:
    return require(s.grad, "gradient", "gradient").abs()


@GROW.register("momentum")
def grow_momentum(s: LayerState) -> torch.Tensor:
    return require(s.momentum, "optimizer momentum", "momentum").abs()


@GROW.register("unfired")
def grow_unfired(s: LayerState) -> torch.Tensor:
    return _rand(s) + (~s.ever_active).to(s.weight.dtype)
