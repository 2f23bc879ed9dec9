"""Frontiers of method families: Pareto fronts, hypervolume against slow references, matched leakage."""

import itertools

import numpy as np
import pytest

from safecompress.frontier import family, hypervolume, least_leakage_at, pareto_front


def test_family_names():
    assert family("rigl+relaxloss(a=0.5)") == "rigl+relaxloss"
    assert family("safecompress-steer(b=0.6)") == "safecompress" == family("safecompress")
    assert family("rigl_select-steer(b=0.6)") == "rigl_select" and family("rigl") == "rigl"


def test_pareto_front_drops_dominated_points():
    pts = [(0.6, 0.7), (0.65, 0.75), (0.55, 0.72), (0.65, 0.8), (0.5, 0.6)]
    assert pareto_front(pts) == [(0.5, 0.6), (0.6, 0.7), (0.65, 0.75)]


def _slow_hypervolume(points, acc_ref, auc_ref, grid=400):
    """Monte-Carlo-free grid count of the dominated area (midpoint rule)."""
    accs = np.linspace(acc_ref, 1.0, grid, endpoint=False) + (1.0 - acc_ref) / grid / 2
    aucs = np.linspace(0.5, auc_ref, grid, endpoint=False) + (auc_ref - 0.5) / grid / 2
    A, L = np.meshgrid(accs, aucs)
    covered = np.zeros_like(A, bool)
    for a, leak in points:
        covered |= (A <= a) & (L >= leak)
    return covered.mean() * (1.0 - acc_ref) * (auc_ref - 0.5)


def test_hypervolume_matches_a_grid_count():
    rng = np.random.default_rng(0)
    for _ in range(5):
        pts = [(float(a), float(leak)) for a, leak in zip(rng.uniform(0.4, 0.8, 6), rng.uniform(0.5, 0.95, 6))]
        assert hypervolume(pts, 0.4, 1.0) == pytest.approx(_slow_hypervolume(pts, 0.4, 1.0), abs=2e-3)


def test_hypervolume_rewards_a_better_front_and_ignores_points_outside_the_box():
    base = [(0.6, 0.8)]
    assert hypervolume(base + [(0.6, 0.6)], 0.5, 1.0) > hypervolume(base, 0.5, 1.0)
    assert hypervolume([(0.45, 0.55)], 0.5, 1.0) == 0.0  # less accurate than the box allows
    assert hypervolume(base + [(0.3, 0.5)], 0.5, 1.0) == hypervolume(base, 0.5, 1.0)
    # the order of points never matters
    pts = [(0.55, 0.6), (0.62, 0.7), (0.7, 0.9)]
    assert len({round(hypervolume(list(p), 0.5, 1.0), 12) for p in itertools.permutations(pts)}) == 1


def test_least_leakage_at_an_accuracy_never_credits_an_unmeasured_point():
    pts = [(0.6, 0.62), (0.64, 0.7), (0.66, 0.75)]
    assert least_leakage_at(pts, 0.63) == 0.7
    assert least_leakage_at(pts, 0.60) == 0.62
    assert least_leakage_at(pts, 0.67) is None
