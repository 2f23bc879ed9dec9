"""``safecompress``: test-driven sparse training (Zhu et al., TSE 2024 / ASE 2022), done properly.

Sparse init at the target density (ERK by default), then every ΔT steps a *round*:

1. fit the simulated attacker(s) on the current model with the fit halves of ``probe_members`` /
   ``probe_nonmembers``;
2. make N candidates: N prune→grow updates of the current weights and masks, one per configured
   strategy (criteria and update fraction);
3. test each candidate: accuracy on ``val`` and each attacker's AUC/advantage on the held-apart
   probe halves;
4. keep the candidate with the best bi-objective score (``objectives.py``); log the round's table
   to ``rounds.jsonl``.

The final model is the best round winner (or the final weights) by the same objective on ``val`` —
never ``test``, never audit data.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from ...defences import DEFENCES, Defence
from ...errors import ConfigError
from ...executor import LocalExecutor, resources_for
from ...fileio import atomic_write_text
from ...sparse.criteria import GROW, PRUNE
from ...sparse.engine import SparseEngine
from ...sparse.masks import prunable_parameters
from ...sparse.schedule import UpdateSchedule
from ...sparse.structures import Structure
from ...train import Trainer
from ..base import MethodContext
from .candidates import CandidateData, CandidateTask, FineTune, Serving, assess, run_candidate
from .objectives import Candidate, select
from .simulate import ProbeData, Simulator

log = logging.getLogger(__name__)
REGULARIZER_PARAM = {
    "relaxloss": "alpha",
    "confidence_penalty": "beta",
    "label_smoothing": "epsilon",
    "hamp": "entropy_threshold",
}


def regularizer_callback(name: str, strength: float, ctx: MethodContext):
    """The training callback of defence ``name`` at ``strength`` (None for none or zero strength)."""
    if name == "none" or strength <= 0:
        return None
    params = {REGULARIZER_PARAM[name]: strength}
    if name == "hamp":
        params["remap"] = False  # the training part only; serving is the run's own defence's business
    return DEFENCES.get(name)(**params).callbacks(ctx)[0]


def _halves(ctx: MethodContext, seed: int) -> tuple[ProbeData, ProbeData]:
    """Probe data split into (fit, test) halves, each balanced members / non-members (with the sensitive
    attribute when the dataset has one)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9B]))
    halves: list[list[np.ndarray]] = [[], []]
    members: list[list[np.ndarray]] = [[], []]
    for part, member in (("probe_members", True), ("probe_nonmembers", False)):
        idx = rng.permutation(np.asarray(ctx.split[part]))
        for h, chunk in enumerate(np.array_split(idx, 2)):
            halves[h].append(chunk)
            members[h].append(np.full(len(chunk), member))
    out = []
    for h in range(2):
        idx = np.concatenate(halves[h])
        t = torch.as_tensor(idx)
        s = None if ctx.sensitive is None else np.asarray(ctx.sensitive)[idx]
        out.append(ProbeData(ctx.X[t], ctx.y[t], np.concatenate(members[h]), s))
    return out[0], out[1]


class SafeCompressEngine(SparseEngine):
    def __init__(
        self, ctx: MethodContext, model: nn.Module, masks, schedule: UpdateSchedule, structure: Structure | None = None
    ):
        super().__init__(model, masks, seed=ctx.cfg.seed, structure=structure)
        self.ctx, self.cfg = ctx, ctx.cfg.safecompress
        self.schedule = schedule
        self.fit_probe, self.test_probe = _halves(ctx, ctx.cfg.seed)
        val_idx = torch.as_tensor(np.asarray(ctx.split["val"])[: self.cfg.val_samples])
        train_idx = torch.as_tensor(np.asarray(ctx.split["train"]))
        self.data = CandidateData(
            (ctx.X[val_idx], ctx.y[val_idx]),
            self.test_probe,
            (ctx.X[train_idx], ctx.y[train_idx]),
            self._serving(ctx),
            fit_probe=self.fit_probe if self.cfg.cross_fit else None,
        )
        self.executor = ctx.executor or LocalExecutor()
        self._shared_handle = None
        kind = "text" if ctx.spec.vocab_size else "image" if ctx.X.dim() == 4 else "tabular"
        self.simulators = [
            Simulator(n, ctx.spec.n_classes, kind, ctx.cfg.seed, self.cfg.attacker_epochs, self.cfg.low_fpr)
            for n in self.cfg.simulate
        ]
        # cross-fitting: twins fitted on the test half (with their own seeds) and tested on the fit half
        twin_seed = int(np.random.SeedSequence([ctx.cfg.seed, 0x5C]).generate_state(1)[0] % 2**31)
        self.swapped = (
            [
                Simulator(n, ctx.spec.n_classes, kind, twin_seed, self.cfg.attacker_epochs, self.cfg.low_fpr)
                for n in self.cfg.simulate
            ]
            if self.cfg.cross_fit
            else None
        )
        self._check_tpr_resolution(ctx)
        self.rounds: list[dict[str, Any]] = []
        # the regulariser of the last chosen candidate, which trains the model until the next round
        self.reg_name, self.strength = "none", 0.0
        self._reg_cache: tuple[float, Any] | None = None
        self.best: dict[str, Any] | None = None  # {"round", "score", "state", "masks", "candidate"}
        self.loop_s = 0.0  # seconds spent in rounds (attacker fits, candidates, tests): the overhead over RigL

    def _serving(self, ctx: MethodContext) -> Serving | None:
        """The run's inference-time defence, which the simulators attack through (None when the network is
        served as it is, or with ``safecompress.simulate_served: false``)."""
        defence = ctx.defence
        if not self.cfg.simulate_served or type(defence).deploy is Defence.deploy:
            return None
        return Serving(defence, ctx.cfg.seed)

    def _fit_simulators(self, r: int) -> None:
        """Fit every simulator on the fit probe half against the current model, as served (and, cross-fitting,
        every twin on the test half)."""
        served, device = self.data.served(self.model, self.ctx.device), self.ctx.device
        pairs = [(sim, self.fit_probe) for sim in self.simulators]
        pairs += [(twin, self.test_probe) for twin in self.swapped or []]
        for sim, half in pairs:
            sim.fit(sim.view(self.model, served, device), half, round_seed=r, device=device)

    def _check_tpr_resolution(self, ctx: MethodContext) -> None:
        """A TPR budget at FPR f needs ≥ 10/f probe non-members in the test half (else the TPR is noise)."""
        n_out = int((~self.test_probe.is_member).sum())
        if self.cfg.objective != "budget" or self.cfg.budget_metric != "tpr" or n_out * self.cfg.low_fpr >= 10:
            return
        if not ctx.record:  # a reference model replays the recipe on its own split: the target's run decides
            log.warning(
                "reference model: %d probe non-members in the test half resolve FPR %g only coarsely",
                n_out,
                self.cfg.low_fpr,
            )
            return
        raise ConfigError(
            f"a TPR budget at FPR {self.cfg.low_fpr:g} needs at least {int(np.ceil(10 / self.cfg.low_fpr))} probe "
            f"non-members in the loop's test half, but it has {n_out}: enlarge split.probe_nonmembers or raise "
            "safecompress.low_fpr"
        )

    # -- one round ---------------------------------------------------------------------------------
    def _assess(self) -> Candidate:
        """Accuracy on val and every simulator's leakage on the test probe half, for the current model."""
        return assess(self.model, self.data, self.simulators, self.ctx.device, self.swapped)

    def maybe_update(self, trainer: Trainer) -> None:
        step = trainer.state.step
        if self.schedule.is_update_step(step):
            t0 = time.perf_counter()
            self._round(trainer)
            self.loop_s += time.perf_counter() - t0

    # -- the chosen candidate's regulariser --------------------------------------------------------
    @property
    def regularised(self) -> bool:
        return self.reg_name != "none"

    def extra_loss(self, trainer, xb, yb, logits):
        if not self.regularised or self.strength <= 0:
            return None
        key = (self.reg_name, self.strength)
        if self._reg_cache is None or self._reg_cache[0] != key:
            self._reg_cache = (key, regularizer_callback(self.reg_name, self.strength, self.ctx))
        return self._reg_cache[1].extra_loss(trainer, xb, yb, logits)

    def _shared(self):
        """The run's candidate data, handed to the executor once."""
        if self._shared_handle is None:
            self._shared_handle = self.executor.share(self.data)
        return self._shared_handle

    def _round(self, trainer: Trainer) -> None:
        step = trainer.state.step
        r = len(self.rounds)
        self._fit_simulators(r)
        decay = self.schedule.fraction_at(step) / self.schedule.fraction if self.schedule.fraction else 0.0
        base = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        states = self.layer_states(trainer)
        gap = self._gap_gradients() if any(c.prune == "leakage" for c in self.cfg.candidates) else {}
        for name, state in states.items():
            state.weight = base[name]  # candidates are scored from the same weights, not from each other
            state.gap_grad = gap.get(name)
        was_training = self.model.training
        cand_masks, tasks = [], []
        local = isinstance(self.executor, LocalExecutor)
        template = copy.deepcopy(self.model).cpu()  # the base weights (masks are applied per candidate)
        lr = trainer.optimizer.param_groups[0]["lr"]
        for i, strategy in enumerate(self.cfg.candidates):
            prune, grow = PRUNE.get(strategy.prune), GROW.get(strategy.grow)
            masks = self.structure.update(states, strategy.fraction * decay, prune, grow)
            cand_masks.append(masks)
            ft = None
            if self.cfg.finetune_steps:
                seed = int(np.random.SeedSequence([self.ctx.cfg.seed, r, i, 0xF7]).generate_state(1)[0])
                ft = FineTune(
                    self.cfg.finetune_steps,
                    trainer.cfg,
                    lr,
                    seed,
                    trainer.augment,
                    trainer.flip,
                    regularizer_callback(strategy.regularizer, strategy.strength, self.ctx),
                    epoch=trainer.state.epoch,
                )
            tasks.append(
                (
                    self._shared(),
                    CandidateTask(
                        template,
                        {n: m.cpu() for n, m in masks.items()},
                        self.simulators,
                        ft,
                        str(self.ctx.device),
                        threads=None if local else torch.get_num_threads(),
                        swapped=self.swapped,
                    ),
                )
            )
        results = self.executor.map(run_candidate, tasks, resources=resources_for(self.ctx.device))
        candidates = [c for c, _ in results]
        chosen, scores = self._select(candidates)
        state = results[chosen][1]
        self.model.load_state_dict(state if state is not None else base)
        self.set_masks({n: m.to(self.masks[n].device) for n, m in cand_masks[chosen].items()}, trainer)
        self.model.train(was_training)
        # the chosen candidate's fine-tuning steps are the model's own training steps: the main training skips
        # as many batches, so the final model has taken epochs × steps per epoch optimizer steps like every
        # other method's (at most ΔT − 1 per round, so no topology update is passed over)
        counted = min(self.cfg.finetune_steps, self.schedule.every - 1) if state is not None else 0
        trainer.skip(counted)
        table = [
            {
                "strategy": s.model_dump(),
                "val_accuracy": c.accuracy,
                "attack_auc": c.aucs,
                "attack_advantage": c.advantages,
                **({"attack_tpr": c.tprs} if self._tpr_logged else {}),
                "score": sc,
                "chosen": i == chosen,
            }
            for i, (s, c, sc) in enumerate(zip(self.cfg.candidates, candidates, scores))
        ]
        self.rounds.append(
            {
                "round": r,
                "step": step,
                "epoch": trainer.state.epoch,
                "decay": round(decay, 4),
                "candidates": table,
                "chosen": chosen,
                "steps_counted": counted,
            }
        )
        self.updates.append({"step": step, "round": r, "chosen": chosen})
        picked = self.cfg.candidates[chosen]
        # the chosen candidate's regulariser trains the model until the next round; choosing a candidate
        # without one keeps the current regulariser. (Dropping it — "none" continuing unregularised — was
        # measured to destabilise the loop: the model grows confident on hard labels, every regularised
        # candidate then loses 10-20 points of val accuracy in its fine-tuning steps, and a budget nothing
        # meets picks a collapsed model: 0.446 test accuracy, bench/results/served-switching.)
        # (Setting the strength by feedback instead — an integral controller on HAMP's soft labels driven by the
        # in-loop served leakage, every round to the end of training — was measured and removed: leakage builds
        # up irreversibly while the signal lags, so the controller saturated at full strength after the model
        # had memorised and lost 3-8 points for no privacy, dominated by a fixed strength; bench/results/control.)
        # (Protecting, per record, the training records the calibrated test catches — soft labels or no gradient for
        # them — was measured and removed too: it cost 1.5 points, and the records that leak most, e.g. mislabelled
        # ones, sit far below their class's typical non-member, so a class-level test never catches them; README.)
        if picked.regularizer != "none":
            self.reg_name, self.strength = picked.regularizer, picked.strength
        if self.regularised:
            self.rounds[-1]["regularizer"] = {"name": self.reg_name, "strength": self.strength}
        if self.cfg.final == "best_round":
            self._consider(r, candidates[chosen])
        self._write_rounds()
        log.info(
            "round %d (step %d): chose candidate %d — val acc %.4f, leakage %s",
            r,
            step,
            chosen,
            candidates[chosen].accuracy,
            {k: round(v, 4) for k, v in candidates[chosen].aucs.items()},
        )

    def progress_info(self) -> str:
        """Live progress: the last round, its chosen candidate's val accuracy and worst in-loop AUC."""
        if not self.rounds:
            return ""
        last = self.rounds[-1]
        c = last["candidates"][last["chosen"]]
        return f"round {last['round']}: val acc {c['val_accuracy']:.3f}, attack AUC {max(c['attack_auc'].values()):.3f}"

    def _gap_gradients(self) -> dict[str, torch.Tensor]:
        """∂/∂w of (mean loss on probe non-members − mean loss on probe members), fit half only."""
        data = self.fit_probe
        params = prunable_parameters(self.model)
        was_training = self.model.training
        self.model.eval()
        self.model.zero_grad(set_to_none=True)
        member = torch.as_tensor(data.is_member)
        losses = torch.nn.functional.cross_entropy(
            self.model(data.X.to(self.ctx.device)), data.y.to(self.ctx.device), reduction="none"
        ).cpu()
        gap = losses[~member].mean() - losses[member].mean()
        grads = torch.autograd.grad(gap, list(params.values()))
        self.model.train(was_training)
        return {n: g.detach() for n, g in zip(params, grads)}

    def _select(self, cands: list[Candidate]) -> tuple[int, list[float]]:
        c = self.cfg
        return select(cands, c.objective, c.privacy_weight, c.delta, c.combine, c.budget, c.budget_metric)

    @property
    def _tpr_logged(self) -> bool:
        """rounds.jsonl shows the in-loop TPR at low FPR when a budget bounds it or a simulator is the
        reference-free calibrated test (older runs' tables stay as they were)."""
        return self.cfg.budget_metric == "tpr" or any(s.population_fit for s in self.simulators)

    def _consider(self, r: int | str, cand: Candidate) -> None:
        """Keep the best model so far (objective over round winners, scored on val)."""
        if self.best is None or self._select([self.best["candidate"], cand])[0] == 1:
            self.best = {
                "round": r,
                "candidate": cand,
                "state": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
                "masks": {k: v.clone() for k, v in self.masks.items()},
            }

    def _write_rounds(self) -> None:
        if self.ctx.record:
            atomic_write_text(self.ctx.run_dir / "rounds.jsonl", "".join(json.dumps(r) + "\n" for r in self.rounds))

    def on_fit_end(self, trainer: Trainer) -> None:
        """Compare the final weights with the best round winner and keep the better on val (``final:
        best_round``); with ``final: last`` the model at the end of training is the result."""
        if self.cfg.final == "last":
            self.best = None
            log.info("final model: the end of training (final: last)")
            return
        t0 = time.perf_counter()
        self._fit_simulators(len(self.rounds))
        self._consider("final", self._assess())
        if self.best is not None and self.best["round"] != "final":
            self.model.load_state_dict(self.best["state"])
            self.masks = self.best["masks"]
        self.loop_s += time.perf_counter() - t0
        log.info("final model: round %s", self.best["round"] if self.best else "final")

    # -- checkpointing -----------------------------------------------------------------------------
    def get_state(self):
        tensors, meta = super().get_state()
        meta["rounds"] = self.rounds
        meta["loop_s"] = self.loop_s
        meta["strength"] = self.strength
        meta["reg_name"] = self.reg_name
        if self.best is not None:
            tensors.update({f"best.state.{k}": v for k, v in self.best["state"].items()})
            tensors.update({f"best.mask.{k}": v.cpu() for k, v in self.best["masks"].items()})
            c = self.best["candidate"]
            meta["best"] = {
                "round": self.best["round"],
                "accuracy": c.accuracy,
                "aucs": c.aucs,
                "advantages": c.advantages,
                "tprs": c.tprs,
            }
        return tensors, meta

    def set_state(self, tensors, meta):
        super().set_state(tensors, meta)
        self.rounds = list(meta["rounds"])
        self.strength = float(meta.get("strength", 0.0))
        self.reg_name = meta.get("reg_name", "none")
        # timing is per process: train_s in the report covers only this process too
        self.loop_s = 0.0
        if "best" in meta:
            b = meta["best"]
            self.best = {
                "round": b["round"],
                "candidate": Candidate(b["accuracy"], b["aucs"], b["advantages"], b.get("tprs", {})),
                "state": {k[len("best.state.") :]: v for k, v in tensors.items() if k.startswith("best.state.")},
                "masks": {k[len("best.mask.") :]: v for k, v in tensors.items() if k.startswith("best.mask.")},
            }
        self._write_rounds()
