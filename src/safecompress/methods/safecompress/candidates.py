"""Testing one SafeCompress candidate — an executor task, so a round's candidates can fan out.

A task holds everything one candidate needs: the network at the round's base weights, the candidate's masks, the
simulators fitted this round, the fine-tuning recipe and its seed, the device and the thread count.
The run's fixed data (val set, test probe half, training set for fine-tuning) travels once per run as
:class:`CandidateData` (``Executor.share``). Whichever executor runs it, the task copies the network
and gives the same numbers: every random draw comes from the task's own seed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F

from ...config import TrainConfig
from ...sparse.masks import apply_masks
from ...train import TrainState, augment_images, evaluate, make_optimizer
from .objectives import Candidate
from .simulate import ProbeData, Simulator


@dataclass
class Serving:
    """How the run serves its model: the run's defence, whose ``deploy`` wraps the network in its
    inference-time transformation (HAMP's output remapping, MemGuard), fitted on the loop's own train
    (members) and val (held-out) data with ``seed`` — never on probe, test or audit rows."""

    defence: Any
    seed: int

    def __call__(self, model: torch.nn.Module, data: "CandidateData", device) -> torch.nn.Module:
        return self.defence.deploy(model, data.train, data.val, self.seed, device)


@dataclass
class CandidateData:
    """The run's data every candidate test reads (shared once per run), and how the model is served
    (None: the network itself is what the simulators attack)."""

    val: tuple[torch.Tensor, torch.Tensor]
    test_probe: ProbeData
    train: tuple[torch.Tensor, torch.Tensor]
    serving: Serving | None = None
    fit_probe: ProbeData | None = None  # cross-fitting: the half the swapped simulators are tested on

    def served(self, model: torch.nn.Module, device) -> torch.nn.Module:
        return model if self.serving is None else self.serving(model, self, device)


@dataclass
class FineTune:
    """``steps`` optimizer steps (fresh state at learning rate ``lr``) on batches drawn with ``seed``, with
    the candidate's regulariser term (``regularizer``: a defence callback with ``extra_loss``) if any."""

    steps: int
    train_cfg: TrainConfig
    lr: float
    seed: int
    augment: bool
    flip: bool
    regularizer: Any = None
    epoch: int = 0  # the main training's epoch (RelaxLoss alternates by epoch)


@dataclass
class CandidateTask:
    base: torch.nn.Module  # the network with the round's base weights (CPU); copied, never changed
    masks: dict[str, torch.Tensor]
    simulators: list[Simulator]  # fitted this round
    finetune: FineTune | None
    device: str
    threads: int | None = None  # pin torch's thread count (set for out-of-process executors)
    swapped: list[Simulator] | None = None  # cross-fitting: the same simulators fitted on the test half


def _mean(values: list[float | None]) -> float | None:
    """The mean of a metric over the two halves (None when a half has none, e.g. no membership scores)."""
    return None if any(v is None for v in values) else float(sum(values) / len(values))


def assess(
    model: torch.nn.Module,
    data: CandidateData,
    simulators: list[Simulator],
    device,
    swapped: list[Simulator] | None = None,
) -> Candidate:
    """Accuracy on val and every simulator's (AUC, advantage, TPR at low FPR) on the test probe half, each
    simulator attacking the candidate as it would be served (see :meth:`Simulator.view`). With ``swapped``
    (cross-fitting: the same simulators fitted on the test half), each metric is the mean of the simulator on
    the test half and its swapped twin on the fit half."""
    served = data.served(model, device)
    acc = evaluate(model, *data.val, device)["accuracy"]
    aucs, advs, tprs = {}, {}, {}
    for i, sim in enumerate(simulators):
        measured = sim.measure(sim.view(model, served, device), data.test_probe)
        if swapped is not None:
            twin = swapped[i]
            other = twin.measure(twin.view(model, served, device), data.fit_probe)
            measured = tuple(_mean([a, b]) for a, b in zip(measured, other))
        aucs[sim.name], advs[sim.name], tprs[sim.name] = measured
    return Candidate(acc, aucs, advs, tprs)


def finetune(model: torch.nn.Module, masks, data: CandidateData, ft: FineTune, device) -> None:
    """Cross-entropy steps (plus the candidate's own regulariser, if it has one) with the masks re-applied
    after each (a configured defence's loss term belongs to the main training steps, not to these few)."""
    X, y = data.train
    gen = torch.Generator().manual_seed(ft.seed)
    opt = make_optimizer(model.parameters(), ft.train_cfg)
    for group in opt.param_groups:
        group["lr"] = ft.lr
    bs = min(ft.train_cfg.batch_size, len(y))
    model.train()
    for _ in range(ft.steps):
        idx = torch.randint(len(y), (bs,), generator=gen)
        xb = X[idx]
        if ft.augment:
            xb = augment_images(xb, gen, flip=ft.flip)
        opt.zero_grad(set_to_none=True)
        yb = y[idx].to(device)
        logits = model(xb.to(device))
        loss = F.cross_entropy(logits, yb)
        if ft.regularizer is not None:
            extra = ft.regularizer.extra_loss(SimpleNamespace(state=TrainState(epoch=ft.epoch)), xb, yb, logits)
            if extra is not None:
                loss = loss + extra
        loss.backward()
        opt.step()
        apply_masks(model, masks)


def run_candidate(item: tuple[CandidateData, CandidateTask]) -> tuple[Candidate, dict[str, Any] | None]:
    """Build the candidate from the base weights and masks, fine-tune it if asked, and test it.
    Returns the candidate's scores and, when fine-tuned, its weights (CPU)."""
    data, task = item
    if task.threads:
        torch.set_num_threads(task.threads)
    device = torch.device(task.device)
    model = copy.deepcopy(task.base).to(device)
    masks = {n: m.to(device) for n, m in task.masks.items()}
    apply_masks(model, masks)
    state = None
    if task.finetune is not None:
        finetune(model, masks, data, task.finetune, device)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return assess(model, data, task.simulators, device, task.swapped), state
