"""Post-training weight quantization (fp16, int8 with one scale per tensor) of dense or sparse models.

The weights are rounded in place exactly as the packed model file stores them, so the model that is
evaluated and audited is the model a user receives. Dense models get all-ones masks (their file then
carries a 1-bit-per-weight mask next to the quantized values).
"""

from __future__ import annotations

import torch
from torch import nn

from .sparse.masks import prunable_parameters
from .sparse.packing import pack, unpack


@torch.no_grad()
def quantize_(model: nn.Module, masks: dict[str, torch.Tensor] | None, values: str) -> dict[str, torch.Tensor]:
    """Round the prunable weights of ``model`` to ``values`` (fp16/int8) in place; returns the masks used."""
    params = prunable_parameters(model)
    masks = dict(masks) if masks else {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    for name, mask in masks.items():
        p = params[name]
        parts = pack(p.detach().cpu(), mask.cpu(), values, codings=("bits",))  # the mask's coding does not matter here
        p.copy_(unpack(parts, tuple(p.shape)).to(p.device, p.dtype))
    return masks
