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
    "resolvable",
    "auc_p_value",
    "advantage_p_value",
    "max_auc_chance",
    "paired_difference",
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
        raise ValueError(f"scores and is_member must have the same length (got {s.size} and {y_raw.size})")
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


def format_rate(value: float | None, digits: int = 3, missing: str = "n/r") -> str:
    """A TPR for tables: ``missing`` ("not resolved") when the data cannot resolve it (``None``)."""
    return missing if value is None else f"{value:.{digits}f}"


def format_fpr(f: float) -> str:
    """Dictionary key for an FPR level: the shortest repr, e.g. ``0.001 -> "0.001"``."""
    return repr(_check_fpr(f))


# --------------------------------------------------------------------------------------------
# bootstrap


def _bootstrap(s: np.ndarray, y: np.ndarray, fprs: list[float], n_bootstrap: int, seed: int) -> dict[str, np.ndarray]:
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


def loop_metrics(scores: Any, is_member: Any, low_fpr: float) -> dict[str, float]:
    """The SafeCompress loop's measurement of a membership attack: AUC, advantage and TPR at ``low_fpr``."""
    return {
        "auc": auc(scores, is_member),
        "advantage": advantage(scores, is_member),
        "tpr": tpr_at_fpr(scores, is_member, low_fpr),
    }


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
    tprs = {
        format_fpr(f): (float(_tpr_at_fpr_from_rates(tpr, fpr, f)) if resolvable(n_neg, f) else None) for f in fpr_list
    }

    if n_bootstrap > 0:
        boot = _bootstrap(s, y, fpr_list, int(n_bootstrap), seed)
        auc_ci: list[float] | None = _interval(boot["auc"], confidence)
        adv_ci: list[float] | None = _interval(boot["adv"], confidence)
        bal_ci: list[float] | None = [0.5 + 0.5 * v for v in adv_ci]  # bal = (1 + adv) / 2
        tpr_ci: dict[str, list[float] | None] = {
            format_fpr(f): _interval(boot[f"tpr{f!r}"], confidence) if resolvable(n_neg, f) else None for f in fpr_list
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
        "auc_p": auc_p_value(s, y),
        "advantage_p": advantage_p_value(adv_v, n_pos, n_neg),
        "resolution": resolution_notes(n_neg, fpr_list),
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
            if value is None:  # below the data's resolution: never maximised as if it were a number
                max_tpr.setdefault(key, None)
                max_att.setdefault(key, None)
            elif max_tpr.get(key) is None or value > max_tpr[key]:
                max_tpr[key] = float(value)
                max_att[key] = name
    return {
        "attack": best,
        "auc": float(per_attack[best]["auc"]),
        "auc_p": per_attack[best].get("auc_p"),
        "tpr_at_fpr": {k: (None if v is None else float(v)) for k, v in per_attack[best]["tpr_at_fpr"].items()},
        "max_tpr_at_fpr": max_tpr,
        "max_tpr_attack": max_att,
    }


# --------------------------------------------------------------------------------------------
# what the data can resolve, and tests of "leaks at all"

MIN_FALSE_POSITIVES = 10  # a TPR at FPR f is reported only when n_nonmembers * f >= this


def resolvable(n_nonmembers: int, fpr: float) -> bool:
    """Whether ``n_nonmembers`` resolve a TPR at ``fpr``: at least 10 false positives are allowed."""
    return n_nonmembers * fpr >= MIN_FALSE_POSITIVES - 1e-9


def resolution_notes(n_nonmembers: int, fprs: Iterable[float]) -> dict[str, str]:
    """``{fpr key: why it is not reported}`` for the FPR levels the data cannot resolve."""
    return {
        format_fpr(f): (
            f"not reported: {n_nonmembers} non-members allow {n_nonmembers * f:.1f} false positives at "
            f"FPR {f:g}; it needs at least {MIN_FALSE_POSITIVES / f:,.0f} non-members"
        )
        for f in fprs
        if not resolvable(n_nonmembers, f)
    }


def auc_p_value(scores: Any, is_member: Any) -> float:
    """One-sided p-value of AUC > 0.5 (Mann-Whitney U, normal approximation with tie correction)."""
    from scipy.stats import norm, rankdata

    s, y = _validate(scores, is_member)
    n1, n2 = int(y.sum()), int((~y).sum())
    ranks = rankdata(s)
    u = ranks[y].sum() - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    _, counts = np.unique(s, return_counts=True)
    tie = float(np.sum(counts**3 - counts))
    var = n1 * n2 / 12.0 * ((n + 1) - tie / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / np.sqrt(var)  # continuity correction
    return float(norm.sf(z))


def advantage_p_value(adv: float, n_members: int, n_nonmembers: int) -> float:
    """p-value of the advantage max(TPR − FPR): it is the one-sided two-sample Kolmogorov–Smirnov
    statistic D⁺, whose null tail is ≈ exp(−2·m·n/(m+n)·D²) (Smirnov)."""
    n_eff = n_members * n_nonmembers / (n_members + n_nonmembers)
    return float(min(1.0, np.exp(-2.0 * n_eff * adv * adv)))


def _rank_sums(scores: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(scores)


def max_auc_chance(
    score_sets: Mapping[str, Any], is_member: Any, n_permutations: int = 1000, seed: int = 0, quantile: float = 0.95
) -> dict[str, Any]:
    """Chance level of the strongest of K attacks: the ``quantile`` of max_k AUC_k when the membership
    labels are permuted (the same permutation for every attack, so their correlation is kept), and the
    permutation p-value of the observed maximum."""
    names = list(score_sets)
    if not names:
        raise ValueError("max_auc_chance needs at least one attack's scores")
    _, y = _validate(next(iter(score_sets.values())), is_member)
    n1, n2 = int(y.sum()), int((~y).sum())
    ranks = np.stack([_rank_sums(_validate(score_sets[k], y)[0]) for k in names])  # (K, n)
    observed = float(max((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n2) for r in ranks))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xAC]))
    best = np.empty(n_permutations)
    done = 0
    while done < n_permutations:
        rows = min(256, n_permutations - done)
        members = np.argsort(rng.random((rows, y.size)), axis=1)[:, :n1]  # a random member set per permutation
        sums = ranks[:, members].sum(-1)  # (K, rows)
        best[done : done + rows] = ((sums - n1 * (n1 + 1) / 2) / (n1 * n2)).max(0)
        done += rows
    return {
        "attacks": len(names),
        "observed_max_auc": observed,
        "chance_max_auc": float(np.quantile(best, quantile)),
        "quantile": quantile,
        "p_value": float((1 + np.sum(best >= observed - 1e-12)) / (1 + n_permutations)),
        "permutations": int(n_permutations),
    }


def paired_difference(
    scores_a: Mapping[str, Any],
    scores_b: Mapping[str, Any],
    is_member: Any,
    *,
    fpr: float = 0.01,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired bootstrap over audit records of model A vs model B, both scored on the same records.

    Per attack both ran, and for the strongest attack of each (max over the common attacks): ΔAUC = A − B
    and ΔTPR at ``fpr`` (when the non-members resolve it), each with its interval and a verdict: "less
    leaky" (interval below 0), "leakier" (above 0) or "no detectable difference"."""
    common = [k for k in scores_a if k in scores_b]
    if not common:
        raise ValueError("the two models share no attack to compare")
    _, y = _validate(scores_a[common[0]], is_member)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xD1]))
    bp = pos[rng.integers(0, pos.size, (n_bootstrap, pos.size))]
    bn = neg[rng.integers(0, neg.size, (n_bootstrap, neg.size))]
    with_tpr = resolvable(neg.size, fpr)

    def stats(s: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return _auc_resampled(s, bp, bn), (_tpr_resampled(s, bp, bn, fpr) if with_tpr else None)

    out: dict[str, Any] = {
        "n_members": int(pos.size),
        "n_nonmembers": int(neg.size),
        "fpr": fpr,
        "bootstrap": int(n_bootstrap),
        "attacks": {},
    }
    auc_a, auc_b, tpr_a, tpr_b = [], [], [], []
    for k in common:
        sa, sb = np.asarray(scores_a[k], float), np.asarray(scores_b[k], float)
        (aa, ta), (ab, tb) = stats(sa), stats(sb)
        auc_a.append(aa)
        auc_b.append(ab)
        tpr_a.append(ta)
        tpr_b.append(tb)
        point = auc(sa, y) - auc(sb, y)
        tpoint = (tpr_at_fpr(sa, y, fpr) - tpr_at_fpr(sb, y, fpr)) if with_tpr else None
        out["attacks"][k] = _verdicts(point, aa - ab, tpoint, None if ta is None else ta - tb, confidence)
    # the strongest attack of each model, as each report names it (max AUC over the common attacks)
    pa = max(auc(np.asarray(scores_a[k], float), y) for k in common)
    pb = max(auc(np.asarray(scores_b[k], float), y) for k in common)
    da = np.max(np.stack(auc_a), 0) - np.max(np.stack(auc_b), 0)
    if with_tpr:
        ta_pt = max(tpr_at_fpr(np.asarray(scores_a[k], float), y, fpr) for k in common)
        tb_pt = max(tpr_at_fpr(np.asarray(scores_b[k], float), y, fpr) for k in common)
        dt, tpt = np.max(np.stack(tpr_a), 0) - np.max(np.stack(tpr_b), 0), ta_pt - tb_pt
    else:
        dt, tpt = None, None
    out["strongest"] = _verdicts(pa - pb, da, tpt, dt, confidence)
    return out


def _verdict(lo: float, hi: float) -> str:
    if hi < 0:
        return "less leaky"
    if lo > 0:
        return "leakier"
    return "no detectable difference"


def _verdicts(
    d_auc: float, boot_auc: np.ndarray, d_tpr: float | None, boot_tpr: np.ndarray | None, confidence: float
) -> dict[str, Any]:
    ci = _interval(boot_auc, confidence)
    row: dict[str, Any] = {"delta_auc": float(d_auc), "delta_auc_ci": ci, "auc_verdict": _verdict(*ci)}
    if boot_tpr is not None and d_tpr is not None:
        tci = _interval(boot_tpr, confidence)
        row.update({"delta_tpr": float(d_tpr), "delta_tpr_ci": tci, "tpr_verdict": _verdict(*tci)})
    else:
        row.update({"delta_tpr": None, "delta_tpr_ci": None, "tpr_verdict": "not resolved"})
    return row


def _auc_resampled(s: np.ndarray, bp: np.ndarray, bn: np.ndarray) -> np.ndarray:
    """AUC of each bootstrap resample (rows of member / non-member indices into ``s``)."""
    order = np.argsort(s, kind="stable")
    sorted_s = s[order]
    where = np.empty(s.size, dtype=np.int64)
    where[order] = np.arange(s.size)
    B = bp.shape[0]
    w = np.zeros((B, s.size))  # multiplicity of each record as a resampled non-member, in sorted order
    np.add.at(w, (np.repeat(np.arange(B), bn.shape[1]), where[bn].ravel()), 1.0)
    cum = np.concatenate([np.zeros((B, 1)), np.cumsum(w, 1)], 1)
    lo = np.searchsorted(sorted_s, s, side="left")  # non-members strictly below / tied with each record
    hi = np.searchsorted(sorted_s, s, side="right")
    rows = np.arange(B)[:, None]
    below = cum[rows, lo[bp]]
    ties = cum[rows, hi[bp]] - below
    return (below + 0.5 * ties).sum(1) / (bp.shape[1] * bn.shape[1])


def _tpr_resampled(s: np.ndarray, bp: np.ndarray, bn: np.ndarray, fpr: float) -> np.ndarray:
    """TPR at ``fpr`` of each bootstrap resample: members scoring above the (k+1)-th highest non-member."""
    neg = np.sort(s[bn], axis=1)[:, ::-1]
    k = int(np.floor(fpr * bn.shape[1] + 1e-9))
    if k >= bn.shape[1]:
        return np.ones(bp.shape[0])
    thr = neg[:, k][:, None]
    return (s[bp] > thr).mean(1)
