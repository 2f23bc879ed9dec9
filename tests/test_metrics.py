"""Golden numbers and properties of safecompress.metrics, plus the ROC figure writer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from safecompress import metrics as M
from safecompress.report.roc import plot_roc

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def _brute_auc(s: np.ndarray, y: np.ndarray) -> float:
    pos, neg = s[y], s[~y]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / (pos.size * neg.size))


def _brute_points(s: np.ndarray, y: np.ndarray) -> list[tuple[float, float, float]]:
    """(threshold, fpr, tpr) for every threshold, predicting member iff score >= threshold."""
    pts = [(np.inf, 0.0, 0.0)]
    for t in np.unique(s):
        pts.append((float(t), float(np.mean(s[~y] >= t)), float(np.mean(s[y] >= t))))
    return pts


def _random_tied(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    s = np.round(rng.normal(size=n) + 0.7 * y, 1)  # rounding creates many ties
    return s, y


# ------------------------------------------------------------------------------ golden numbers


def test_perfect_separation():
    s = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    y = np.array([1, 1, 1, 0, 0, 0])
    assert M.auc(s, y) == 1.0
    assert M.advantage(s, y) == 1.0
    assert M.best_balanced_accuracy(s, y) == (1.0, 0.7)
    for f in (0.0, 0.001, 0.01, 0.5, 1.0):
        assert M.tpr_at_fpr(s, y, f) == 1.0


def test_reversed():
    s = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    y = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
    assert M.auc(s, y) == 0.0
    assert M.tpr_at_fpr(s, y, 0.01) == 0.0
    assert M.advantage(s, y) == 0.0
    assert M.best_balanced_accuracy(s, y)[0] == 0.5


def test_all_ties_is_diagonal():
    s = np.full(10, 0.3)
    y = np.arange(10) % 2 == 0
    fpr, tpr, thr = M.roc_curve(s, y)
    np.testing.assert_array_equal(fpr, [0.0, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 1.0])
    np.testing.assert_array_equal(thr, [np.inf, 0.3])
    assert M.auc(s, y) == 0.5
    assert M.advantage(s, y) == 0.0
    assert M.tpr_at_fpr(s, y, 0.5) == 0.0


def test_hand_computed_example_with_ties():
    s = np.array([0.9, 0.8, 0.8, 0.5, 0.5, 0.5, 0.2, 0.1])
    y = np.array([1, 1, 0, 1, 0, 0, 1, 0])
    # P = 4 members, N = 4 non-members. Score groups (descending) with (members, non-members):
    #   0.9:(1,0)  0.8:(1,1)  0.5:(1,2)  0.2:(1,0)  0.1:(0,1)
    # cumulative TP 1,2,3,4,4 -> TPR .25,.5,.75,1,1 ; cumulative FP 0,1,3,3,4 -> FPR 0,.25,.75,.75,1
    fpr, tpr, thr = M.roc_curve(s, y)
    np.testing.assert_array_equal(fpr, [0, 0, 0.25, 0.75, 0.75, 1])
    np.testing.assert_array_equal(tpr, [0, 0.25, 0.5, 0.75, 1, 1])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.8, 0.5, 0.2, 0.1])
    # Mann-Whitney per non-member (members above + half of tied members):
    #   0.8 -> 1 + 0.5 = 1.5 ; 0.5 (twice) -> 2 + 0.5 = 2.5 each ; 0.1 -> 4
    #   total 10.5 / 16 = 0.65625 (trapezoids: 0 + .09375 + .3125 + 0 + .25 agree)
    assert M.auc(s, y) == pytest.approx(0.65625, abs=1e-15)
    # TPR at FPR: largest TPR whose FPR <= target
    assert M.tpr_at_fpr(s, y, 0.0) == 0.25
    assert M.tpr_at_fpr(s, y, 0.1) == 0.25
    assert M.tpr_at_fpr(s, y, 0.25) == 0.5
    assert M.tpr_at_fpr(s, y, 0.5) == 0.5
    assert M.tpr_at_fpr(s, y, 0.75) == 1.0
    # balanced accuracy (TPR + 1 - FPR)/2 per threshold: .9->.625 .8->.625 .5->.5 .2->.625 .1->.5
    # best is .625; the highest threshold reaching it is 0.9
    assert M.best_balanced_accuracy(s, y) == (0.625, 0.9)
    assert M.advantage(s, y) == pytest.approx(0.25)
    # at threshold 0.5: TPR = 3/4, TNR = 1/4 (only 0.1 is below) -> 0.5
    assert M.balanced_accuracy_at(s, y, 0.5) == 0.5
    assert M.balanced_accuracy_at(s, y, 0.9) == 0.625


# ------------------------------------------------------------------------------ properties


@pytest.mark.parametrize("seed", range(6))
def test_auc_matches_mann_whitney(seed):
    s, y = _random_tied(seed)
    assert M.auc(s, y) == pytest.approx(_brute_auc(s, y), abs=1e-12)
    fpr, tpr, _ = M.roc_curve(s, y)
    assert M.auc(s, y) == pytest.approx(float(_trapezoid(tpr, fpr)), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_roc_and_tpr_at_fpr_match_brute_force(seed):
    s, y = _random_tied(seed)
    fpr, tpr, thr = M.roc_curve(s, y)
    pts = sorted(_brute_points(s, y), key=lambda p: -p[0])
    np.testing.assert_array_equal(thr, [p[0] for p in pts])
    np.testing.assert_allclose(fpr, [p[1] for p in pts])
    np.testing.assert_allclose(tpr, [p[2] for p in pts])
    assert np.all(np.diff(thr) < 0) and np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    for target in (0.0, 0.001, 0.01, 0.05, 0.1, 0.33, 1.0):
        truth = max(t for _, f, t in pts if f <= target)
        got = M.tpr_at_fpr(s, y, target)
        assert got <= truth + 1e-12
        assert got == pytest.approx(truth)
    bal, t = M.best_balanced_accuracy(s, y)
    assert bal == pytest.approx(max((tp + 1 - f) / 2 for _, f, tp in pts))
    assert M.balanced_accuracy_at(s, y, t) == pytest.approx(bal)
    assert M.advantage(s, y) == pytest.approx(2 * bal - 1)


# ------------------------------------------------------------------------------ bootstrap


def _signal(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2 == 0
    return rng.normal(size=n) + 0.8 * y, y


def test_membership_metrics_shape_and_json():
    s, y = _signal(400)
    m = M.membership_metrics(s, y, attacker_threshold=0.4, n_bootstrap=50)
    assert list(m) == [
        "auc",
        "auc_ci",
        "balanced_accuracy",
        "balanced_accuracy_ci",
        "balanced_accuracy_attacker_threshold",
        "advantage",
        "advantage_ci",
        "tpr_at_fpr",
        "tpr_at_fpr_ci",
        "auc_p",
        "advantage_p",
        "resolution",
        "n_members",
        "n_nonmembers",
    ]
    # 200 non-members resolve TPR at 10 % FPR only (>= 10 false positives); the rest are null, with a note
    assert m["tpr_at_fpr"]["0.001"] is None and m["tpr_at_fpr"]["0.01"] is None and m["tpr_at_fpr_ci"]["0.01"] is None
    assert m["tpr_at_fpr"]["0.1"] is not None and set(m["resolution"]) == {"0.001", "0.01"}
    assert "1,000 non-members" in m["resolution"]["0.01"]
    assert list(m["tpr_at_fpr"]) == ["0.001", "0.01", "0.1"] == list(m["tpr_at_fpr_ci"])
    assert m["n_members"] == 200 and m["n_nonmembers"] == 200
    assert json.loads(json.dumps(m)) == m  # plain Python types only
    assert type(m["auc"]) is float and type(m["n_members"]) is int
    assert all(type(v) is float for v in m["auc_ci"])
    assert m["auc"] == M.auc(s, y)
    assert m["advantage"] == pytest.approx(M.advantage(s, y))
    assert m["balanced_accuracy"] == pytest.approx(M.best_balanced_accuracy(s, y)[0])
    assert m["balanced_accuracy_attacker_threshold"] == M.balanced_accuracy_at(s, y, 0.4)
    assert M.membership_metrics(s, y, n_bootstrap=10)["balanced_accuracy_attacker_threshold"] is None
    assert M.membership_metrics(s, y, n_bootstrap=0)["auc_ci"] is None


def test_ci_contains_estimate_and_narrows():
    widths = []
    for n in (200, 2000, 20000):
        s, y = _signal(n)
        m = M.membership_metrics(s, y, n_bootstrap=200, seed=1)
        for key in ("auc", "balanced_accuracy", "advantage"):
            lo, hi = m[f"{key}_ci"]
            assert lo <= m[key] <= hi, (n, key)
        lo, hi = m["tpr_at_fpr_ci"]["0.1"]
        assert lo <= m["tpr_at_fpr"]["0.1"] <= hi
        widths.append(m["auc_ci"][1] - m["auc_ci"][0])
    assert widths[0] > widths[1] > widths[2] > 0


def test_same_seed_same_intervals():
    s, y = _signal(1000)
    a = M.membership_metrics(s, y, seed=7, n_bootstrap=100)
    b = M.membership_metrics(s, y, seed=7, n_bootstrap=100)
    c = M.membership_metrics(s, y, seed=8, n_bootstrap=100)
    assert a == b
    assert a["auc_ci"] != c["auc_ci"]


def test_random_scores_give_chance_auc():
    rng = np.random.default_rng(123)
    s = rng.random(5000)
    y = rng.random(5000) < 0.5
    m = M.membership_metrics(s, y, seed=0)
    assert abs(m["auc"] - 0.5) < 0.03
    assert m["auc_ci"][0] <= 0.5 <= m["auc_ci"][1]


def test_format_fpr():
    assert [M.format_fpr(f) for f in (0.001, 0.01, 0.1, 1e-5, 0.25)] == ["0.001", "0.01", "0.1", "1e-05", "0.25"]


# ------------------------------------------------------------------------------ worst case


def test_worst_case_picks_strongest():
    per = {
        "loss": {"auc": 0.60, "tpr_at_fpr": {"0.001": 0.002, "0.01": 0.05}},
        "lira": {"auc": 0.58, "tpr_at_fpr": {"0.001": 0.010, "0.01": 0.04}},
        "entropy": {"auc": 0.55, "tpr_at_fpr": {"0.001": 0.001, "0.01": 0.03}},
    }
    w = M.worst_case(per)
    assert w == {
        "attack": "loss",
        "auc": 0.60,
        "auc_p": None,
        "tpr_at_fpr": {"0.001": 0.002, "0.01": 0.05},
        "max_tpr_at_fpr": {"0.001": 0.010, "0.01": 0.05},
        "max_tpr_attack": {"0.001": "lira", "0.01": "loss"},
    }
    with pytest.raises(ValueError):
        M.worst_case({})


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        ([0.1, 0.2], [1, 0, 1], "same length"),
        ([], [], "empty"),
        ([0.1, np.nan], [1, 0], "NaN or infinite"),
        ([0.1, np.inf], [1, 0], "NaN or infinite"),
        ([0.1, 0.2], [1, 1], "only one class"),
        ([0.1, 0.2], [0, 0], "only one class"),
        ([0.1, 0.2], [2, 0], "only 0 and 1"),
    ],
)
def test_validation_errors(scores, labels, match):
    for fn in (M.auc, M.roc_curve, M.advantage, M.best_balanced_accuracy, M.membership_metrics):
        with pytest.raises(ValueError, match=match):
            fn(scores, labels)


def test_bad_fpr_target():
    with pytest.raises(ValueError, match="fpr_target"):
        M.tpr_at_fpr([0.1, 0.2], [0, 1], 1.5)


# ------------------------------------------------------------------------------ figure


def test_plot_roc_writes_png(tmp_path):
    import matplotlib.pyplot as plt

    s, y = _signal(500)
    fpr, tpr, _ = M.roc_curve(s, y)
    out = plot_roc(
        {"loss": (fpr, tpr, M.auc(s, y)), "flat": (np.array([0.0, 1.0]), np.array([0.0, 1.0]))},
        tmp_path / "sub" / "roc.png",
        title="test",
    )
    data = out.read_bytes()
    assert out == tmp_path / "sub" / "roc.png"
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == []
    assert [p.name for p in out.parent.iterdir()] == ["roc.png"]  # no temp files left


# ------------------------------------------------------------------------------ statistics of "leaks at all"


def _slow_mann_whitney_p(s, y):
    """Obviously-correct U with a normal approximation (ties: average ranks, tie-corrected variance)."""
    from math import erf, sqrt

    pos, neg = s[y], s[~y]
    u = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    n1, n2 = len(pos), len(neg)
    n = n1 + n2
    _, counts = np.unique(s, return_counts=True)
    var = n1 * n2 / 12 * ((n + 1) - float(np.sum(counts**3 - counts)) / (n * (n - 1)))
    z = (u - n1 * n2 / 2 - 0.5) / sqrt(var)
    return 0.5 * (1 - erf(z / sqrt(2)))


def test_auc_p_value_matches_a_slow_reference_and_is_uniformish_under_the_null():
    rng = np.random.default_rng(5)
    s = np.round(rng.normal(size=120), 1)  # ties
    y = rng.random(120) < 0.5
    assert M.auc_p_value(s, y) == pytest.approx(_slow_mann_whitney_p(s, y), rel=1e-9)
    s2, y2 = _signal(400)
    assert M.auc_p_value(s2, y2) < 1e-6  # a real signal
    null = [M.auc_p_value(rng.random(300), rng.random(300) < 0.5) for _ in range(200)]
    assert 0.02 < np.mean(np.array(null) < 0.05) < 0.10  # about 5 % false alarms


def test_advantage_p_value_is_the_one_sided_ks_test():
    from scipy.stats import ks_2samp

    s, y = _signal(600)
    adv = M.advantage(s, y)
    ks = ks_2samp(s[y], s[~y], alternative="less")  # members' CDF lies below the non-members'
    assert ks.statistic == pytest.approx(adv)
    p = M.advantage_p_value(adv, int(y.sum()), int((~y).sum()))
    assert p == pytest.approx(ks.pvalue, rel=0.5) and p < 1e-6
    rng = np.random.default_rng(1)
    null = rng.random(800)
    labels = rng.permutation(np.arange(800) < 400)
    assert M.advantage_p_value(M.advantage(null, labels), 400, 400) > 0.05  # permuted labels: not significant


def test_max_auc_chance_covers_the_maximum_over_attacks_under_the_null():
    rng = np.random.default_rng(2)
    y = np.arange(800) < 400
    null = {f"a{k}": rng.normal(size=800) for k in range(12)}
    chance = M.max_auc_chance(null, y, n_permutations=500, seed=0)
    one = M.max_auc_chance({"a0": null["a0"]}, y, n_permutations=500, seed=0)
    assert chance["chance_max_auc"] > one["chance_max_auc"] > 0.5  # a max over 12 sits higher than one AUC
    assert chance["p_value"] > 0.05 and chance["observed_max_auc"] > 0.5
    leaky = {**null, "leak": null["a0"] + 0.5 * y}
    assert M.max_auc_chance(leaky, y, n_permutations=500)["p_value"] < 0.01


def test_paired_difference_finds_a_real_gap_and_none_between_equals():
    rng = np.random.default_rng(3)
    y = np.arange(2000) < 1000
    base = {"loss": rng.normal(size=2000) + 0.6 * y}
    same = M.paired_difference(base, base, y, n_bootstrap=300)
    assert same["strongest"]["delta_auc"] == 0 and same["strongest"]["auc_verdict"] == "no detectable difference"
    weaker = {"loss": base["loss"] - 0.4 * y}
    d = M.paired_difference(weaker, base, y, n_bootstrap=300)
    assert d["strongest"]["auc_verdict"] == "less leaky" and d["strongest"]["delta_auc_ci"][1] < 0
    assert d["attacks"]["loss"]["tpr_verdict"] in ("less leaky", "no detectable difference")
    assert M.paired_difference(base, weaker, y, n_bootstrap=300)["strongest"]["auc_verdict"] == "leakier"
    # 800 non-members cannot resolve TPR at 1 % FPR: reported as such, never as a number
    y8 = np.arange(1600) < 800
    s8 = {"loss": rng.normal(size=1600)}
    assert M.paired_difference(s8, s8, y8, n_bootstrap=50)["strongest"]["tpr_verdict"] == "not resolved"


def test_resampled_auc_and_tpr_equal_direct_computation():
    rng = np.random.default_rng(4)
    s = np.round(rng.normal(size=600), 1)
    y = np.arange(600) < 300
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    bp, bn = pos[rng.integers(0, 300, (5, 300))], neg[rng.integers(0, 300, (5, 300))]
    lab = np.r_[np.ones(300, bool), np.zeros(300, bool)]
    for i, (a, t) in enumerate(zip(M._auc_resampled(s, bp, bn), M._tpr_resampled(s, bp, bn, 0.1))):
        both = np.r_[s[bp[i]], s[bn[i]]]
        assert a == pytest.approx(M.auc(both, lab)) and t == pytest.approx(M.tpr_at_fpr(both, lab, 0.1))


def test_worst_case_never_maximises_unresolved_rates():
    per = {
        "loss": {"auc": 0.6, "tpr_at_fpr": {"0.001": None, "0.01": 0.05}},
        "lira": {"auc": 0.55, "tpr_at_fpr": {"0.001": None, "0.01": 0.07}},
    }
    w = M.worst_case(per)
    assert w["max_tpr_at_fpr"] == {"0.001": None, "0.01": 0.07} and w["max_tpr_attack"]["0.001"] is None


def test_roc_curves_are_told_apart_and_axes_stop_at_the_data_resolution():
    from safecompress.report.roc import curve_styles, prepare_curves

    styles = curve_styles(12)  # every attack of the audit, more than one colour cycle
    assert len(set(map(str, styles))) == 12
    s, y = _signal(500)  # 250 non-members: the smallest measurable FPR is 1/250
    fpr, tpr, _ = M.roc_curve(s, y)
    _, low = prepare_curves({"loss": (fpr, tpr)})
    assert low == pytest.approx(min(fpr[fpr > 0].min(), tpr[tpr > 0].min())) and low >= 1 / 500
    _, low = prepare_curves({"flat": (np.array([0.0, 0.0]), np.array([0.0, 0.0]))})
    assert low == 1e-4  # nothing positive: a fixed floor


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_tpr_and_p_value_agree_with_sklearn_and_scipy(seed):
    """Our ROC arithmetic against the well-kept libraries, on scores with many ties (rounded)."""
    from scipy.stats import mannwhitneyu
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc_curve

    rng = np.random.default_rng(seed)
    n_in, n_out = int(rng.integers(5, 300)), int(rng.integers(5, 300))
    y = np.r_[np.ones(n_in, bool), np.zeros(n_out, bool)]
    s = np.round(np.r_[rng.normal(0.3 * seed, 1, n_in), rng.normal(0, 1, n_out)], 1)
    assert M.auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, _ = M.roc_curve(s, y)
    sk_fpr, sk_tpr, _ = sk_roc_curve(y, s, drop_intermediate=False)
    assert np.allclose(fpr, sk_fpr) and np.allclose(tpr, sk_tpr)
    for f in (0.0, 0.01, 0.1, 0.5):
        assert M.tpr_at_fpr(s, y, f) == pytest.approx(sk_tpr[sk_fpr <= f + 1e-12].max())
    u_test = mannwhitneyu(s[y], s[~y], alternative="greater", method="asymptotic", use_continuity=True)
    assert M.auc_p_value(s, y) == pytest.approx(u_test.pvalue, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("levels", [1, 2, 3, 7])
def test_roc_thresholds_and_auc_agree_with_sklearn_when_nearly_every_score_is_tied(levels):
    """What the rounded-normal comparison above leaves out: the thresholds themselves, 0/1 integer labels,
    and scores with only a handful of distinct values (one value: the chance diagonal, AUC 0.5)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc_curve

    rng = np.random.default_rng(levels)
    y = rng.integers(0, 2, 400)
    y[:2] = [0, 1]  # both classes present
    s = rng.integers(0, levels, 400) + 0.5 * y * (levels > 1) * rng.random(400).round()
    fpr, tpr, thr = M.roc_curve(s, y)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(y, s, drop_intermediate=False)
    assert np.allclose(fpr, sk_fpr) and np.allclose(tpr, sk_tpr)
    assert thr[0] == sk_thr[0] == np.inf and np.array_equal(thr[1:], sk_thr[1:])
    assert M.auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    if levels == 1:
        assert M.auc(s, y) == 0.5 and np.array_equal(fpr, [0, 1]) and np.array_equal(tpr, [0, 1])
