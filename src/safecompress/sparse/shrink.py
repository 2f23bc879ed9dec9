"""Cut a channel-sparse model down to the physically smaller dense network it computes.

:func:`shrink` drops every unit whose outputs reach nothing (its consumer's matching input columns are all
pruned, :func:`..units.removable`), together with that unit's row, bias and BatchNorm entries and the
consumer's matching input columns. On the zoo's ``mlp`` and ``cnn`` trained with ``sparse.structure: channel``
the result has fewer filters / features per layer, runs as an ordinary dense model in any runtime, and gives
the masked model's outputs to float rounding. :func:`resize` rebuilds a network of given widths (to load a
shrunk model's state dict into). Models that are not a plain chain of layers (residual nets, custom forwards,
GroupNorm) are refused with a ConfigError by :func:`..units.unit_chain` rather than cut wrongly.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .masks import Masks, apply_masks
from .units import UnitLayer, removable, unit_chain


def _index(keep: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(keep, as_tuple=False).flatten()


def _columns(layer: UnitLayer, keep: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """Input columns a layer keeps (None: all of them, the model's inputs)."""
    if layer.producer is None:
        return None
    units = _index(keep[f"{layer.producer}.weight"])
    return (units[:, None] * layer.expand + torch.arange(layer.expand)[None, :]).flatten()


@torch.no_grad()
def _cut_weight_layer(mod: nn.Module, rows: torch.Tensor, cols: torch.Tensor | None) -> nn.Module:
    w = mod.weight[rows] if cols is None else mod.weight[rows][:, cols]
    out, fan_in = w.shape[0], w.shape[1]
    bias = mod.bias is not None
    if isinstance(mod, nn.Linear):
        new: nn.Module = nn.Linear(fan_in, out, bias=bias, device=w.device, dtype=w.dtype)
    else:
        new = type(mod)(
            fan_in,
            out,
            mod.kernel_size,
            stride=mod.stride,
            padding=mod.padding,
            dilation=mod.dilation,
            groups=1,
            bias=bias,
            padding_mode=mod.padding_mode,
            device=w.device,
            dtype=w.dtype,
        )
    new.weight.copy_(w)
    if bias:
        new.bias.copy_(mod.bias[rows])
    new.train(mod.training)
    return new


@torch.no_grad()
def _cut_norm(mod: nn.Module, rows: torch.Tensor) -> nn.Module:
    new = type(mod)(
        len(rows),
        eps=mod.eps,
        momentum=mod.momentum,
        affine=mod.affine,
        track_running_stats=mod.track_running_stats,
        device=rows.device if mod.weight is None else mod.weight.device,
    )
    if mod.affine:
        new.weight.copy_(mod.weight[rows])
        new.bias.copy_(mod.bias[rows])
    if mod.track_running_stats:
        new.running_mean.copy_(mod.running_mean[rows])
        new.running_var.copy_(mod.running_var[rows])
        new.num_batches_tracked.copy_(mod.num_batches_tracked)
    new.train(mod.training)
    return new


def _replace(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, name, new)


def resize(model: nn.Module, keep: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``model`` keeping, per weight layer ``name``, the output units where ``keep[name]`` is True (and
    the matching inputs of the next layer, bias and BatchNorm entries). Every layer must be in ``keep``."""
    chain = unit_chain(model)
    small = copy.deepcopy(model)
    for layer in chain:
        rows = _index(keep[layer.name].cpu())
        mod = small.get_submodule(layer.module)
        dev = mod.weight.device
        cols = _columns(layer, keep)
        _replace(small, layer.module, _cut_weight_layer(mod, rows.to(dev), None if cols is None else cols.to(dev)))
        for norm in layer.norms:
            _replace(small, norm, _cut_norm(small.get_submodule(norm), rows.to(dev)))
    return small


def shrink(model: nn.Module, masks: Masks) -> tuple[nn.Module, dict[str, list[int]]]:
    """The smaller dense network ``model`` (with ``masks`` applied) computes, and the units each layer keeps
    ([kept, of]). ConfigError for an architecture that cannot be cut (see :func:`..units.unit_chain`)."""
    chain = unit_chain(model)
    masked = copy.deepcopy(model)
    apply_masks(masked, masks)
    full = {u.name: masks.get(u.name, masked.get_parameter(u.name).detach() != 0) for u in chain}
    keep = removable(chain, full)
    units = {u.name: [int(keep[u.name].sum()), u.units] for u in chain}
    return resize(masked, keep), units


def widths(keep_units: dict[str, int], model: nn.Module) -> dict[str, torch.Tensor]:
    """``keep`` for :func:`resize` that keeps the first ``keep_units[name]`` units of each layer: the shape of a
    shrunk network, to load its state dict into (``resize(build_model(spec), widths(units, model))``)."""
    return {u.name: torch.arange(u.units) < keep_units[u.name] for u in unit_chain(model)}
