"""The sparse engine: a training callback that owns the masks and changes the topology on schedule.

* :class:`SparseEngine` keeps masks applied after every optimizer step, zeroes the optimizer state at
  masked positions, and records per-layer density and the "ever active" fraction (the in-time
  over-parameterisation rate of Liu et al. 2021).
* :class:`DynamicSparse` — prune→grow every ΔT steps (SET, RigL, MEST ...).
* :class:`GradualPruning` — magnitude pruning from dense on a cubic schedule (GMP); with start = end
  it is one-shot pruning followed by fine-tuning.

Every update keeps exact non-zero counts; grown weights start at zero with zero optimizer state. The engine's
``structure`` (:mod:`.structures`, ``sparse.structure``) shapes the masks: single weights (default) or whole units.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import torch
from torch import nn

from ..train import Callback, Trainer
from .allocation import layer_counts
from .criteria import LayerState
from .masks import Masks, apply_masks, count_nonzero, mask_optimizer_state, prunable_parameters, topk_masks
from .schedule import UpdateSchedule, gmp_density
from .structures import Structure, prune_and_grow
from .structures.unstructured import Unstructured

log = logging.getLogger(__name__)
Criterion = Callable[[LayerState], torch.Tensor]
__all__ = ["DynamicSparse", "GradualPruning", "SparseEngine", "find_engine", "prune_and_grow"]


def _momentum(optimizer: torch.optim.Optimizer, param: nn.Parameter) -> torch.Tensor | None:
    state = optimizer.state.get(param, {})
    return state.get("momentum_buffer", state.get("exp_avg"))


def find_engine(trainer) -> "SparseEngine | None":
    """The sparse engine among a trainer's callbacks (None for dense training)."""
    return next((cb for cb in trainer.callbacks if isinstance(cb, SparseEngine)), None)


class SparseEngine(Callback):
    """Holds masks (plain bool tensors, never module buffers) and keeps the model sparse; ``structure`` shapes the
    masks of topology updates (default: unstructured)."""

    def __init__(self, model: nn.Module, masks: Masks, seed: int = 0, structure: Structure | None = None):
        params = prunable_parameters(model)
        unknown = set(masks) - set(params)
        if unknown:
            raise ValueError(f"masks for unknown parameters: {sorted(unknown)}")
        self.model = model
        self.structure = structure if structure is not None else Unstructured(model)
        self.masks = {k: v.to(params[k].device) for k, v in masks.items()}
        self.ever_active = {k: v.clone() for k, v in self.masks.items()}
        self.generator = torch.Generator().manual_seed(seed)
        self.updates: list[dict[str, Any]] = []

    # -- keeping the model sparse ---------------------------------------------------------------
    def on_fit_start(self, trainer: Trainer) -> None:
        apply_masks(self.model, self.masks)
        mask_optimizer_state(trainer.optimizer, self.model, self.masks)

    def on_step_end(self, trainer: Trainer) -> None:
        self.maybe_update(trainer)
        apply_masks(self.model, self.masks)
        mask_optimizer_state(trainer.optimizer, self.model, self.masks)

    def maybe_update(self, trainer: Trainer) -> None:
        """Subclasses change the topology here."""

    def set_masks(self, masks: Masks, trainer: Trainer | None = None) -> None:
        self.masks = masks
        for name, mask in masks.items():
            self.ever_active[name] |= mask
        self.structure.settle(masks, self.generator)
        apply_masks(self.model, masks)
        if trainer is not None:
            mask_optimizer_state(trainer.optimizer, self.model, masks)

    def layer_states(self, trainer: Trainer) -> dict[str, LayerState]:
        params = prunable_parameters(self.model)
        return {
            name: LayerState(
                weight=params[name].detach(),
                mask=mask,
                grad=None if params[name].grad is None else params[name].grad.detach(),
                momentum=_momentum(trainer.optimizer, params[name]),
                ever_active=self.ever_active[name],
                generator=self.generator,
            )
            for name, mask in self.masks.items()
        }

    # -- statistics ------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        layers = {
            name: {
                "shape": list(mask.shape),
                "nonzeros": int(mask.sum()),
                "density": float(mask.float().mean()),
                "ever_active": float(self.ever_active[name].float().mean()),
            }
            for name, mask in self.masks.items()
        }
        total = sum(m.numel() for m in self.masks.values())
        ever = sum(int(m.sum()) for m in self.ever_active.values())
        return {
            "prunable_density": count_nonzero(self.masks) / total if total else 1.0,
            "itop_rate": ever / total if total else 1.0,
            "topology_updates": len(self.updates),
            "layers": layers,
            **self.structure.stats(self.masks),
        }

    # -- checkpointing (collected by Trainer.state_tensors) ----------------------------------------
    def get_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"mask.{k}": v.cpu() for k, v in self.masks.items()}
        tensors.update({f"ever.{k}": v.cpu() for k, v in self.ever_active.items()})
        tensors["generator"] = self.generator.get_state()
        return tensors, {"updates": self.updates}

    def set_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.masks = {k: tensors[f"mask.{k}"].to(v.device) for k, v in self.masks.items()}
        self.ever_active = {k: tensors[f"ever.{k}"].to(v.device) for k, v in self.ever_active.items()}
        self.generator.set_state(tensors["generator"])
        self.updates = list(meta["updates"])


class DynamicSparse(SparseEngine):
    """Dynamic sparse training: every ΔT steps replace a decaying fraction of each layer's weights."""

    def __init__(
        self,
        model: nn.Module,
        masks: Masks,
        schedule: UpdateSchedule,
        prune: Criterion,
        grow: Criterion,
        seed: int = 0,
        structure: Structure | None = None,
    ):
        super().__init__(model, masks, seed, structure)
        self.schedule = schedule
        self.prune = prune
        self.grow = grow

    def maybe_update(self, trainer: Trainer) -> None:
        step = trainer.state.step
        if not self.schedule.is_update_step(step):
            return
        fraction = self.schedule.fraction_at(step)
        new = self.structure.update(self.layer_states(trainer), fraction, self.prune, self.grow)
        changed = sum(int((new[n] & ~self.masks[n]).sum()) for n in new)
        self.set_masks(new, trainer)
        self.updates.append({"step": step, "fraction": round(fraction, 6), "replaced": changed})
        log.debug("step %d: replaced %d weights (fraction %.3f)", step, changed, fraction)


class GradualPruning(SparseEngine):
    """Magnitude pruning from dense to the target counts on a cubic schedule (start == end: one-shot)."""

    def __init__(
        self,
        model: nn.Module,
        final_counts: dict[str, int],
        start: int,
        end: int,
        every: int,
        distribution: str,
        density: float,
        seed: int = 0,
    ):
        params = prunable_parameters(model)
        dense = {n: torch.ones_like(params[n], dtype=torch.bool) for n in final_counts}
        super().__init__(model, dense, seed)
        self.final_counts = final_counts
        self.start, self.end, self.every = start, end, max(1, every)
        self.distribution, self.density = distribution, density
        self.shapes = {n: tuple(params[n].shape) for n in final_counts}

    def maybe_update(self, trainer: Trainer) -> None:
        step = trainer.state.step
        if step < self.start or step > self.end or (step != self.end and (step - self.start) % self.every):
            return
        if step >= self.end:
            counts = self.final_counts
        else:
            d = gmp_density(step, self.start, self.end, self.density)
            counts = layer_counts(self.shapes, d, self.distribution)
        params = prunable_parameters(self.model)
        scores = {n: params[n].detach().abs().masked_fill(~self.masks[n], -1.0) for n in self.masks}
        self.set_masks(topk_masks(scores, counts), trainer)
        self.updates.append(
            {"step": step, "density": count_nonzero(self.masks) / sum(m.numel() for m in self.masks.values())}
        )
