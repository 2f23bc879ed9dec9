"""Packed sparse tensors: only the active values plus a 1-bit-per-weight mask.

A sparse tensor ``W`` with mask ``M`` is stored as ``bits`` = ``np.packbits(M.flatten())`` (uint8,
numel/8 bytes) and ``values`` = ``W[M]`` in fp32, fp16, or int8 with one fp32 ``scale`` per tensor
(symmetric, max-abs). fp32 unpacking is bit-exact for the active values.
"""

from __future__ import annotations

import numpy as np
import torch

VALUE_TYPES = ("fp32", "fp16", "int8")


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.packbits(mask.detach().cpu().numpy().reshape(-1).astype(np.uint8)))


def unpack_bits(bits: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    numel = int(np.prod(shape)) if len(shape) else 1
    flat = np.unpackbits(bits.numpy(), count=numel).astype(bool)
    return torch.from_numpy(flat).view(shape)


def pack(weight: torch.Tensor, mask: torch.Tensor, values: str = "fp32") -> dict[str, torch.Tensor]:
    """The tensors that represent ``weight * mask`` (keys: bits, values, and scale for int8)."""
    if values not in VALUE_TYPES:
        raise ValueError(f"values must be one of {VALUE_TYPES}, got {values!r}")
    w = weight.detach().cpu()
    active = w[mask.cpu()].float()
    out = {"bits": pack_bits(mask)}
    if values == "fp32":
        out["values"] = active.clone()
    elif values == "fp16":
        out["values"] = active.half()
    else:
        amax = float(active.abs().max()) if active.numel() else 0.0
        scale = amax / 127.0 if amax > 0 else 1.0
        out["values"] = torch.clamp(torch.round(active / scale), -127, 127).to(torch.int8)
        out["scale"] = torch.tensor([scale], dtype=torch.float32)
    return out


def unpack(parts: dict[str, torch.Tensor], shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Rebuild the dense tensor (zeros at inactive positions)."""
    mask = unpack_bits(parts["bits"], shape)
    values = parts["values"].float()
    if "scale" in parts:
        values = values * parts["scale"][0]
    if int(mask.sum()) != values.numel():
        raise ValueError(
            f"packed tensor is inconsistent: mask has {int(mask.sum())} active entries but {values.numel()} values"
        )
    dense = torch.zeros(shape, dtype=dtype)
    dense[mask] = values.to(dtype)
    return dense
