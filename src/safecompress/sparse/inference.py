"""Sparse inference: run sparse Linear (and, where it pays, Conv2d) layers on CSR weights.

``sparse_inference(model)`` returns a copy of an eval-mode model in which every Linear layer whose
weight density is at most ``linear_max_density`` multiplies with a CSR matrix, and every (ungrouped)
Conv2d at most ``conv_max_density`` dense runs as unfold + CSR matmul. The break-even densities
come from ``bench/sparse_inference.py`` on 2 CPU cores; layers above them stay dense because CSR
would be slower there. Outputs equal the masked dense model to float rounding (tested at 1e-5).
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from torch import nn

# measured break-even densities (bench/sparse_inference.py, 2 cores, batch 256)
LINEAR_MAX_DENSITY = 0.1  # MLP: 1.5-1.8x at batch 256, about even at batch 1
CONV_MAX_DENSITY = 0.0  # unfold + CSR never beat the dense conv at batch 256 here: off by default


def _csr(weight2d: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "CSR support is in beta"
        return weight2d.detach().to_sparse_csr()


class CSRLinear(nn.Module):
    """y = x Wᵀ + b with W stored in CSR (computed as (W xᵀ)ᵀ)."""

    def __init__(self, layer: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = layer.in_features, layer.out_features
        self.weight_csr = _csr(layer.weight)
        self.bias = None if layer.bias is None else nn.Parameter(layer.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        y = (self.weight_csr @ flat.t()).t()
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


class CSRConv2d(nn.Module):
    """A Conv2d computed as im2col (unfold) followed by a CSR matrix product."""

    def __init__(self, layer: nn.Conv2d):
        super().__init__()
        if layer.groups != 1 or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            raise ValueError("CSRConv2d supports groups=1, zero padding with explicit sizes")
        self.out_channels = layer.out_channels
        self.kernel_size, self.stride = layer.kernel_size, layer.stride
        self.padding, self.dilation = layer.padding, layer.dilation
        self.weight_csr = _csr(layer.weight.reshape(layer.out_channels, -1))
        self.bias = None if layer.bias is None else nn.Parameter(layer.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)  # n x CKK x L
        oh = (h + 2 * self.padding[0] - self.dilation[0] * (self.kernel_size[0] - 1) - 1) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - self.dilation[1] * (self.kernel_size[1] - 1) - 1) // self.stride[1] + 1
        mat = cols.transpose(0, 1).reshape(cols.shape[1], -1)  # CKK x (n L)
        y = (self.weight_csr @ mat).reshape(self.out_channels, n, oh * ow).transpose(0, 1)
        if self.bias is not None:
            y = y + self.bias[None, :, None]
        return y.reshape(n, self.out_channels, oh, ow)


def _density(weight: torch.Tensor) -> float:
    return float((weight != 0).float().mean())


def sparse_inference(
    model: nn.Module, linear_max_density: float = LINEAR_MAX_DENSITY, conv_max_density: float = CONV_MAX_DENSITY
) -> nn.Module:
    """A converted copy of ``model`` (eval mode; the original is untouched)."""
    out = copy.deepcopy(model).eval()
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and _density(child.weight) <= linear_max_density:
                setattr(parent, name, CSRLinear(child))
            elif (
                isinstance(child, nn.Conv2d)
                and child.groups == 1
                and not isinstance(child.padding, str)
                and child.padding_mode == "zeros"
                and _density(child.weight) <= conv_max_density
            ):
                setattr(parent, name, CSRConv2d(child))
    return out
