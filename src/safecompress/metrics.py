"""Membership-inference metrics: the one place that turns attack scores into numbers.

Contract: ``scores`` holds one float per queried sample, higher meaning "more likely a member";
``is_member`` is a bool / 0-1 array of the same length. An attack predicts "member" when
``score >= threshold``. Tied scores always move together (one ROC step), and AUC counts ties as
half, so it equals the Mann-Whitney U statistic divided by ``n_members * n_nonmembers``.

Everything is pure numpy. Bootstrap intervals resample members and non-members separately
(stratified) and are computed for all replicates at once on per-score-group counts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "roc_curve",
    "auc",
    "tpr_at_fpr",
    "best_balanced_accuracy",
    "balanced_accuracy_at",
    "advantage",
    "membership_metrics",
    "format_fpr",
    "worst_case",
]

# Upper bound on elements of one (replicates x groups) work matrix during bootstrapping.
_CHUNK_ELEMENTS = 4_000_000


# --------------------------------------------------------------------------------------------
# validation and grouping


def _validate(scores: Any, is_member: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores as float64, labels as bool)`` or raise ``ValueError``."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y_raw = np.asarray(is_member).ravel()
    if s.shape != y_raw.shape:
        raise ValueError(
            f"scores and is_member must have the same length (got {s.size} and {y_raw.size})"
        )
    if s.size == 0:
        raise ValueError("scores and is_member are empty; need at least one member and one non-member")
    if not np.all(np.isfinite(s)):
        bad = int(np.count_nonzero(~np.isfinite(s)))
        raise ValueError(f"scores contain {bad} NaN or infinite value(s); every score must be finite")
    if y_raw.dtype != np.bool_:
        if not np.all((y_raw == 0) | (y_raw == 1)):
            raise ValueError("is_member must be boolean or contain only 0 and 1")
    y = y_raw.astype(bool)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        which = "members" if n_pos == y.size else "non-members"
        raise ValueError(f"only one class present: is_member holds only {which}; need both classes")
    return s, y


def _groups(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct scores in decreasing order and each sample's group index into them."""
    uniq, inv = np.unique(s, return_inverse=True)
    g = uniq.size
    return uniq[::-1], (g - 1 - inv.ravel())


def _group_counts(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(distinct scores decreasing, members per group, non-members per group)`` as 1-D arrays."""
    thr, gid = _groups(s)
    pos = np.bincount(gid[y], minlength=thr.size).astype(np.float64)
    neg = np.bincount(gid[~y], minlength=thr.size).astype(np.float64)
    return thr, pos, neg


# --------------------------------------------------------------------------------------------
# curve statistics on (replicates x groups) count matrices


def _rates(pos: np.ndarray, neg: np.ndarray, n_pos: int, n_neg: int) -> tuple[np.ndarray, np.ndarray]:
    """TPR and FPR at each group threshold (no leading (0, 0) point); inputs are (B, G)."""
    return np.cumsum(pos, axis=-1) / n_pos, np.cumsum(neg, axis=-1) / n_neg


def _auc_from_counts(pos: np.ndarray, neg: np.ndarray, n_pos: int, n_neg: int) -> np.ndarray:
    """Mann-Whitney AUC: each non-member beats nothing, ties count half. Inputs (B, G)."""
    tp_before = np.cumsum(pos, axis=-1) - pos  # members scoring strictly higher than the group
    return np.sum(neg * (tp_before + 0.5 * pos), axis=-1) / (n_pos * n_neg)


def _tpr_at_fpr_from_rates(tpr: np.ndarray, fpr: np.ndarray, target: float) -> np.ndarray:
    """Highest TPR among ROC points with FPR <= target; the (0, 0) point makes it >= 0."""
    return np.max(np.where(fpr <= target, tpr, 0.0), axis=-1, initial=0.0)


def _check_fpr(target: float) -> float:
    t = float(target)
    if not (0.0 <= t <= 1.0):
        raise ValueError(f"fpr_target must lie in [0, 1], got {target!r}")
    return t


# --------------------------------------------------------------------------------------------
# public point metrics


def roc_curve(scores: Any, is_member: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical ROC ``(fpr, tpr, thresholds)``.

    Point ``i`` is the rate pair when predicting member iff ``score >= thresholds[i]``.
    Thresholds decrease; the first is ``+inf`` (point (0, 0)) and the rest are the distinct
    scores, so the last point is (1, 1). Tied scores form a single step.
    """
    s, y = _validate(scores, is_member)
    thr, pos, neg = _group_counts(s, y)
    tpr, fpr = _rates(pos, neg, int(y.sum()), int((~y).sum()))
    return (
        np.concatenate(([0.0], fpr)),
        np.concatenate(([0.0], tpr)),
        np.concatenate(([np.inf], thr)),
    )


def auc(scores: Any, is_member: Any) -> float:
    """Area under the ROC curve (ties count half; equals Mann-Whitney U / (n_pos * n_neg))."""
    s, y = _validate(scores, is_member)
    _, pos, neg = _group_counts(s, y)
    return float(_auc_from_counts(pos, neg, int(y.sum()), int((~y).sum())))


def tpr_at_fpr(scores: Any, is_member: Any, fpr_target: float) -> float:
    """Highest TPR of an empirical ROC point with FPR <= ``fpr_target`` (no interpolation)."""
    target = _check_fpr(fpr_target)
    s, y = _validate(scores, is_member)
    _, pos, neg = _group_counts(s, y)
    tpr, fpr = _rates(pos, neg, int(y.sum()), int((~y).sum()))
    return float(_tpr_at_fpr_from_rates(tpr, fpr, target))


def best_balanced_accuracy(scores: Any, is_member: Any) -> tuple[float, float]:
    """``(max over thresholds of (TPR + TNR) / 2, the threshold achieving it)``.

    The threshold is always one of the scores (the highest one on ties), so it can be reused
    with :func:`balanced_accuracy_at`.
    """
    s, y = _validate(scores, is_member)
    thr, pos, neg = _group_counts(s, y)
    tpr, fpr = _rates(pos, neg, int(y.sum()), int((~y).sum()))
    bal = 0.5 * (tpr + 1.0 - fpr)
    i = int(np.argmax(bal))
    return float(bal[i]), float(thr[i])


def balanced_accuracy_at(scores: Any, is_member: Any, threshold: float) -> float:
    """Balanced accuracy when predicting member iff ``score >= threshold``."""
    s, y = _validate(scores, is_member)
    t = float(threshold)
    if np.isnan(t):
        raise ValueError("threshold must not be NaN")
    tpr = float(np.mean(s[y] >= t))
    tnr = float(np.mean(s[~y] < t))
    return 0.5 * (tpr + tnr)


def advantage(scores: Any, is_member: Any) -> float:
    """Membership advantage: max over thresholds of TPR - FPR (= 2 * best balanced acc - 1)."""
    s, y = _validate(scores, is_member)
    _, pos, neg = _group_counts(s, y)
    tpr, fpr = _rates(pos, neg, int(y.sum()), int((~y).sum()))
    return float(max(0.0, np.max(tpr - fpr)))


def format_fpr(f: float) -> str:
    """Dictionary key for an FPR level: the shortest repr, e.g. ``0.001 -> "0.001"``."""
    return repr(_check_fpr(f))


# --------------------------------------------------------------------------------------------
# bootstrap


def _bootstrap(
    s: np.ndarray, y: np.ndarray, fprs: list[float], n_bootstrap: int, seed: int
) -> dict[str, np.ndarray]:
    """Statistics of ``n_bootstrap`` stratified resamples, each an array of length n_bootstrap."""
    rng = np.random.default_rng(seed)
    thr, gid = _groups(s)
    n_groups = thr.size
    g_pos, g_neg = gid[y], gid[~y]
    n_pos, n_neg = g_pos.size, g_neg.size
    chunk = max(1, _CHUNK_ELEMENTS // max(n_groups, s.size))
    out: dict[str, list[np.ndarray]] = {"auc": [], "adv": []}
    for f in fprs:
        out[f"tpr{f!r}"] = []

    def counts(groups: np.ndarray, rows: int) -> np.ndarray:
        draws = groups[rng.integers(0, groups.size, size=(rows, groups.size))]
        flat = draws + n_groups * np.arange(rows)[:, None]
        return np.bincount(flat.ravel(), minlength=rows * n_groups).reshape(rows, n_groups)

    done = 0
    while done < n_bootstrap:
        rows = min(chunk, n_bootstrap - done)
        pos = counts(g_pos, rows).astype(np.float64)
        neg = counts(g_neg, rows).astype(np.float64)
        out["auc"].append(_auc_from_counts(pos, neg, n_pos, n_neg))
        tpr, fpr = _rates(pos, neg, n_pos, n_neg)
        out["adv"].append(np.maximum(0.0, np.max(tpr - fpr, axis=1)))
        for f in fprs:
            out[f"tpr{f!r}"].append(_tpr_at_fpr_from_rates(tpr, fpr, f))
        done += rows
    return {k: np.concatenate(v) for k, v in out.items()}


def _interval(values: np.ndarray, confidence: float) -> list[float]:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def membership_metrics(
    scores: Any,
    is_member: Any,
    *,
    attacker_threshold: float | None = None,
    fprs: Iterable[float] = (0.001, 0.01, 0.1),
    n_bootstrap: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """All membership metrics as a JSON-ready dict (plain floats / ints / lists / None).

    Intervals are stratified percentile-bootstrap intervals at level ``confidence`` from
    ``np.random.default_rng(seed)``; with ``n_bootstrap=0`` every ``*_ci`` entry is ``None``.
    ``balanced_accuracy_attacker_threshold`` is the balanced accuracy at ``attacker_threshold``
    (a threshold the attacker chose on its own data), or ``None`` when none is given.
    """
    s, y = _validate(scores, is_member)
    fpr_list = [_check_fpr(f) for f in fprs]
    if int(n_bootstrap) < 0:
        raise ValueError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    if not (0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")

    n_pos, n_neg = int(y.sum()), int((~y).sum())
    _, pos, neg = _group_counts(s, y)
    tpr, fpr = _rates(pos, neg, n_pos, n_neg)
    auc_v = float(_auc_from_counts(pos, neg, n_pos, n_neg))
    adv_v = float(max(0.0, np.max(tpr - fpr)))
    bal_v = float(np.max(0.5 * (tpr + 1.0 - fpr)))
    tprs = {format_fpr(f): float(_tpr_at_fpr_from_rates(tpr, fpr, f)) for f in fpr_list}

    if n_bootstrap > 0:
        boot = _bootstrap(s, y, fpr_list, int(n_bootstrap), seed)
        auc_ci: list[float] | None = _interval(boot["auc"], confidence)
        adv_ci: list[float] | None = _interval(boot["adv"], confidence)
        bal_ci: list[float] | None = [0.5 + 0.5 * v for v in adv_ci]  # bal = (1 + adv) / 2
        tpr_ci: dict[str, list[float] | None] = {
            format_fpr(f): _interval(boot[f"tpr{f!r}"], confidence) for f in fpr_list
        }
    else:
        auc_ci = adv_ci = bal_ci = None
        tpr_ci = {format_fpr(f): None for f in fpr_list}

    att = None if attacker_threshold is None else balanced_accuracy_at(s, y, attacker_threshold)
    log.debug("membership metrics: n=%d auc=%.4f adv=%.4f", s.size, auc_v, adv_v)
    return {
        "auc": auc_v,
        "auc_ci": auc_ci,
        "balanced_accuracy": bal_v,
        "balanced_accuracy_ci": bal_ci,
        "balanced_accuracy_attacker_threshold": att,
        "advantage": adv_v,
        "advantage_ci": adv_ci,
        "tpr_at_fpr": tprs,
        "tpr_at_fpr_ci": tpr_ci,
        "n_members": n_pos,
        "n_nonmembers": n_neg,
    }


def worst_case(per_attack: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Summarise ``{attack: membership_metrics(...)}`` by the strongest attack.

    ``attack``/``auc``/``tpr_at_fpr`` come from the attack with the highest AUC (first on ties);
    ``max_tpr_at_fpr`` / ``max_tpr_attack`` take the maximum per FPR level over all attacks.
    """
    if not per_attack:
        raise ValueError("worst_case needs at least one attack")
    best = max(per_attack, key=lambda name: per_attack[name]["auc"])
    max_tpr: dict[str, float] = {}
    max_att: dict[str, str] = {}
    for name, m in per_attack.items():
        for key, value in m["tpr_at_fpr"].items():
            if key not in max_tpr or value > max_tpr[key]:
                max_tpr[key] = float(value)
                max_att[key] = name
    return {
        "attack": best,
        "auc": float(per_attack[best]["auc"]),
        "tpr_at_fpr": {k: float(v) for k, v in per_attack[best]["tpr_at_fpr"].items()},
        "max_tpr_at_fpr": max_tpr,
        "max_tpr_attack": max_att,
    }
