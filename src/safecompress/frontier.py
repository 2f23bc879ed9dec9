"""Accuracy-vs-leakage frontiers of method families (pure functions, no state).

A *family* is one method at several strengths of its own knob: bench methods named
``family(knob=value)`` or ``family-variant(knob=value)`` belong to ``family`` (e.g. ``rigl+relaxloss(a=1)``
→ ``rigl+relaxloss``; ``safecompress-steer(b=0.6)`` → ``safecompress``). A point is (accuracy ↑, leakage ↓),
leakage being the strongest attack's AUC. Per family:

* the Pareto front of its points;
* the hypervolume dominated by the front inside a fixed reference box (accuracy ≥ ``acc_ref``, AUC ≤
  ``auc_ref``): larger is better, and a family whose every point lies outside the box scores 0;
* the least leakage it reaches at accuracy ≥ a target (e.g. RigL − 1 pt): the step-wise frontier, which
  never credits a family with a point it did not measure.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

Point = tuple[float, float]  # (accuracy, auc)


def family(method: str) -> str:
    """The family of a bench method name: the part before ``(`` and before a ``-variant`` suffix."""
    return re.split(r"[(]", method, maxsplit=1)[0].split("-", 1)[0]


def pareto_front(points: Iterable[Point]) -> list[Point]:
    """Points no other point dominates (≥ accuracy and ≤ AUC, one strictly), by increasing accuracy."""
    pts = sorted(set(points))
    front = [p for p in pts if not any((q[0] >= p[0] and q[1] <= p[1]) and q != p for q in pts)]
    return sorted(front)


def hypervolume(points: Iterable[Point], acc_ref: float, auc_ref: float) -> float:
    """Area of {(a, l): acc_ref ≤ a ≤ some point's accuracy, that point's AUC ≤ l ≤ auc_ref}."""
    front = [p for p in pareto_front(points) if p[0] > acc_ref and p[1] < auc_ref]
    area, prev_acc = 0.0, acc_ref
    # sweep by increasing accuracy: on the front, AUC rises with accuracy, so each slab [prev, acc] is
    # covered from the least AUC of the points at or above that accuracy
    for i, (acc, _) in enumerate(front):
        best_auc = min(p[1] for p in front[i:])
        area += (acc - prev_acc) * (auc_ref - best_auc)
        prev_acc = acc
    return area


def least_leakage_at(points: Sequence[Point], accuracy: float) -> float | None:
    """The lowest AUC among points with accuracy ≥ ``accuracy`` (None if no point is that accurate)."""
    ok = [auc for acc, auc in points if acc >= accuracy - 1e-12]
    return min(ok) if ok else None
