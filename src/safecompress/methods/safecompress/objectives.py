"""Bi-objective scores for choosing among candidate models (pure functions, no state).

A candidate is summarised by its task accuracy on ``val`` and, per simulated attacker, the attack's
success on held-apart probe data (AUC and advantage = max TPR − FPR). Several attackers are combined
by the worst case (default) or the mean. Objectives:

* ``weighted``  — acc − λ · (AUC − 0.5)
* ``advantage`` — acc − λ · advantage
* ``epsilon``   — least leakage (AUC) among candidates within δ of the best accuracy
* ``pareto``    — candidates on the (accuracy ↑, leakage ↓) Pareto front; ties broken by ``weighted``
* ``budget``    — the most accurate candidate whose leakage is within ``budget``; if none is, the
  least leaky. Leakage is the combined AUC (``metric="auc"``) or the combined TPR at the simulators'
  low FPR (``metric="tpr"``, the low-FPR signal the audit's LiRA/RMIA reward)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from ...registry import Registry


@dataclass(frozen=True)
class Candidate:
    accuracy: float
    aucs: dict[str, float]  # per simulated attacker
    advantages: dict[str, float]
    tprs: dict[str, float | None] = field(default_factory=dict)  # TPR at the simulators' low FPR (None: no scores)


COMBINE: Registry[Callable[[Sequence[float]], float]] = Registry("attack combination")
COMBINE.register("worst")(max)
COMBINE.register("mean")(lambda xs: sum(xs) / len(xs))

OBJECTIVES: Registry = Registry("objective")


def leakage(c: Candidate, combine: str = "worst") -> tuple[float, float]:
    """(combined AUC, combined advantage) over the candidate's attackers (0.5, 0 when there are none)."""
    if not c.aucs:
        return 0.5, 0.0
    comb = COMBINE.get(combine)
    return comb(list(c.aucs.values())), comb(list(c.advantages.values()))


def budget_leakage(c: Candidate, metric: str = "auc", combine: str = "worst") -> float:
    """The leakage a budget bounds: combined AUC, or combined TPR at low FPR over the attackers that score
    membership (0 when none does)."""
    if metric == "auc":
        return leakage(c, combine)[0]
    tprs = [t for t in c.tprs.values() if t is not None]
    return COMBINE.get(combine)(tprs) if tprs else 0.0


@OBJECTIVES.register("weighted")
def weighted(
    cands: Sequence[Candidate],
    lam: float = 1.0,
    delta: float = 0.01,
    combine: str = "worst",
    budget: float = 0.6,
    metric: str = "auc",
) -> list[float]:
    return [c.accuracy - lam * (leakage(c, combine)[0] - 0.5) for c in cands]


@OBJECTIVES.register("advantage")
def advantage_form(
    cands: Sequence[Candidate],
    lam: float = 1.0,
    delta: float = 0.01,
    combine: str = "worst",
    budget: float = 0.6,
    metric: str = "auc",
) -> list[float]:
    return [c.accuracy - lam * leakage(c, combine)[1] for c in cands]


@OBJECTIVES.register("epsilon")
def epsilon_constraint(
    cands: Sequence[Candidate],
    lam: float = 1.0,
    delta: float = 0.01,
    combine: str = "worst",
    budget: float = 0.6,
    metric: str = "auc",
) -> list[float]:
    """Feasible (acc ≥ best − δ) candidates score 1 − AUC (higher is better); the others −inf."""
    best = max(c.accuracy for c in cands)
    return [(1.0 - leakage(c, combine)[0]) if c.accuracy >= best - delta else float("-inf") for c in cands]


def pareto_front(cands: Sequence[Candidate], combine: str = "worst") -> list[int]:
    """Indices of candidates no other candidate dominates (≥ accuracy and ≤ AUC, one strictly)."""
    points = [(c.accuracy, leakage(c, combine)[0]) for c in cands]
    front = []
    for i, (a, leak) in enumerate(points):
        dominated = any(
            (a2 >= a and leak2 <= leak) and (a2 > a or leak2 < leak) for j, (a2, leak2) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return front


@OBJECTIVES.register("pareto")
def pareto(
    cands: Sequence[Candidate],
    lam: float = 1.0,
    delta: float = 0.01,
    combine: str = "worst",
    budget: float = 0.6,
    metric: str = "auc",
) -> list[float]:
    """Front members keep their weighted score; dominated candidates get −inf."""
    front = set(pareto_front(cands, combine))
    scores = weighted(cands, lam, delta, combine, budget, metric)
    return [s if i in front else float("-inf") for i, s in enumerate(scores)]


@OBJECTIVES.register("budget")
def budget_constraint(
    cands: Sequence[Candidate],
    lam: float = 1.0,
    delta: float = 0.01,
    combine: str = "worst",
    budget: float = 0.6,
    metric: str = "auc",
) -> list[float]:
    """Within the leakage budget (combined AUC, or TPR at low FPR, ≤ ``budget``): the most accurate candidate
    wins (score = accuracy, in [0, 1]). Over budget: scores below every feasible one, least leaky first
    (−leakage − 1)."""
    leaks = [budget_leakage(c, metric, combine) for c in cands]
    return [c.accuracy if leak <= budget else -1.0 - leak for c, leak in zip(cands, leaks)]


def select(
    cands: Sequence[Candidate],
    objective: str = "weighted",
    lam: float = 1.0,
    delta: float = 0.01,
    combine: str = "worst",
    budget: float = 0.6,
    metric: str = "auc",
) -> tuple[int, list[float]]:
    """(index of the best candidate, every candidate's score); ties go to the earliest candidate."""
    if not cands:
        raise ValueError("no candidates to select from")
    scores = OBJECTIVES.get(objective)(cands, lam, delta, combine, budget, metric)
    best = max(range(len(cands)), key=lambda i: (scores[i], -i))
    return best, scores
