"""One training loop with callbacks, and evaluation.

Randomness is explicit: a ``torch.Generator`` seeded from the run seed drives shuffling and
augmentation; model initialisation is seeded in :func:`safecompress.models.build_model`. On CPU the
same seed gives the same numbers.

Callbacks see the trainer after every optimizer step and epoch; the sparse engine, adversarial
terms, checkpoints and progress bars are all callbacks, so there is one loop.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig
from .errors import ConfigError, TrainingDivergedError

log = logging.getLogger(__name__)


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` = cuda if available, then mps, then cpu. An unavailable explicit device is an error."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={spec!r} but CUDA is not available here; use train.device=auto or cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"train.device={spec!r} but MPS is not available here; use train.device=auto or cpu")
    return dev


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Learning-rate multiplier at ``step`` (0-based) of ``total_steps``: constant, step or cosine."""
    if cfg.schedule == "constant" or total_steps <= 0:
        return 1.0
    progress = min(step / total_steps, 1.0)
    if cfg.schedule == "step":
        return cfg.gamma ** sum(progress >= m for m in cfg.milestones)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def augment_images(x: torch.Tensor, gen: torch.Generator, pad: int | None = None, flip: bool = True) -> torch.Tensor:
    """Random crop (zero padding ``pad``, default 1/8 of the side: 4 px at 32x32) and horizontal flip,
    per sample, driven by ``gen``."""
    n, _, h, w = x.shape
    if pad is None:
        pad = max(1, min(h, w) // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip_mask = (torch.rand(n, generator=gen) < 0.5) & flip
    rows = (dy[:, None] + torch.arange(h)[None, :]).to(x.device)  # n x h
    cols = dx[:, None] + torch.arange(w)[None, :]  # n x w
    cols = torch.where(flip_mask[:, None], cols.flip(1), cols).to(x.device)
    idx_n = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # n x h x w x c
    return out.permute(0, 3, 1, 2).contiguous()


class Callback:
    """Hooks into :class:`Trainer`. Override what you need; every hook receives the trainer."""

    def on_fit_start(self, trainer: "Trainer") -> None: ...

    def extra_loss(
        self, trainer: "Trainer", xb: torch.Tensor, yb: torch.Tensor, logits: torch.Tensor
    ) -> torch.Tensor | None:
        """A term added to the batch loss before backward (e.g. an adversarial privacy penalty)."""
        return None

    def before_step(self, trainer: "Trainer") -> None:
        """After backward, before the optimizer step (e.g. DP-SGD clips and noises the gradients here)."""

    def on_step_end(self, trainer: "Trainer") -> None:
        """After each optimizer step (masks are re-applied here)."""

    def on_epoch_end(self, trainer: "Trainer", metrics: dict[str, float]) -> None: ...

    def on_fit_end(self, trainer: "Trainer") -> None: ...


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken (skipped batches included: they advance the schedule)
    history: list[dict[str, float]] = field(default_factory=list)
    skip: int = 0  # batches still to pass untrained (their steps were spent elsewhere, see Trainer.skip)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each batch of an epoch over ``n`` samples; a lone last sample joins the batch
    before it (BatchNorm cannot train on a batch of one)."""
    bs = min(batch_size, n)
    starts = list(range(0, n, bs))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, starts[1:] + [n]))


def steps_per_epoch(n: int, batch_size: int) -> int:
    return len(batch_bounds(n, batch_size)) if n else 0


def epochs_for(cfg: TrainConfig, n: int) -> int:
    """The epochs of a training run on ``n`` samples: ``train.epochs``, raised until the run takes at least
    ``train.min_steps`` optimizer steps (so a small dataset still gets a real training budget)."""
    if not cfg.min_steps or n == 0:
        return cfg.epochs
    return max(cfg.epochs, math.ceil(cfg.min_steps / steps_per_epoch(n, cfg.batch_size)))


class Trainer:
    """Train ``model`` on in-memory tensors with the config's optimizer, schedule and augmentation."""

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        *,
        seed: int,
        device: torch.device,
        augment: bool = False,
        flip: bool = True,
        callbacks: Sequence[Callback] = (),
        epochs: int | None = None,
    ):
        self.model = model.to(device)
        self.cfg = cfg
        self.device = device
        self.augment = augment
        self.flip = flip
        self.callbacks = list(callbacks)
        self.epochs = cfg.epochs if epochs is None else epochs
        self.optimizer = make_optimizer(self.model.parameters(), cfg)
        self.generator = torch.Generator().manual_seed(seed)
        self.state = TrainState()
        self.total_steps = 0
        self.loss_fn = nn.CrossEntropyLoss()

    def _set_lr(self) -> float:
        factor = lr_factor(self.cfg, self.state.step, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.lr * factor
        return self.cfg.lr * factor

    def skip(self, steps: int) -> None:
        """Let the next ``steps`` batches go untrained, their optimizer steps already spent by another path
        (SafeCompress's chosen candidate fine-tuned the model that long). The step counter still advances,
        so the learning-rate schedule and the topology updates keep their places, and the model's total
        number of optimizer steps stays epochs × steps per epoch, the same budget as any other method."""
        if steps < 0:
            raise ValueError(f"cannot skip {steps} steps")
        self.state.skip += int(steps)

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[float, int]:
        """One optimizer step; returns (summed loss, correct predictions) of the batch."""
        self._set_lr()
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(xb)
        task_loss = self.loss_fn(logits, yb)
        loss = task_loss
        for cb in self.callbacks:
            extra = cb.extra_loss(self, xb, yb, logits)
            if extra is not None:
                loss = loss + extra
        loss.backward()
        for cb in self.callbacks:
            cb.before_step(self)
        self.optimizer.step()
        self.state.step += 1
        for cb in self.callbacks:
            cb.on_step_end(self)
        return float(task_loss.detach()) * len(yb), int((logits.argmax(1) == yb).sum())

    def fit(self, X: torch.Tensor, y: torch.Tensor) -> TrainState:
        """Train until ``epochs`` are done, continuing from ``self.state`` (so a restored state resumes)."""
        n = len(y)
        if n == 0:
            raise ConfigError("the training set is empty; enlarge split.train")
        bounds = batch_bounds(n, self.cfg.batch_size)
        self.total_steps = len(bounds) * self.epochs
        for cb in self.callbacks:
            cb.on_fit_start(self)
        while self.state.epoch < self.epochs:
            self.model.train()
            order = torch.randperm(n, generator=self.generator)
            loss_sum, correct, seen = 0.0, 0, 0
            for start, stop in bounds:
                if self.state.skip > 0:
                    self.state.skip -= 1
                    self.state.step += 1
                    continue
                idx = order[start:stop]
                xb = X[idx]
                if self.augment:
                    xb = augment_images(xb, self.generator, flip=self.flip)
                batch_loss, batch_correct = self.train_step(xb.to(self.device), y[idx].to(self.device))
                loss_sum += batch_loss
                correct += batch_correct
                seen += stop - start
            self.state.epoch += 1
            seen = max(seen, 1)
            metrics = {"epoch": self.state.epoch, "loss": loss_sum / seen, "train_accuracy_running": correct / seen}
            if not math.isfinite(metrics["loss"]):
                raise TrainingDivergedError(
                    f"training diverged at epoch {self.state.epoch} (loss is {metrics['loss']}); lower train.lr"
                )
            self.state.history.append(metrics)
            log.info(
                "epoch %d/%d loss %.4f acc %.4f",
                self.state.epoch,
                self.epochs,
                metrics["loss"],
                metrics["train_accuracy_running"],
            )
            for cb in self.callbacks:
                cb.on_epoch_end(self, metrics)
        for cb in self.callbacks:
            cb.on_fit_end(self)
        return self.state

    # -- checkpointing -------------------------------------------------------------------------
    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, json metadata) fully describing the training state, for safetensors files."""
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        opt_tensors, param_groups = optimizer_tensors(self.optimizer)
        tensors.update(opt_tensors)
        tensors["rng.generator"] = self.generator.get_state()
        meta = {
            "epoch": self.state.epoch,
            "step": self.state.step,
            "skip": self.state.skip,
            "history": self.state.history,
            "param_groups": param_groups,
            "callbacks": {},
        }
        for key, cb in self._stateful_callbacks():
            cb_tensors, cb_meta = cb.get_state()
            tensors.update({f"cb.{key}.{k}": v.detach().cpu().contiguous() for k, v in cb_tensors.items()})
            meta["callbacks"][key] = cb_meta
        return tensors, meta

    def _stateful_callbacks(self):
        """Callbacks with get_state/set_state (e.g. the sparse engine), keyed by position and class."""
        for i, cb in enumerate(self.callbacks):
            if hasattr(cb, "get_state") and hasattr(cb, "set_state"):
                yield f"{i}-{type(cb).__name__}", cb

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        load_optimizer_tensors(self.optimizer, tensors, meta["param_groups"], self.device)
        self.generator.set_state(tensors["rng.generator"])
        self.state = TrainState(
            int(meta["epoch"]), int(meta["step"]), list(meta["history"]), skip=int(meta.get("skip", 0))
        )
        for key, cb in self._stateful_callbacks():
            prefix = f"cb.{key}."
            cb.set_state(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, meta["callbacks"][key]
            )


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str = "optim.") -> tuple[dict[str, torch.Tensor], list]:
    """An optimizer's per-parameter state as flat CPU tensors ``{prefix}{param id}.{slot}``, and its
    param_groups (JSON metadata) — the safetensors-friendly form of ``state_dict()``."""
    opt = optimizer.state_dict()
    tensors = {
        f"{prefix}{pid}.{key}": torch.as_tensor(value).detach().cpu().contiguous()
        for pid, slots in opt["state"].items()
        for key, value in slots.items()
    }
    return tensors, opt["param_groups"]


def load_optimizer_tensors(
    optimizer: torch.optim.Optimizer,
    tensors: dict[str, torch.Tensor],
    param_groups: list,
    device: torch.device | str = "cpu",
    prefix: str = "optim.",
) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, slot = key[len(prefix) :].split(".", 1)
            state.setdefault(int(pid), {})[slot] = value.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Query ``model`` in eval mode and give it back in the mode it had (a query during training must
    never leave BatchNorm frozen or dropout off for the steps that follow)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@torch.no_grad()
def predict_logits(model: nn.Module, X: torch.Tensor, device: torch.device, batch_size: int = 1024) -> torch.Tensor:
    """Logits for every row of ``X`` (eval mode, never augmented), on the CPU; ``model`` keeps its mode."""
    with eval_mode(model):
        out = [model(X[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(X), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def evaluate(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int = 1024
) -> dict[str, float]:
    """Accuracy and mean cross-entropy on (X, y)."""
    if len(y) == 0:
        return {"accuracy": float("nan"), "loss": float("nan")}
    logits = predict_logits(model, X, device, batch_size)
    return {
        "accuracy": float((logits.argmax(1) == y).float().mean()),
        "loss": float(F.cross_entropy(logits, y)),
    }
