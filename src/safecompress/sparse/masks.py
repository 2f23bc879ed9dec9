"""Masks as plain data: parameter name -> bool tensor of the parameter's shape.

Only the weights of Linear, Conv and Embedding layers are sparsified (an embedding table is most of a
text model's parameters); biases and normalisation parameters stay dense (a tiny fraction). Masks are
*not* registered buffers (Opacus refuses layers holding buffers); they are re-applied after every
optimizer step instead.
"""

from __future__ import annotations

import torch
from torch import nn

Masks = dict[str, torch.Tensor]


def prunable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights that can be sparsified: every Linear / Conv / Embedding(Bag) weight, by qualified name."""
    out: dict[str, nn.Parameter] = {}
    for mod_name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding, nn.EmbeddingBag)):
            out[f"{mod_name}.weight" if mod_name else "weight"] = module.weight
    return out


def random_masks(shapes: dict[str, torch.Size], counts: dict[str, int], generator: torch.Generator) -> Masks:
    """Masks with exactly ``counts[name]`` active entries each, positions drawn uniformly."""
    masks: Masks = {}
    for name, shape in shapes.items():
        numel = int(torch.Size(shape).numel())
        flat = torch.zeros(numel, dtype=torch.bool)
        flat[torch.randperm(numel, generator=generator)[: counts[name]]] = True
        masks[name] = flat.view(shape)
    return masks


def topk_masks(scores: dict[str, torch.Tensor], counts: dict[str, int]) -> Masks:
    """Masks keeping exactly ``counts[name]`` entries with the highest score per tensor."""
    masks: Masks = {}
    for name, score in scores.items():
        flat = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
        k = counts[name]
        if k > 0:
            flat[torch.topk(score.flatten(), k, sorted=False).indices] = True
        masks[name] = flat.view(score.shape)
    return masks


def rescale_fan_in(model: nn.Module, masks: Masks) -> None:
    """Scale each output unit's surviving weights by sqrt(fan_in / kept fan_in), so a sparse layer starts
    with the activation variance its dense initialisation intended (Evci et al., AAAI 2022). Without it
    a 5 %-dense layer's outputs start ~4.5x too small and sparse-from-scratch training stalls."""
    params = prunable_parameters(model)
    with torch.no_grad():
        for name, mask in masks.items():
            p = params[name]
            rows = mask.reshape(mask.shape[0], -1)
            kept = rows.sum(dim=1).clamp_min(1).to(p.dtype)
            scale = (rows.shape[1] / kept).sqrt().to(p.device)
            p.mul_(scale.view(-1, *([1] * (p.dim() - 1))))


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero every masked-out weight in place."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        params[name].mul_(mask.to(params[name].device, params[name].dtype))


@torch.no_grad()
def mask_optimizer_state(optimizer: torch.optim.Optimizer, model: nn.Module, masks: Masks) -> None:
    """Zero the optimizer state (momentum, Adam moments) at masked-out positions."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        state = optimizer.state.get(params[name])
        if not state:
            continue
        for value in state.values():
            if torch.is_tensor(value) and value.shape == mask.shape:
                value.mul_(mask.to(value.device, value.dtype))


def count_nonzero(masks: Masks) -> int:
    return int(sum(int(m.sum()) for m in masks.values()))
