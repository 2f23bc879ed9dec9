"""``channel``: structured sparsity — whole output units (conv filters, Linear rows) are pruned and grown.

A layer's mask is ``alive[out] x alive_producer[in]``: each unit keeps all of its weights or none, and the input
columns that read a pruned unit of the layer before are pruned as well (:func:`..units.chain_masks`), so the
masks count exactly the weights of the physically smaller network that :func:`..shrink.shrink` cuts out of the
trained model. Density is the same quantity as in unstructured mode: kept weights / prunable weights.

* Budget: the run's allocation (``sparse.distribution``) gives each layer a share; unit fractions follow those
  shares, scaled to the largest total that fits ``round(density x prunable weights)``, then topped up unit by
  unit while they still fit (:meth:`Channel.unit_counts`). The last layer (the classifier) keeps all its outputs,
  with ``sparse.dense_first_last`` the first layer too.
* Update (same schedule as unstructured): replace ``round(fraction x alive units)`` units per layer — drop the
  lowest unit prune scores, grow the highest unit grow scores among units that were dead before the drop. A
  unit's score is the L2 norm of its row of the criterion's per-weight scores (magnitude: the L2 norm of its
  weights; gradient: its gradient norm, RigL-style), or the mean for a criterion with signed scores
  (``leakage``); ties are broken at random. Note that the dense gradient of a dead unit's row is zero, because its
  outgoing columns are pruned too: gradient growth then ranks dead units equally and picks among them at random.
* Grown units: their incoming weights are drawn afresh (normal, std 1/sqrt(kept fan-in), from the engine's
  generator) while their outgoing columns start at zero, so growing leaves the network's function unchanged yet
  both sides receive gradients from the next step on (a unit with zero weights on both sides would never train).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from ..criteria import LayerState
from ..masks import Masks, prunable_parameters
from ..units import UnitLayer, alive_units, chain_masks, input_columns, unit_chain
from .base import STRUCTURES, Criterion, Structure


def unit_scores(scores: torch.Tensor) -> torch.Tensor:
    """One score per output unit: the L2 norm of its row of per-weight scores, or their mean when any is negative
    (a signed criterion, where the norm would reward large negative scores)."""
    rows = scores.detach().reshape(scores.shape[0], -1).float()
    return rows.norm(dim=1) if bool((rows >= 0).all()) else rows.mean(dim=1)


def _pick(score: torch.Tensor, allowed: torch.Tensor, n: int, largest: bool, generator: torch.Generator):
    """Indices of the ``n`` highest (``largest``) or lowest scores among ``allowed`` units, ties broken at random."""
    perm = torch.randperm(score.numel(), generator=generator)
    fill = float("-inf") if largest else float("inf")
    shuffled = score[perm].masked_fill(~allowed[perm], fill)
    order = torch.sort(shuffled, descending=largest, stable=True).indices[:n]
    return perm[order]


@STRUCTURES.register("channel")
class Channel(Structure):
    def __init__(self, model: nn.Module, dense_first: bool = False):
        super().__init__(model, dense_first)
        self.chain: list[UnitLayer] = unit_chain(model)  # ConfigError for models that are no plain chain
        params = prunable_parameters(model)
        self.shapes = {u.name: params[u.name].shape for u in self.chain}
        self.fixed = {self.chain[-1].name} | ({self.chain[0].name} if dense_first else set())

    # -- the budget ---------------------------------------------------------------------------------
    def weights(self, units: dict[str, int]) -> int:
        """Weights kept when each layer keeps ``units[name]`` output units (and the matching input columns)."""
        total = 0
        for u in self.chain:
            inputs = u.fan_in if u.producer is None else units[f"{u.producer}.weight"] * u.expand
            total += units[u.name] * inputs * u.kernel(math.prod(self.shapes[u.name]))
        return total

    def unit_counts(self, counts: dict[str, int]) -> dict[str, int]:
        """Alive units per layer whose kept weights come as close to ``sum(counts)`` as whole units allow without
        exceeding it; each layer's unit fraction follows its share ``counts[name] / weights`` of the allocation."""
        budget = sum(counts.values())
        share = {u.name: counts[u.name] / math.prod(self.shapes[u.name]) for u in self.chain}

        def plan(scale: float) -> dict[str, int]:
            return {
                u.name: u.units
                if u.name in self.fixed
                else min(u.units, max(1, math.floor(scale * share[u.name] * u.units)))
                for u in self.chain
            }

        if self.weights(plan(0.0)) > budget:
            total = sum(math.prod(s) for s in self.shapes.values())
            raise ConfigError(
                f"sparse.density {budget / total:.4g} is too low for channel sparsity: one unit per layer (and the "
                f"classifier's {self.chain[-1].units} outputs) already keeps {self.weights(plan(0.0))} of {total} "
                "weights; raise sparse.density"
            )
        lo, hi = 0.0, max((1.0 / s for s in share.values() if s > 0), default=1.0) + 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self.weights(plan(mid)) <= budget else (lo, mid)
        units = plan(lo)
        while True:  # top up one unit at a time, the layer furthest below its share first
            room = [
                u
                for u in self.chain
                if u.name not in self.fixed
                and units[u.name] < u.units
                and self.weights({**units, u.name: units[u.name] + 1}) <= budget
            ]
            if not room:
                return units
            best = min(room, key=lambda u: units[u.name] / (u.units * max(share[u.name], 1e-12)))
            units[best.name] += 1

    # -- the structure's interface ----------------------------------------------------------------------
    def initial_masks(self, counts: dict[str, int], generator: torch.Generator) -> Masks:
        """Random alive units per layer, as many as :meth:`unit_counts` allows (layer by layer, in chain order)."""
        alive: dict[str, torch.Tensor] = {}
        n_units = self.unit_counts(counts)
        for u in self.chain:
            a = torch.zeros(u.units, dtype=torch.bool)
            a[torch.randperm(u.units, generator=generator)[: n_units[u.name]]] = True
            alive[u.name] = a
        return chain_masks(self.chain, alive, self.shapes)

    @torch.no_grad()
    def update(self, states: dict[str, LayerState], fraction: float, prune: Criterion, grow: Criterion) -> Masks:
        alive: dict[str, torch.Tensor] = {}
        for u in self.chain:
            s = states[u.name]
            a = alive_units(s.mask).cpu()
            n = min(round(fraction * int(a.sum())), int(a.sum()), int((~a).sum()))
            if u.name in self.fixed or n <= 0:
                alive[u.name] = a
                continue
            drop = _pick(unit_scores(prune(s)).cpu(), a, n, largest=False, generator=s.generator)
            add = _pick(unit_scores(grow(s)).cpu(), ~a, n, largest=True, generator=s.generator)
            new = a.clone()
            new[drop] = False
            new[add] = True
            alive[u.name] = new
        masks = chain_masks(self.chain, alive, self.shapes)
        return {n: m.to(states[n].mask.device) for n, m in masks.items()}

    @torch.no_grad()
    def settle(self, masks: Masks, generator: torch.Generator) -> None:
        """Fresh incoming weights for every alive unit whose kept weights are all zero (a unit just grown)."""
        params = prunable_parameters(self.model)
        for u in self.chain:
            w = params[u.name]
            m = masks[u.name].to(w.device)
            rows = m.reshape(u.units, -1)
            empty = rows.any(dim=1) & ((w * m).reshape(u.units, -1) == 0).all(dim=1)
            if not bool(empty.any()):
                continue
            fan_in = int(rows[empty].sum(dim=1).max())
            fresh = torch.randn(w.shape, generator=generator).to(w.device, w.dtype) / math.sqrt(fan_in)
            w[empty] = (fresh * m)[empty]

    def stats(self, masks: Masks) -> dict[str, Any]:
        units = {}
        for u in self.chain:
            a = alive_units(masks[u.name])
            units[u.name] = [int(a.sum()), u.units]
        return {"structure": "channel", "units": units}


def check_columns(chain: list[UnitLayer], masks: Masks) -> bool:
    """Whether ``masks`` are channel masks of ``chain``: each layer's mask is its alive units times the alive
    units of the layer before (a test's and a loader's check)."""
    for u in chain:
        m = masks[u.name].cpu()
        producer = None if u.producer is None else alive_units(masks[f"{u.producer}.weight"]).cpu()
        grid = alive_units(m)[:, None] & input_columns(u, producer)[None, :]
        if not torch.equal(m, grid.reshape(*grid.shape, *([1] * (m.dim() - 2))).expand(m.shape)):
            return False
    return True
