"""What a mask structure does for the sparse engine, and the STRUCTURES registry.

A structure draws the initial masks at the run's per-layer weight budgets, turns a topology update (a fraction,
a prune and a grow criterion) into new masks, may adjust the weights after the masks change (``settle``) and adds
its own numbers to the engine's statistics.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ...registry import Registry
from ..criteria import LayerState
from ..masks import Masks

Criterion = Callable[[LayerState], torch.Tensor]


@torch.no_grad()
def prune_and_grow(state: LayerState, n: int, prune: Criterion, grow: Criterion) -> torch.Tensor:
    """Replace ``n`` active weights of one layer: drop the ``n`` lowest prune scores, then activate the
    ``n`` highest grow scores among positions that were inactive before the drop. Returns the new mask."""
    mask = state.mask
    flat = mask.flatten()
    n = int(min(n, int(flat.sum()), int((~flat).sum())))
    if n <= 0:
        return mask.clone()
    keep = prune(state).flatten().float().masked_fill(~flat, float("inf"))
    drop = torch.topk(keep, n, largest=False, sorted=False).indices
    gain = grow(state).flatten().float().masked_fill(flat, float("-inf"))
    add = torch.topk(gain, n, largest=True, sorted=False).indices
    new = flat.clone()
    new[drop] = False
    new[add] = True
    return new.view_as(mask)


class Structure:
    """The interface; ``model`` is the network the masks belong to, ``dense_first`` keeps its first prunable
    layer whole (``sparse.dense_first_last``)."""

    name = ""

    def __init__(self, model: nn.Module, dense_first: bool = False):
        self.model = model
        self.dense_first = dense_first

    def initial_masks(self, counts: dict[str, int], generator: torch.Generator) -> Masks:
        """Masks at (about) ``counts`` kept weights per layer, drawn with ``generator``."""
        raise NotImplementedError

    def update(self, states: dict[str, LayerState], fraction: float, prune: Criterion, grow: Criterion) -> Masks:
        """New masks after replacing ``fraction`` of what each layer keeps."""
        raise NotImplementedError

    def settle(self, masks: Masks, generator: torch.Generator) -> None:
        """Adjust the model's weights after the engine switched to ``masks`` (nothing by default)."""

    def stats(self, masks: Masks) -> dict[str, Any]:
        """The structure's own statistics, merged into the engine's (nothing by default)."""
        return {}


STRUCTURES: Registry[type[Structure]] = Registry("sparse structure")
