"""What an attack is fitted with (:class:`Knowledge`) and what it is asked (:class:`Queries`).

The audit's knowledge is the attacker's population (records known to be out of the target's training
data) with the reference models trained with the target's recipe. Inside the SafeCompress loop the
knowledge has no references: it is the fit half of the probe data, whose membership in the current
model the attacker knows (``labelled``), with a view of that model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .memo import LogitsMemo
from .references import ReferencePool
from .targets import BlackBoxTarget


@dataclass
class Labelled:
    """Records whose membership in ``target`` the attacker knows (the loop's fit probe half)."""

    target: BlackBoxTarget
    X: torch.Tensor
    y: torch.Tensor
    is_member: np.ndarray
    s: np.ndarray | None = None  # their sensitive attribute, when the dataset has one


@dataclass
class Knowledge:
    """What the attacker knows when it is fitted."""

    population_X: torch.Tensor  # records known NOT to be in the target's training data
    population_y: torch.Tensor
    n_classes: int
    references: ReferencePool | None  # reference/shadow models with the target's recipe (the audit), or None
    device: torch.device
    seed: int = 0
    kind: str = "tabular"  # "image", "tabular" or "text"
    s_population: np.ndarray | None = None  # the population's sensitive attribute, when the dataset has one
    n_values: int | None = None  # how many values the sensitive attribute takes (None: from the known records)
    sensitive_names: list[str] | None = None
    labelled: Labelled | None = None  # the in-loop probe: labelled records of the current model
    epochs: int | None = None  # the attacker's training budget (the loop's attacker_epochs), else its own option
    # the audit's memory of answers (its target and references do not change while it runs); None: every query
    # is computed (the loop, whose model trains between queries)
    memo: LogitsMemo | None = None

    def target_view(self, model: torch.nn.Module, white_box: bool) -> BlackBoxTarget:
        from .targets import target_view

        return target_view(model, self.device, white_box, memo=self.memo)

    def records(self) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
        """(X, y, sensitive attribute) of every record the attacker holds: the labelled ones when it has them,
        else its population."""
        if self.labelled is not None:
            return self.labelled.X, self.labelled.y, self.labelled.s
        return self.population_X, self.population_y, self.s_population


@dataclass
class Queries:
    """What an attack is evaluated on: ``X``/``y`` are every queried record (in the audit: members,
    non-members, then any canaries, scored in one pass); ``is_member`` is the truth for the first
    ``len(is_member)`` of them, which the metrics use (never the attacker)."""

    X: torch.Tensor
    y: torch.Tensor
    is_member: np.ndarray
    s: np.ndarray | None = None  # the sensitive attribute of the scored records
    seed: int = 0
    n_bootstrap: int = 200
    in_loop: bool = False  # the loop's measurement: metrics are just auc, advantage and tpr (at low_fpr)
    low_fpr: float = 0.01

    @property
    def n(self) -> int:
        return len(self.is_member)

    def part(self, member: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(X, y) of the scored members (or non-members)."""
        rows = torch.from_numpy(np.flatnonzero(self.is_member == member))
        return self.X[rows], self.y[rows]
