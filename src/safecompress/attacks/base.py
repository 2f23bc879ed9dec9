"""The attack contract (docs/design.md §3).

An attack is *fitted* with what the attacker knows — its own population data and reference/shadow
models trained with the target's recipe (compression method and density included) — and then
*scores* queried samples: one float per sample, higher = more likely a member.

Black-box attacks receive a :class:`BlackBoxTarget`, which answers queries with outputs only (the
module is hidden in a closure); white-box attacks set ``white_box = True`` and receive a
:class:`WhiteBoxTarget` that also exposes ``module``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry, closest
from ..train import predict_logits
from .references import ReferencePool


class BlackBoxTarget:
    """Query access to a model: logits for inputs, nothing else."""

    def __init__(self, model: nn.Module, device: torch.device, batch_size: int = 1024):
        def query(X: torch.Tensor) -> torch.Tensor:
            return predict_logits(model, X, device, batch_size)

        self.logits: Callable[[torch.Tensor], torch.Tensor] = query

    def probs(self, X: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(X), dim=1)


class WhiteBoxTarget(BlackBoxTarget):
    """Query access plus the module itself (weights, activations, gradients)."""

    def __init__(self, model: nn.Module, device: torch.device, batch_size: int = 1024):
        super().__init__(model, device, batch_size)
        self.module = model
        self.device = device


@dataclass
class AttackContext:
    """What the attacker knows: its population data and the shared reference/shadow models."""

    population_X: torch.Tensor
    population_y: torch.Tensor
    n_classes: int
    references: ReferencePool
    device: torch.device
    seed: int = 0
    kind: str = "tabular"  # "image" or "tabular" (label-only perturbations depend on it)

    def target_view(self, model: nn.Module, white_box: bool) -> BlackBoxTarget:
        if white_box:  # the weights bypass inference-time output defences (MemGuard)
            from ..defences.base import unwrap

            return WhiteBoxTarget(unwrap(model), self.device)
        return BlackBoxTarget(model, self.device)


@dataclass
class PropertyData:
    """What attacks beyond membership use: the attacker's population and the audit members (private
    training records) and non-members, each with the sensitive attribute's codes when the dataset has one."""

    population: tuple[torch.Tensor, torch.Tensor]
    members: tuple[torch.Tensor, torch.Tensor]
    nonmembers: tuple[torch.Tensor, torch.Tensor]
    n_classes: int
    kind: str
    device: torch.device
    seed: int = 0
    n_bootstrap: int = 200
    s_population: np.ndarray | None = None
    s_members: np.ndarray | None = None
    s_nonmembers: np.ndarray | None = None
    sensitive_names: list[str] | None = None

    @property
    def has_sensitive(self) -> bool:
        return self.s_population is not None and self.s_members is not None


class Attack:
    """Base class. ``__init__`` stores parameters; ``fit`` learns (state ends in ``_``); ``score`` scores."""

    name = ""
    # "membership" attacks score audit members vs non-members (score/fit); other families
    # ("attribute", "inversion") implement ``audit(model, data: PropertyData)`` and report their own metrics.
    family = "membership"
    requires_sensitive = False  # needs a dataset with a sensitive attribute
    white_box = False  # True: receives WhiteBoxTarget (module access)
    citation = ""
    references_needed = 1  # reference/shadow models this attack uses (0 = none)
    defaults: dict[str, Any] = {}  # the options this attack accepts (audit.attack_params), with defaults

    def __init__(self, **params: Any):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            hints = []
            for key in unknown:
                hint = closest(key, list(self.defaults))
                hints.append(f"{key!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
            valid = ", ".join(self.defaults) or "none"
            raise ConfigError(f"attack {self.name!r} has no option {', '.join(hints)}; its options: {valid}")
        self.params = {**self.defaults, **params}
        self.threshold_: float | None = None  # a member/non-member threshold picked on the attacker's own data

    def fit(self, ctx: AttackContext) -> "Attack":
        return self

    def score(self, target: BlackBoxTarget, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    # helpers for attacks that learn from reference models ------------------------------------
    def calibrate_threshold(self, ctx: AttackContext, max_samples: int | None = None) -> None:
        """Set ``threshold_`` to the best balanced-accuracy threshold on a reference model's own
        members vs non-members from the population (at most ``max_samples`` of them, seeded)."""
        from .. import metrics

        ((shadow, member),) = self.shadow_views(ctx, 1)
        idx = np.arange(len(member))
        if max_samples is not None and max_samples < len(member):
            idx = np.random.default_rng(ctx.seed).choice(len(member), max_samples, replace=False)
        t = torch.from_numpy(idx)
        scores = self.score(shadow, ctx.population_X[t], ctx.population_y[t])
        _, self.threshold_ = metrics.best_balanced_accuracy(scores, member[idx])

    def shadow_views(self, ctx: AttackContext, count: int) -> list[tuple[BlackBoxTarget, np.ndarray]]:
        """(view of reference model k, its membership over the population) for the first ``count`` models.
        A black-box attack sees each reference as it is served (through an inference-time defence such as
        MemGuard, like the target); a white-box one holds its weights."""
        pool = ctx.references
        pool.ensure(count)
        return [
            (ctx.target_view(pool.models[k], white_box=self.white_box), pool.population_membership(k))
            for k in range(count)
        ]


ATTACKS: Registry[type[Attack]] = Registry("attack")
register_attack = ATTACKS.register  # class decorator: @register_attack("name")


def balanced_indices(is_member: np.ndarray, rng: np.random.Generator, limit: int | None = None) -> np.ndarray:
    """Indices with as many members as non-members (at most ``limit`` each), shuffled."""
    ins, outs = np.flatnonzero(is_member), np.flatnonzero(~is_member)
    k = min(len(ins), len(outs), limit or len(is_member))
    idx = np.concatenate([rng.choice(ins, k, replace=False), rng.choice(outs, k, replace=False)])
    return rng.permutation(idx)
