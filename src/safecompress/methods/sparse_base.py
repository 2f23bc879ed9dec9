"""Shared machinery of the sparse methods: initial masks at the target density, engine set-up, training."""

from __future__ import annotations

import torch
from torch import nn

from ..sparse.allocation import layer_counts
from ..sparse.criteria import GROW, PRUNE
from ..sparse.engine import DynamicSparse, SparseEngine
from ..sparse.masks import prunable_parameters, rescale_fan_in
from ..sparse.schedule import UpdateSchedule
from ..sparse.structures import STRUCTURES, Structure
from .base import Method, MethodContext, MethodResult


def target_counts(ctx: MethodContext, model: nn.Module) -> dict[str, int]:
    """Exact active-weight count per prunable layer at ``sparse.density``."""
    sp = ctx.cfg.sparse
    params = prunable_parameters(model)
    shapes = {n: tuple(p.shape) for n, p in params.items()}
    names = list(shapes)
    dense = (names[0], names[-1]) if sp.dense_first_last and names else ()
    return layer_counts(shapes, sp.density, sp.distribution, dense)


def structure_of(ctx: MethodContext, model: nn.Module) -> Structure:
    """The run's mask structure (``sparse.structure``) for ``model``; ConfigError where it cannot handle it."""
    sp = ctx.cfg.sparse
    return STRUCTURES.get(sp.structure)(model, dense_first=sp.dense_first_last)


def initial_masks(ctx: MethodContext, model: nn.Module, structure: Structure | None = None) -> dict[str, torch.Tensor]:
    """Random masks with the target counts (seeded from the run seed), shaped by ``structure`` (default: the
    run's). With ``sparse.init_scale`` the model's surviving weights are rescaled to keep each unit's dense
    fan-in variance."""
    gen = torch.Generator().manual_seed(ctx.cfg.seed + 7919)
    masks = (structure or structure_of(ctx, model)).initial_masks(target_counts(ctx, model), gen)
    if ctx.cfg.sparse.init_scale:
        rescale_fan_in(model, masks)
    return masks


class SparseMethod(Method):
    """A method = one training run with a sparse engine callback; subclasses build the engine."""

    # a subclass that builds its engine with the run's structure (structure_of) declares "channel" too
    structures: tuple[str, ...] = ("unstructured",)

    def make_engine(self, ctx: MethodContext, model: nn.Module) -> SparseEngine:
        raise NotImplementedError

    def extra_callbacks(self, ctx: MethodContext) -> list:
        """Further training callbacks of the method (e.g. an adversarial regulariser)."""
        return []

    def train(self, ctx: MethodContext) -> MethodResult:
        model = ctx.new_model()
        engine = self.engine_ = self.make_engine(ctx, model)
        self.extras_ = self.extra_callbacks(ctx)
        trainer = ctx.new_trainer(model, extra=[engine, *self.extras_])
        ctx.restore(trainer)
        state = trainer.fit(*ctx.part("train"))
        return MethodResult(
            model, {"epochs": state.epoch, "steps": state.step, "sparse": engine.stats()}, masks=engine.masks
        )


class DynamicSparseMethod(SparseMethod):
    """Prune→grow every ΔT steps with the method's default criteria (overridable in ``sparse``)."""

    prune_default = "magnitude"
    grow_default = "random"
    updates = True
    structures = ("unstructured", "channel")

    def criteria(self, ctx: MethodContext):
        sp = ctx.cfg.sparse
        return PRUNE.get(sp.prune or self.prune_default), GROW.get(sp.grow or self.grow_default)

    def make_engine(self, ctx: MethodContext, model: nn.Module) -> SparseEngine:
        sp = ctx.cfg.sparse
        structure = structure_of(ctx, model)
        masks = initial_masks(ctx, model, structure)
        if not self.updates:
            return SparseEngine(model, masks, seed=ctx.cfg.seed, structure=structure)
        total = ctx.total_steps()
        schedule = UpdateSchedule(sp.update_every, sp.update_fraction, int(sp.update_stop * total), sp.update_decay)
        prune, grow = self.criteria(ctx)
        return DynamicSparse(model, masks, schedule, prune, grow, seed=ctx.cfg.seed, structure=structure)
