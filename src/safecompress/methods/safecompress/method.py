"""The ``safecompress`` method: sparse training (ERK init at ``sparse.density``) with the test-driven loop
of :mod:`.engine` as its sparse engine, plus the loop's optional training terms (Nasr et al.'s min-max
adversary, an adversarial attribute head) and its report section."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...adversarial import AdversarialRegularizer
from ...errors import ConfigError
from ...sparse.engine import SparseEngine
from ...sparse.schedule import UpdateSchedule
from ..base import MethodContext, MethodResult, register_method
from ..sparse_base import SparseMethod, initial_masks, structure_of
from .attribute_adversary import AttributeAdversary
from .engine import SafeCompressEngine


@register_method("safecompress")
class SafeCompress(SparseMethod):
    needs_parts = ("train", "val", "probe_members", "probe_nonmembers")
    structures = ("unstructured", "channel")

    def make_engine(self, ctx: MethodContext, model: nn.Module) -> SparseEngine:
        sp = ctx.cfg.sparse
        total = ctx.total_steps()
        schedule = UpdateSchedule(sp.update_every, 1.0, int(sp.update_stop * total), sp.update_decay)
        structure = structure_of(ctx, model)
        return SafeCompressEngine(ctx, model, initial_masks(ctx, model, structure), schedule, structure)

    def extra_callbacks(self, ctx: MethodContext) -> list:
        sc = ctx.cfg.safecompress
        out: list = []
        if sc.adversarial.enabled:
            adv = sc.adversarial
            idx = torch.as_tensor(np.asarray(ctx.split["probe_nonmembers"]))
            start = int(adv.warmup * ctx.total_steps())
            out.append(
                AdversarialRegularizer(
                    ctx.spec.n_classes,
                    (ctx.X[idx], ctx.y[idx]),
                    beta=adv.beta,
                    k=adv.steps,
                    start_step=start,
                    with_loss=adv.with_loss,
                    seed=ctx.cfg.seed,
                )
            )
        if sc.attribute_adversary > 0:
            if ctx.sensitive is None:
                raise ConfigError("safecompress.attribute_adversary needs a dataset with a sensitive attribute")
            train = np.asarray(ctx.split["train"])
            out.append(
                AttributeAdversary(
                    ctx.X[torch.as_tensor(train)],
                    np.asarray(ctx.sensitive)[train],
                    beta=sc.attribute_adversary,
                    seed=ctx.cfg.seed,
                )
            )
        return out

    def train(self, ctx: MethodContext) -> MethodResult:
        result = super().train(ctx)
        engine_rounds = result.report["sparse"]["topology_updates"]
        result.report["safecompress"] = {
            "rounds": engine_rounds,
            "simulate": ctx.cfg.safecompress.simulate,
            "objective": ctx.cfg.safecompress.objective,
        }
        best = self.engine_.best
        result.report["safecompress"]["final_round"] = best["round"] if best else "final"
        result.report["safecompress"]["final"] = ctx.cfg.safecompress.final
        # optimizer steps the chosen candidates' fine-tuning took in place of the main training's batches
        result.report["safecompress"]["finetune_steps_counted"] = sum(
            r.get("steps_counted", 0) for r in self.engine_.rounds
        )
        timing = {"rounds_s": round(self.engine_.loop_s, 3)}
        for cb in self.extras_:
            if isinstance(cb, AdversarialRegularizer):
                timing["adversarial_s"] = round(cb.seconds, 3)
            if isinstance(cb, AttributeAdversary):
                timing["attribute_adversary_s"] = round(cb.seconds, 3)
                tail = cb.head_accuracy[-50:]
                result.report["safecompress"]["attribute_head_accuracy"] = (
                    round(float(np.mean(tail)), 4) if tail else None
                )
        result.report["timing"] = timing
        return result
