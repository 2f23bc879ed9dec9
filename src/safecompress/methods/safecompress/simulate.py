"""Simulated attackers inside the SafeCompress loop (the "tests" of test-driven sparse training).

A simulator is any registered attack whose class says ``simulatable``. It works only on *probe* data:
each round it is fitted with the loop's knowledge — the fit halves of ``probe_members`` /
``probe_nonmembers``, labelled, with a view of the current model and no reference models — and it then
evaluates candidates on the held-apart test halves (``Queries(in_loop=True)``: AUC, advantage and,
for membership attacks, TPR at a low FPR). It never sees audit data, so the final audit stays
independent of what the loop optimised against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...attacks import ATTACKS, Knowledge, Labelled, Queries, target_view
from ...attacks.targets import BlackBoxTarget
from ...errors import ConfigError


def simulation_problem(name: str, attacks=ATTACKS) -> str | None:
    """Why attack ``name`` cannot be a simulator (None when it can; unknown names are the registry's
    to report). The one place this is decided: the config validator and :class:`Simulator` both ask."""
    if name not in attacks or attacks.get(name).simulatable:
        return None
    supported = [n for n, c in attacks.items() if c.simulatable]
    return (
        f"attack {name!r} cannot be simulated in the loop (it needs reference models); "
        f"use one of: {', '.join(supported)}"
    )


@dataclass
class ProbeData:
    X: torch.Tensor
    y: torch.Tensor
    is_member: np.ndarray
    s: np.ndarray | None = None  # the sensitive attribute (attribute-inference datasets)


class Simulator:
    """Fits one attack on probe data against a model and measures (AUC, advantage, TPR) on other probe data."""

    def __init__(self, name: str, n_classes: int, kind: str, seed: int = 0, epochs: int = 30, low_fpr: float = 0.01):
        problem = simulation_problem(name)
        if problem:
            raise ConfigError(problem)
        cls = ATTACKS.get(name)
        self.name, self.attack = name, cls()
        self.family, self.white_box = cls.family, cls.white_box
        # a membership attack fitted on the population alone (calibrated): rounds.jsonl logs its TPR
        self.population_fit = cls.family == "membership" and cls.needs_references == 0
        self.n_classes, self.kind, self.seed, self.epochs, self.low_fpr = n_classes, kind, seed, epochs, low_fpr

    def view(self, network: torch.nn.Module, served: torch.nn.Module, device) -> BlackBoxTarget:
        """What this attacker queries: the model as it is served (the network under the run's inference-time
        defence, e.g. HAMP's output remapping) for a black-box attack, the network itself for a white-box
        one, whose weights bypass any output transformation — as in the audit."""
        return target_view(served, device, self.white_box, network=network)

    def fit(self, view: BlackBoxTarget, data: ProbeData, round_seed: int = 0, device=None) -> "Simulator":
        """Fit the attack with the loop's knowledge: ``data`` labelled, its non-members as the population."""
        out = torch.as_tensor(~np.asarray(data.is_member, dtype=bool))
        knowledge = Knowledge(
            data.X[out],
            data.y[out],
            self.n_classes,
            None,
            device or getattr(view, "device", torch.device("cpu")),
            self.seed + round_seed,
            self.kind,
            labelled=Labelled(view, data.X, data.y, np.asarray(data.is_member), data.s),
            epochs=self.epochs,
        )
        self.attack.fit(knowledge)
        return self

    def measure(self, view: BlackBoxTarget, data: ProbeData) -> tuple[float, float, float | None]:
        """(AUC, advantage, TPR at ``low_fpr``) of this attacker on ``data``; the TPR is None for families
        without membership scores."""
        queries = Queries(data.X, data.y, np.asarray(data.is_member), data.s, in_loop=True, low_fpr=self.low_fpr)
        m = self.attack.evaluate(view, queries).metrics
        return m["auc"], m["advantage"], m.get("tpr")
