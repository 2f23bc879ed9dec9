"""Simulated attackers inside the SafeCompress loop (the "tests" of test-driven sparse training).

A simulator is built from any registered attack and works only on *probe* data: it is fitted on
``probe_members`` / ``probe_nonmembers`` (fit halves) against the current model, then measures
candidates on the held-apart test halves. It never sees audit data, so the final audit stays
independent of what the loop optimised against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ... import metrics
from ...attacks import ATTACKS
from ...attacks.base import AttackContext, BlackBoxTarget, WhiteBoxTarget
from ...attacks.features import fit_binary_mlp, predict_binary_mlp
from ...attacks.label_only import LabelOnlyAttack
from ...attacks.learned import ShadowAttack, _LearnedAttack
from ...attacks.metric import _MetricAttack
from ...attacks.whitebox import GradNormAttack
from ...errors import ConfigError

SIGNAL_ATTACKS = (_MetricAttack, GradNormAttack, LabelOnlyAttack)


def simulable(cls: type) -> bool:
    """Attacks that run on probe data alone: signal attacks, learned ones except per-class shadow,
    membership attacks that need no reference models (fitted with the probe non-members as their
    population), and the attacks beyond membership (attribute inference, model inversion)."""
    return (
        issubclass(cls, SIGNAL_ATTACKS)
        or (issubclass(cls, _LearnedAttack) and cls is not ShadowAttack)
        or cls.references_needed == 0
        or cls.family != "membership"
    )


def simulation_problem(name: str, attacks=ATTACKS) -> str | None:
    """Why attack ``name`` cannot be a simulator (None when it can; unknown names are the registry's
    to report). The one place this is decided: the config validator and :class:`Simulator` both ask."""
    if name not in attacks or simulable(attacks.get(name)):
        return None
    supported = [n for n, c in attacks.items() if simulable(c)]
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
    """Fits one attack on probe data against a model and measures (AUC, advantage) on other probe data."""

    def __init__(self, name: str, n_classes: int, kind: str, seed: int = 0, epochs: int = 30, low_fpr: float = 0.01):
        problem = simulation_problem(name)
        if problem:
            raise ConfigError(problem)
        cls = ATTACKS.get(name)
        self.name, self.attack = name, cls()
        self.family = cls.family
        self.kind = kind
        self.attack.n_classes_ = n_classes
        self.white_box = cls.white_box
        self.learned = issubclass(cls, _LearnedAttack)
        self.n_classes, self.seed, self.epochs, self.low_fpr = n_classes, seed, epochs, low_fpr
        # a membership attack that needs no references learns from the probe non-members (its population)
        self.population_fit = (
            self.family == "membership"
            and cls.references_needed == 0
            and not issubclass(cls, SIGNAL_ATTACKS)
            and not self.learned
        )
        if isinstance(self.attack, LabelOnlyAttack):
            self.attack.kind_ = kind
        self.fitted_ = None

    def view(self, network: torch.nn.Module, served: torch.nn.Module, device) -> WhiteBoxTarget:
        """What this attacker queries: the model as it is served (the network under the run's inference-time
        defence, e.g. HAMP's output remapping) for a black-box attack, the network itself for a white-box
        one, whose weights bypass any output transformation — as in the audit."""
        return WhiteBoxTarget(network if self.white_box else served, device)

    def _scores(self, view: BlackBoxTarget, data: ProbeData) -> np.ndarray:
        if self.learned:
            return predict_binary_mlp(self.fitted_, self.attack.features(view, data.X, data.y, self.n_classes))
        return np.asarray(self.attack.score(view, data.X, data.y), dtype=np.float64)

    def fit(self, view: BlackBoxTarget, data: ProbeData, round_seed: int = 0) -> "Simulator":
        if self.family != "membership":
            self.attack.fit_probe(view, data, self.kind, self.seed + round_seed, self.epochs)
            return self
        if self.learned:
            feats = self.attack.features(view, data.X, data.y, self.n_classes)
            self.fitted_ = fit_binary_mlp(feats, data.is_member, seed=self.seed + round_seed, epochs=self.epochs)
        elif self.population_fit:
            out = torch.as_tensor(~np.asarray(data.is_member, dtype=bool))
            device = getattr(view, "device", torch.device("cpu"))
            self.attack.fit(
                AttackContext(data.X[out], data.y[out], self.n_classes, None, device, self.seed + round_seed, self.kind)
            )
        return self

    def measure(self, view: BlackBoxTarget, data: ProbeData) -> tuple[float, float, float | None]:
        """(AUC, advantage, TPR at ``low_fpr``) of this attacker on ``data``: membership attacks score
        members vs non-members; attribute inference scores the private (member) records' attribute;
        inversion scores members vs non-members by their distance to the reconstructions. The TPR is
        None for families without membership scores."""
        if self.family != "membership":
            return (*self.attack.measure_probe(view, data, self.kind), None)
        s = self._scores(view, data)
        return (
            metrics.auc(s, data.is_member),
            metrics.advantage(s, data.is_member),
            metrics.tpr_at_fpr(s, data.is_member, self.low_fpr),
        )
