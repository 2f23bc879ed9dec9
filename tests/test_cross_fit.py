"""Cross-fitted in-loop tests: every simulator is fitted on each probe half and tested on the other."""

import json

import numpy as np
import pytest
import torch

from runargs import ci_args
from safecompress.cli import main
from safecompress.methods.safecompress.candidates import CandidateData, assess
from safecompress.methods.safecompress.simulate import ProbeData, Simulator


class _Stub:
    """A fitted simulator whose metrics are a function of the half it is tested on."""

    def __init__(self, name, per_half, tpr=True):
        self.name, self.per_half, self.tpr = name, per_half, tpr
        self.tested_on = []

    def view(self, model, served, device):
        return model

    def measure(self, view, data):
        self.tested_on.append(data)
        auc, adv, tpr = self.per_half[id(data)]
        return auc, adv, tpr if self.tpr else None


def _half(n, seed):
    g = torch.Generator().manual_seed(seed)
    return ProbeData(torch.randn(n, 4, generator=g), torch.zeros(n, dtype=torch.long), np.arange(n) % 2 == 0)


def test_assess_averages_each_simulator_with_its_twin_on_the_other_half():
    fit, test = _half(8, 0), _half(8, 1)
    model = torch.nn.Linear(4, 2)
    val = (torch.randn(6, 4), torch.zeros(6, dtype=torch.long))
    data = CandidateData(val, test, val, fit_probe=fit)
    sim = _Stub("a", {id(test): (0.60, 0.20, 0.10)})
    twin = _Stub("a", {id(fit): (0.70, 0.30, 0.30)})
    no_scores = _Stub("b", {id(test): (0.55, 0.10, None)}, tpr=False)
    no_scores_twin = _Stub("b", {id(fit): (0.65, 0.20, None)}, tpr=False)

    cand = assess(model, data, [sim, no_scores], "cpu", swapped=[twin, no_scores_twin])

    assert sim.tested_on == [test] and twin.tested_on == [fit]  # each is tested only on the half it never saw
    assert cand.aucs == {"a": pytest.approx(0.65), "b": pytest.approx(0.60)}
    assert cand.advantages == {"a": pytest.approx(0.25), "b": pytest.approx(0.15)}
    assert cand.tprs == {"a": pytest.approx(0.20), "b": None}  # a family without membership scores has no TPR
    # without twins, the test half alone decides, as before cross-fitting
    single = assess(model, data, [_Stub("a", {id(test): (0.60, 0.20, 0.10)})], "cpu")
    assert single.aucs == {"a": 0.60} and single.tprs == {"a": 0.10}


def test_cross_fit_fits_twins_on_the_test_half_and_logs_mean_leakage(tmp_path, monkeypatch):
    fits = []
    original = Simulator.fit

    def recording_fit(self, view, data, round_seed=0, device=None):
        fits.append((id(self), self.seed, data.X.clone(), np.asarray(data.is_member).copy()))
        return original(self, view, data, round_seed=round_seed, device=device)

    monkeypatch.setattr(Simulator, "fit", recording_fit)
    out = tmp_path / "xfit"
    settings = {
        "train.lr": 0.005,
        "data.split.train": 0.5,
        "data.split.population": 0.05,
        "train.epochs": 3,
        "sparse.update_every": 10,
        "method.name": "safecompress",
        "sparse.density": 0.2,
        "safecompress.simulate": "[calibrated]",
        "safecompress.cross_fit": "true",
        "safecompress.objective": "budget",
        "safecompress.budget": 0.6,
        "safecompress.final": "last",
    }
    assert main(["run", *ci_args(settings), "--out", str(out)]) == 0
    rounds = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert rounds
    # two simulator objects (the simulator and its twin, with different seeds), each fitted once per round
    sims = sorted({(i, s) for i, s, _, _ in fits})
    assert len(sims) == 2 and sims[0][1] != sims[1][1]
    per_sim = {i: [(x, m) for j, _, x, m in fits if j == i] for i, _ in sims}
    assert all(len(v) == len(rounds) for v in per_sim.values())
    (xa, ma), (xb, mb) = (per_sim[i][0] for i, _ in sims)
    # the two halves: as large as each other (to one record per side), and no record in both
    assert abs(int(ma.sum()) - int(mb.sum())) <= 1 and abs(int((~ma).sum()) - int((~mb).sum())) <= 1
    rows_a = {tuple(r) for r in xa.reshape(len(xa), -1).tolist()}
    assert not rows_a & {tuple(r) for r in xb.reshape(len(xb), -1).tolist()}
    for r in rounds:
        for c in r["candidates"]:
            assert 0 <= c["attack_auc"]["calibrated"] <= 1 and 0 <= c["attack_tpr"]["calibrated"] <= 1


def test_cross_fit_removes_the_luck_of_the_halving():
    """On a model with a weak per-record member signal, one half's AUC depends on which records the split put
    in the test half; the cross-fitted AUC reads every probe record, so its spread over splits of the same
    probe data is far smaller (the point of the option: a less noisy test from the same probe data)."""
    from safecompress.attacks import ATTACKS  # noqa: F401  (the calibrated simulator is registered there)

    rng = np.random.default_rng(0)
    n = 400
    X = torch.as_tensor(rng.normal(size=(n, 6)), dtype=torch.float32)
    y = torch.as_tensor(rng.integers(0, 3, n))
    member = np.arange(n) < n // 2
    # a model that is, on average, a bit more confident on members: a noisy boost of the true class's logit
    boost = torch.zeros(n, 3)
    signal = np.where(member, 0.3, 0.0) + rng.normal(size=n)
    boost[torch.arange(n), y] = torch.as_tensor(signal, dtype=torch.float32)
    lookup = {tuple(row.tolist()): b for row, b in zip(X, boost)}

    class Memorised(torch.nn.Module):
        def forward(self, x):
            return torch.stack([lookup[tuple(row.tolist())] for row in x])

    model = Memorised()
    single, crossed = [], []
    for split_seed in range(12):
        perm = np.random.default_rng(split_seed).permutation(n)
        a, b = perm[: n // 2], perm[n // 2 :]
        halves = [ProbeData(X[h], y[h], member[h]) for h in (a, b)]
        sims = [Simulator("calibrated", 3, "tabular", seed=s) for s in (0, 1)]
        for sim, half in zip(sims, halves):
            sim.fit(sim.view(model, model, "cpu"), half)
        data = CandidateData((X[:10], y[:10]), halves[1], (X[:10], y[:10]), fit_probe=halves[0])
        single.append(assess(model, data, sims[:1], "cpu").aucs["calibrated"])
        crossed.append(assess(model, data, sims[:1], "cpu", swapped=sims[1:]).aucs["calibrated"])
    assert 0.55 < np.mean(crossed) < 0.75  # a real, weak leak
    assert np.std(crossed) < 0.85 * np.std(single)
