"""HAMP (Chen & Pattabiraman, NDSS 2024): soft labels of the requested entropy, the loss it claims,
label-preserving remapping onto a fixed random reference, and lower black-box attack AUC end to end."""

import math

import pytest
import torch
import torch.nn.functional as F

from safecompress.config import load_config
from safecompress.defences import DEFENCES, unwrap
from safecompress.defences.hamp import HampModel, soft_label_entropy, soft_labels, true_class_probability
from safecompress.errors import ConfigError
from safecompress.train import TrainState


class _Ctx:
    class spec:
        n_classes = 5


class _Trainer:
    state = TrainState()


@pytest.mark.parametrize("n_classes", [2, 5, 100])
@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.95, 0.99])
def test_soft_labels_have_the_requested_entropy_and_the_true_class_on_top(n_classes, gamma):
    p = true_class_probability(gamma, n_classes)
    y = torch.arange(n_classes).repeat(2)
    target = soft_labels(y, n_classes, p, torch.float64)
    assert torch.allclose(target.sum(1), torch.ones(len(y), dtype=torch.float64))
    entropy = -(target * target.log()).sum(1)
    assert torch.allclose(entropy, torch.full_like(entropy, gamma * math.log(n_classes)), rtol=1e-9)
    assert soft_label_entropy(p, n_classes) == pytest.approx(gamma * math.log(n_classes), rel=1e-9)
    top = target.max(1)
    assert torch.equal(top.indices, y)  # the true class and only it carries the top probability
    others = target.masked_fill(F.one_hot(y, n_classes).bool(), -1.0).max(1).values
    assert bool((top.values > others).all())


def test_less_entropy_means_a_more_confident_target():
    ps = [true_class_probability(g, 10) for g in (0.99, 0.95, 0.9, 0.5)]
    assert ps == sorted(ps) and 0.1 < ps[0] and ps[-1] < 1


def test_total_loss_is_soft_label_cross_entropy_minus_alpha_times_entropy():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(7, 5, generator=g) * 3, torch.randint(0, 5, (7,), generator=g)
    gamma, alpha = 0.9, 0.05
    (cb,) = DEFENCES.get("hamp")(entropy_threshold=gamma, alpha=alpha).callbacks(_Ctx)
    total = F.cross_entropy(logits, y) + cb.extra_loss(_Trainer(), None, y, logits)  # what the trainer minimises
    # slow reference: per sample, per class, in plain Python floats
    p_true = true_class_probability(gamma, 5)
    ref = 0.0
    for row, label in zip(logits.tolist(), y.tolist()):
        z = [math.exp(v) for v in row]
        probs = [v / sum(z) for v in z]
        soft_ce = -sum((p_true if c == label else (1 - p_true) / 4) * math.log(probs[c]) for c in range(5))
        entropy = -sum(q * math.log(q) for q in probs)
        ref += (soft_ce - alpha * entropy) / len(y)
    assert float(total) == pytest.approx(ref, rel=1e-5)


def test_hamp_loss_gradient_vanishes_at_the_soft_target_when_alpha_is_zero():
    p = true_class_probability(0.95, 5)
    y = torch.tensor([0, 3])
    logits = soft_labels(y, 5, p).log().requires_grad_(True)
    (cb,) = DEFENCES.get("hamp")(alpha=0.0).callbacks(_Ctx)
    (F.cross_entropy(logits, y) + cb.extra_loss(_Trainer(), None, y, logits)).backward()
    assert float(logits.grad.abs().max()) < 1e-6


def test_bad_hamp_parameters_are_config_errors():
    for gamma in (0.0, 1.0, 1.5):
        with pytest.raises(ConfigError, match="entropy_threshold"):
            DEFENCES.get("hamp")(entropy_threshold=gamma)
    with pytest.raises(ConfigError, match="remap"):
        DEFENCES.get("hamp")(remap="yes")
    with pytest.raises(ConfigError, match="alpha"):
        load_config(overrides=["defence.name=hamp", "defence.params={alpha: -1}"])
    with pytest.raises(ConfigError, match="no parameter"):
        load_config(overrides=["defence.name=hamp", "defence.params={gamma: 0.9}"])
    assert load_config(overrides=["defence.name=hamp", "defence.params={remap: false}"]).defence.params == {
        "remap": False
    }


def _toy_model_and_data():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    g = torch.Generator().manual_seed(1)
    members = (torch.rand(40, 6, generator=g) * 4 - 2, torch.randint(0, 4, (40,), generator=g))
    queries = torch.randn(50, 6, generator=g)
    return model, members, queries


def test_remapping_keeps_labels_and_serves_one_reference_vector_for_every_query():
    model, members, queries = _toy_model_and_data()
    hamp = DEFENCES.get("hamp")()
    served = hamp.deploy(model, members, members, seed=0, device=torch.device("cpu"))
    assert isinstance(served, HampModel) and unwrap(served) is model  # white-box attacks see the network
    assert [n for n, _ in served.named_parameters()] == [f"inner.{n}" for n, _ in model.named_parameters()]
    with torch.no_grad():
        X = torch.cat([members[0], queries])
        raw, out = model.eval()(X), served.eval()(X)
        assert torch.equal(raw.argmax(1), out.argmax(1))  # accuracy unchanged
        probs = torch.softmax(out, 1)
        assert torch.allclose(probs.sum(1), torch.ones(len(X)))
        ranked = probs.sort(1, descending=True).values
        assert torch.allclose(ranked, ranked[:1].expand_as(ranked), atol=1e-6)  # identical for all queries
        assert torch.allclose(ranked[0], served.reference, atol=1e-6)
        # the class order is the model's own
        assert torch.equal(raw.argsort(1, descending=True), probs.argsort(1, descending=True))
    # ties in a query's logits keep argmax's choice (the lowest index)
    ident = HampModel(torch.nn.Identity(), served.reference)
    tied = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 3.0, 3.0, 0.0], [2.0, 0.0, 2.0, 2.0]])
    assert torch.equal(ident(tied).argmax(1), tied.argmax(1))
    # deterministic: the same seed rebuilds the same served model, another seed another reference
    again = DEFENCES.get("hamp")().deploy(model, members, members, seed=0, device=torch.device("cpu"))
    other = DEFENCES.get("hamp")().deploy(model, members, members, seed=1, device=torch.device("cpu"))
    assert torch.equal(again.reference, served.reference)
    assert not torch.equal(other.reference, served.reference)
    assert hamp.fit_report["reference_top_score"] == pytest.approx(float(served.reference[0]), abs=1e-4)


def test_remapping_is_off_with_remap_false():
    model, members, _ = _toy_model_and_data()
    assert DEFENCES.get("hamp")(remap=False).deploy(model, members, members, 0, torch.device("cpu")) is model


def test_hamp_run_lowers_black_box_attack_auc_at_no_accuracy_cost(tmp_path):
    """ci preset, RigL, 20 epochs: the undefended model overfits (train accuracy ≫ test accuracy)."""
    from safecompress.runner import run_experiment

    reps = {}
    for name in ("none", "hamp"):
        cfg = load_config(
            preset="ci",
            overrides=[
                "method.name=rigl",
                "train.epochs=20",
                f"defence.name={name}",
                "audit.attacks=[loss, confidence]",
            ],
        )
        reps[name] = run_experiment(cfg, tmp_path / name).report
    plain, hamp = reps["none"], reps["hamp"]
    assert plain["task"]["train_accuracy"] - plain["task"]["accuracy"] > 0.3  # it overfits
    assert hamp["task"]["accuracy"] >= plain["task"]["accuracy"] - 0.05
    assert hamp["defence"]["name"] == "hamp" and hamp["compression"]["density"] == pytest.approx(
        plain["compression"]["density"], abs=1e-3
    )
    for attack in ("loss", "confidence"):
        assert hamp["audit"]["attacks"][attack]["auc"] < plain["audit"]["attacks"][attack]["auc"] - 0.1, attack
