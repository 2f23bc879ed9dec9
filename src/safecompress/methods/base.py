"""What a compression method receives and returns; the METHODS registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..config import RunConfig
from ..data.split import MembershipSplit
from ..defences import DEFENCES, Defence
from ..models import ModelSpec, build_model
from ..params import Params, validate_params
from ..registry import Registry
from ..train import Callback, Trainer


@dataclass
class MethodContext:
    """Everything a method may use. Data tensors are CPU float32 (X) and int64 (y). ``defence`` is the run's
    configured defence, built once by whoever sets the run up (:func:`~safecompress.defences.build_defence`)."""

    cfg: RunConfig
    spec: ModelSpec
    X: torch.Tensor
    y: torch.Tensor
    split: MembershipSplit
    device: torch.device
    augment: bool
    flip: bool
    run_dir: Path
    defence: Defence
    callbacks: list[Callback] = field(default_factory=list)
    record: bool = True  # write per-method logs (rounds.jsonl) into run_dir; False for reference models
    # What the defence reports about itself (e.g. DP-SGD's epsilon); copied into report.json.
    defence_report: dict = field(default_factory=dict)
    # Restores a trainer from the run's checkpoint when resuming (no-op otherwise).
    restore: Callable[[Trainer], None] = lambda trainer: None
    # Where fanned-out work of the method runs (SafeCompress candidates); None = in this process.
    executor: Any = None
    # The sensitive attribute's codes for every row of X (attribute-inference datasets), else None.
    sensitive: Any = None

    def part(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(self.split[name])
        return self.X[idx], self.y[idx]

    def new_model(self) -> nn.Module:
        return build_model(self.spec, self.cfg.seed)

    def new_trainer(self, model: nn.Module, extra: list[Callback] | None = None) -> Trainer:
        """A trainer for the run's recipe; ``extra`` callbacks (e.g. the sparse engine) run first, then the
        configured defence's, then the run's own (checkpointing, progress)."""
        from ..train import epochs_for

        return Trainer(
            model,
            self.cfg.train,
            seed=self.cfg.seed,
            device=self.device,
            augment=self.augment,
            flip=self.flip,
            callbacks=[*(extra or []), *self.defence.callbacks(self), *self.callbacks],
            epochs=epochs_for(self.cfg.train, len(self.split["train"])),
        )

    def total_steps(self) -> int:
        """Optimizer steps of a full training run on ``train`` with the run's recipe."""
        from ..train import epochs_for, steps_per_epoch

        n = len(self.split["train"])
        return steps_per_epoch(n, self.cfg.train.batch_size) * epochs_for(self.cfg.train, n)


@dataclass
class MethodResult:
    model: nn.Module
    report: dict[str, Any] = field(default_factory=dict)  # merged into report.json under "method_details"
    masks: dict[str, torch.Tensor] | None = None  # sparse methods: the final masks (None = dense)


class Method:
    """A compression method: ``train`` turns the context into a trained (compressed) model."""

    name = ""
    needs_parts: tuple[str, ...] = ("train",)  # split parts the method reads (reference models get them carved)
    Params: type[Params] = Params  # its parameters (method.params), a pydantic model declared in its own file
    # the sparse.structure values it trains with; None: it ignores the sparse section (dense training)
    structures: tuple[str, ...] | None = None

    def train(self, ctx: MethodContext) -> MethodResult:
        raise NotImplementedError

    @classmethod
    def params(cls, cfg: RunConfig) -> Params:
        """``cfg.method.params`` validated by this method's ``Params`` (defaults filled in)."""
        return validate_params(cls.Params, cfg.method.params, f"method {cls.name!r}")

    @classmethod
    def config_problems(cls, cfg: RunConfig) -> list[str]:
        """What in ``cfg`` this method cannot work with (checked when the config is built)."""
        return []

    @classmethod
    def structure_problems(cls, cfg: RunConfig) -> list[str]:
        """``sparse.structure`` values the method cannot train with (checked when the config is built)."""
        wanted = cfg.sparse.structure
        if cls.structures is None or wanted in cls.structures:
            return []
        return [
            f"method {cls.name!r} cannot train with sparse.structure={wanted!r} (it supports: "
            f"{', '.join(cls.structures)}); use a dynamic sparse method (rigl, set, mest, static, safecompress) for "
            "channel sparsity, or sparse.structure=unstructured"
        ]


METHODS: Registry[type[Method]] = Registry("method")
register_method = METHODS.register  # class decorator: @register_method("name")


def needed_parts(cfg: RunConfig) -> tuple[str, ...]:
    """The split parts a run reads: its method's and its defence's, in order, without repeats."""
    return tuple(
        dict.fromkeys((*METHODS.get(cfg.method.name).needs_parts, *DEFENCES.get(cfg.defence.name).needs_parts))
    )
