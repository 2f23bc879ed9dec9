"""``unstructured`` (the default): every weight is pruned and grown on its own (SET, RigL, MEST ...)."""

from __future__ import annotations

import torch

from ..criteria import LayerState
from ..masks import Masks, prunable_parameters, random_masks
from .base import STRUCTURES, Criterion, Structure, prune_and_grow


@STRUCTURES.register("unstructured")
class Unstructured(Structure):
    def initial_masks(self, counts: dict[str, int], generator: torch.Generator) -> Masks:
        """Exactly ``counts[name]`` active weights per layer, positions drawn uniformly."""
        params = prunable_parameters(self.model)
        return random_masks({n: p.shape for n, p in params.items()}, counts, generator)

    def update(self, states: dict[str, LayerState], fraction: float, prune: Criterion, grow: Criterion) -> Masks:
        return {name: prune_and_grow(s, round(fraction * int(s.mask.sum())), prune, grow) for name, s in states.items()}
