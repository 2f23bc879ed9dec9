"""The audit's memory of answers (attacks/memo.py): the same numbers as computing every query, in fewer
forward passes (issue 18: a cheaper audit)."""

import gc

import numpy as np
import pytest
import torch

import safecompress.auditor as auditor
from safecompress.attacks.memo import LogitsMemo
from safecompress.auditor import audit_model
from safecompress.config import TrainConfig
from safecompress.models import ModelSpec, build_model
from safecompress.train import Trainer, predict_logits

D, K = 24, 4
CPU = torch.device("cpu")


def _model(seed: int = 0):
    return build_model(ModelSpec("mlp", (D,), K, width=0.25), seed).eval()


def _counting(model):
    calls = []

    def compute(X):
        calls.append(len(X))
        return predict_logits(model, X, CPU)

    return compute, calls


def test_a_tensor_is_answered_once_and_equal_to_computing_it():
    model, memo = _model(), LogitsMemo()
    compute, calls = _counting(model)
    X = torch.randn(30, D)
    first, second = memo.logits(model, X, compute), memo.logits(model, X, compute)
    assert calls == [30]
    assert torch.equal(first, second) and torch.equal(first, predict_logits(model, X, CPU))


def test_the_memory_is_per_model_and_per_tensor_not_per_value():
    a, b, memo = _model(0), _model(1), LogitsMemo()
    X = torch.randn(10, D)
    ca, calls_a = _counting(a)
    cb, calls_b = _counting(b)
    memo.logits(a, X, ca)
    memo.logits(b, X, cb)
    memo.logits(a, X.clone(), ca)  # equal values, another tensor: computed
    assert calls_a == [10, 10] and calls_b == [10]


def test_an_in_place_change_of_the_records_or_the_model_is_recomputed():
    model, memo = _model(), LogitsMemo()
    compute, calls = _counting(model)
    X = torch.randn(8, D)
    memo.logits(model, X, compute)
    X[0, 0] += 1.0
    after_x = memo.logits(model, X, compute)
    assert torch.equal(after_x, predict_logits(model, X, CPU))
    with torch.no_grad():
        next(model.parameters()).mul_(2.0)
    after_w = memo.logits(model, X, compute)
    assert torch.equal(after_w, predict_logits(model, X, CPU))
    assert calls == [8, 8, 8]


def test_a_caller_changing_its_answer_does_not_change_the_memory():
    model, memo = _model(), LogitsMemo()
    compute, _ = _counting(model)
    X = torch.randn(5, D)
    memo.logits(model, X, compute).zero_()
    assert torch.equal(memo.logits(model, X, compute), predict_logits(model, X, CPU))


def test_an_entry_goes_with_its_tensor():
    model, memo = _model(), LogitsMemo()
    compute, _ = _counting(model)
    X = torch.randn(5, D)
    memo.logits(model, X, compute)
    table = memo._tables[id(model)][1]
    assert len(table) == 1
    del X
    gc.collect()
    assert len(table) == 0


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g), torch.randint(0, K, (n,), generator=g)


def train_fn(X, y, seed):
    model = build_model(ModelSpec("mlp", (D,), K, width=0.25), seed)
    cfg = TrainConfig(epochs=8, batch_size=64, optimizer="adam", lr=5e-3, weight_decay=0.0, schedule="constant")
    Trainer(model, cfg, seed=seed, device=CPU).fit(X, y)
    return model.eval(), None


class NoMemo:
    """What the audit did before its memory: every query computed (a Knowledge without a memo)."""

    def __new__(cls):
        return None


ATTACKS = ["loss", "confidence", "entropy", "m_entropy", "nn", "lira", "rmia", "grad_norm", "calibrated", "label_only"]


def _audit(monkeypatch, memo: bool):
    members, nonmembers, population = _data(120, 1), _data(120, 2), _data(400, 3)
    canaries = (*_data(40, 4), np.arange(40) % 2 == 0)
    target, _ = train_fn(*members, seed=0)
    rows = []
    target.register_forward_pre_hook(lambda m, inp: rows.append(len(inp[0])))
    with monkeypatch.context() as m:
        if not memo:
            m.setattr(auditor, "LogitsMemo", NoMemo)
        result = audit_model(
            target,
            members,
            nonmembers,
            population,
            attacks=ATTACKS,
            n_classes=K,
            train_fn=train_fn,
            refs=2,
            seed=0,
            n_bootstrap=50,
            canaries=canaries,
        )
    return result, sum(rows)


def _without_times(report):
    if isinstance(report, dict):
        return {k: _without_times(v) for k, v in report.items() if k not in ("wall_s", "timing")}
    return report


@pytest.fixture(scope="module")
def audits():
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _audit(monkeypatch, memo=True), _audit(monkeypatch, memo=False)


def test_the_audit_with_its_memory_gives_the_numbers_of_computing_every_query(audits):
    (new, _), (old, _) = audits
    assert set(new.scores) == set(old.scores) == {a for a in ATTACKS}
    for name in new.scores:
        assert np.array_equal(new.scores[name], old.scores[name]), name
        assert np.array_equal(new.canary_scores[name], old.canary_scores[name]), name
    assert _without_times(new.report) == _without_times(old.report)


def test_the_audit_with_its_memory_queries_the_target_on_fewer_rows(audits):
    (_, rows_new), (_, rows_old) = audits
    queries = 120 + 120 + 40
    # loss, confidence, entropy, m_entropy, nn, lira, rmia and calibrated ask the target the same queries; the
    # memo answers all but the first (grad_norm and label_only ask other things)
    assert rows_old - rows_new >= 7 * queries
