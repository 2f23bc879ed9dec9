import pytest

from safecompress.methods.safecompress.objectives import Candidate, budget_leakage, leakage, pareto_front, select

A = Candidate(0.80, {"nn": 0.70, "loss": 0.60}, {"nn": 0.30, "loss": 0.15})
B = Candidate(0.79, {"nn": 0.55, "loss": 0.52}, {"nn": 0.08, "loss": 0.04})
C = Candidate(0.70, {"nn": 0.51, "loss": 0.50}, {"nn": 0.02, "loss": 0.00})
D = Candidate(0.78, {"nn": 0.60, "loss": 0.56}, {"nn": 0.12, "loss": 0.10})  # dominated by B


def test_golden_weighted_and_advantage():
    idx, scores = select([A, B, C], "weighted", lam=1.0)
    assert scores == pytest.approx([0.80 - 0.20, 0.79 - 0.05, 0.70 - 0.01])
    assert idx == 1
    idx, scores = select([A, B, C], "advantage", lam=0.5)
    assert scores == pytest.approx([0.80 - 0.15, 0.79 - 0.04, 0.70 - 0.01])
    assert idx == 1
    # with no privacy weight, the most accurate wins
    assert select([A, B, C], "weighted", lam=0.0)[0] == 0


def test_combination_worst_vs_mean():
    assert leakage(A, "worst") == (0.70, 0.30)
    assert leakage(A, "mean") == pytest.approx((0.65, 0.225))
    assert leakage(Candidate(0.5, {}, {})) == (0.5, 0.0)


def test_epsilon_constraint():
    idx, scores = select([A, B, C], "epsilon", delta=0.015)
    assert scores[2] == float("-inf") and idx == 1  # C is too inaccurate; B leaks less than A
    assert select([A, B, C], "epsilon", delta=0.2)[0] == 2


def test_pareto_front_and_tie_break():
    assert pareto_front([A, B, C, D]) == [0, 1, 2]
    idx, scores = select([A, B, C, D], "pareto", lam=1.0)
    assert scores[3] == float("-inf") and idx == 1


def test_ties_go_to_first_and_empty_rejected():
    assert select([B, B], "weighted")[0] == 0
    with pytest.raises(ValueError):
        select([], "weighted")


def test_budget_picks_the_most_accurate_within_budget_else_the_least_leaky():
    within_low = Candidate(0.60, {"nn": 0.55}, {"nn": 0.1})
    within_high = Candidate(0.66, {"nn": 0.59}, {"nn": 0.2})
    over = Candidate(0.70, {"nn": 0.70}, {"nn": 0.4})
    assert select([within_low, within_high, over], "budget", budget=0.6)[0] == 1
    worse_over = Candidate(0.71, {"nn": 0.72}, {"nn": 0.4})
    assert select([worse_over, over], "budget", budget=0.6)[0] == 1  # none within: least leaky
    idx, scores = select([over, within_low], "budget", budget=0.6)
    assert idx == 1 and scores[0] < 0 <= scores[1]


def test_budget_in_tpr_units_bounds_the_low_fpr_signal():
    # AUCs alike, TPRs at low FPR far apart: the TPR budget tells them apart, the AUC budget does not
    quiet = Candidate(0.60, {"calibrated": 0.56}, {"calibrated": 0.1}, {"calibrated": 0.02})
    loud = Candidate(0.65, {"calibrated": 0.56}, {"calibrated": 0.1}, {"calibrated": 0.09})
    assert select([quiet, loud], "budget", budget=0.6)[0] == 1
    assert select([quiet, loud], "budget", budget=0.05, metric="tpr")[0] == 0
    assert select([quiet, loud], "budget", budget=0.10, metric="tpr")[0] == 1
    # a family without membership scores (TPR None) does not count; none left → 0 leakage
    other = Candidate(0.7, {"inversion": 0.9}, {"inversion": 0.5}, {"inversion": None})
    assert budget_leakage(other, "tpr") == 0.0 and budget_leakage(other, "auc") == 0.9
