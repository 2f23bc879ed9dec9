"""The unit chain of a feed-forward network: which layers' output units (Linear rows, conv filters) feed which
layer's inputs, and which per-unit normalisations sit in between.

Structured (channel) sparsity and the physical shrinking of a model both rest on it: removing unit ``j`` of a
layer is exact only when every consumer of that unit's output ignores it, i.e. the matching input columns of the
next layer are pruned too. That is easy to state for a plain chain of layers — ``nn.Sequential`` models such as
the zoo's ``mlp`` and ``cnn`` — and wrong for a residual net (a shortcut adds a layer's output to another's, so
their units are tied) or a layer that mixes channels outside a weight (GroupNorm, LayerNorm). :func:`unit_chain`
therefore accepts only ``nn.Sequential`` containers of weight layers and per-unit operations, and refuses
everything else with a message that names the offending module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from .masks import Masks

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# element-wise operations (any unit count in, the same out)
ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
)
POOLS = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
PER_UNIT = (*ELEMENTWISE, *POOLS)  # act on every unit (channel / feature) separately, keep the count
SUPPORTED = "nn.Sequential models of Linear/Conv layers, BatchNorm, element-wise activations, pooling and Flatten"


@dataclass(frozen=True)
class UnitLayer:
    """One weight layer of the chain."""

    name: str  # the weight's parameter name, e.g. "4.weight"
    module: str  # the layer's module path, e.g. "4"
    units: int  # output units: rows of a Linear, filters of a Conv
    fan_in: int  # input units: columns of a Linear, input channels of a Conv
    producer: str | None  # the unit layer whose outputs are this layer's inputs (None: the model's input)
    expand: int  # input columns per producer unit (> 1 where a C x H x W map was flattened into a Linear)
    norms: tuple[str, ...]  # module paths of the BatchNorm layers that normalise this layer's units

    def kernel(self, weight_numel: int) -> int:
        """Weights per (output unit, input unit) pair: 1 for a Linear, the kernel size for a Conv."""
        return weight_numel // (self.units * self.fan_in)


def _refuse(what: str) -> ConfigError:
    return ConfigError(
        f"structured (channel) sparsity cannot handle this model: {what}. It supports {SUPPORTED} (the zoo's "
        "'mlp' and 'cnn' with norm batch or none); use sparse.structure=unstructured for other architectures"
    )


def _leaves(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """The modules a Sequential runs, in order, with nested Sequentials opened up."""
    if type(module).forward is not nn.Sequential.forward:
        raise _refuse(
            f"{prefix or 'the model'} ({type(module).__name__}) has its own forward(), so the order its layers run "
            "in (and any shortcut between them) cannot be read from its modules"
        )
    out: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Sequential):
            out += _leaves(child, path)
        else:
            out.append((path, child))
    return out


def unit_chain(model: nn.Module) -> list[UnitLayer]:
    """The model's weight layers in forward order, each with the layer feeding it; ConfigError for a model that is
    not such a chain (a residual net, a custom forward, channel-mixing norms, grouped convolutions, embeddings)."""
    chain: list[UnitLayer] = []
    norms: dict[str, list[str]] = {}
    current: str | None = None  # the unit layer whose units the running activations carry
    linear = False  # whether that layer is a Linear (activations are (batch, features))
    flattened = False  # a conv's (batch, C, ...) map was flattened since that layer
    units = 0
    for path, mod in _leaves(model, ""):
        if isinstance(mod, WEIGHT_LAYERS):
            if isinstance(mod, nn.Linear):
                fan_in, out = mod.in_features, mod.out_features
            else:
                if mod.groups != 1:
                    raise _refuse(f"{path} is a grouped convolution (groups={mod.groups})")
                if flattened:
                    raise _refuse(f"{path} is a convolution after a Flatten")
                fan_in, out = mod.in_channels, mod.out_channels
            expand = 1
            if current is not None:
                if isinstance(mod, nn.Linear) and flattened and fan_in % units == 0:
                    expand = fan_in // units
                if fan_in != units * expand or (expand > 1 and not flattened):
                    raise _refuse(f"{path} takes {fan_in} inputs but the layer before it gives {units} units")
            chain.append(UnitLayer(f"{path}.weight", path, out, fan_in, current, expand, ()))
            norms[path] = []
            current, units, flattened, linear = path, out, False, isinstance(mod, nn.Linear)
        elif isinstance(mod, NORMS):
            if current is None or flattened or mod.num_features != units:
                raise _refuse(f"{path} ({type(mod).__name__}) does not normalise the units of one layer")
            norms[current].append(path)
        elif isinstance(mod, nn.Flatten):
            flattened = flattened or not linear  # flattening (batch, features) is a no-op
        elif isinstance(mod, POOLS) and linear:
            raise _refuse(f"{path} pools the features of the Linear layer {current}")
        elif isinstance(mod, PER_UNIT):
            continue
        elif isinstance(mod, (nn.Embedding, nn.EmbeddingBag)):
            raise _refuse(f"{path} is an embedding table (its rows are tokens, not units)")
        else:
            raise _refuse(f"{path} ({type(mod).__name__}) is not known to act on every unit separately")
    if not chain:
        raise _refuse("it has no Linear or Conv layer")
    prunable = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, (*WEIGHT_LAYERS, nn.Embedding))}
    missing = prunable - {u.name for u in chain}
    if missing:
        raise _refuse(f"{sorted(missing)} are outside the chain")
    return [UnitLayer(u.name, u.module, u.units, u.fan_in, u.producer, u.expand, tuple(norms[u.module])) for u in chain]


def alive_units(mask: torch.Tensor) -> torch.Tensor:
    """Bool vector over a layer's output units: True where the unit keeps any weight."""
    return mask.reshape(mask.shape[0], -1).any(dim=1)


def input_columns(layer: UnitLayer, producer_alive: torch.Tensor | None) -> torch.Tensor:
    """Bool vector over a layer's input units: the producer's alive units, each repeated ``expand`` times (all
    True for the first layer, whose inputs are the data)."""
    if producer_alive is None:
        return torch.ones(layer.fan_in, dtype=torch.bool)
    return producer_alive.repeat_interleave(layer.expand)


def chain_masks(chain: list[UnitLayer], alive: dict[str, torch.Tensor], shapes: dict[str, torch.Size]) -> Masks:
    """Masks with whole rows per alive unit whose pruned producer units' input columns are pruned too: the weight
    mask of a layer is ``alive[out] x alive_producer[in]`` (over the kernel), so a mask counts exactly the weights
    a physically smaller network keeps."""
    masks: Masks = {}
    for layer in chain:
        cols = input_columns(layer, None if layer.producer is None else alive[f"{layer.producer}.weight"].cpu())
        rows = alive[layer.name].cpu()
        shape = torch.Size(shapes[layer.name])
        grid = rows[:, None] & cols[None, :]
        masks[layer.name] = grid.reshape(*grid.shape, *([1] * (len(shape) - 2))).expand(shape).contiguous()
    return masks


def removable(chain: list[UnitLayer], masks: Masks) -> dict[str, torch.Tensor]:
    """Kept units per layer after shrinking: a unit can go when every input column of its consumer that reads it
    is pruned (its output, a constant or not, then reaches nothing). The last layer (the classifier) keeps all."""
    consumer = {u.producer: u for u in chain if u.producer is not None}
    keep: dict[str, torch.Tensor] = {}
    for layer in chain:
        nxt = consumer.get(layer.module)
        if nxt is None:
            keep[layer.name] = torch.ones(layer.units, dtype=torch.bool)
            continue
        m = masks[nxt.name].cpu()
        cols = m.reshape(nxt.units, nxt.fan_in, -1).any(dim=2).any(dim=0)  # (fan_in,)
        kept = cols.reshape(layer.units, nxt.expand).any(dim=1)
        if not kept.any():
            kept[0] = True  # keep one (its outputs reach nothing either way): no zero-size layers
        keep[layer.name] = kept
    return keep
