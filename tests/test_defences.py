"""Defences: each loss term has the exact form it claims, and each combines with a compression method."""

import json

import pytest
import torch
import torch.nn.functional as F

from runargs import ci_args
from safecompress.cli import main
from safecompress.config import load_config
from safecompress.defences import DEFENCES
from safecompress.errors import ConfigError
from safecompress.train import TrainState

FAST = ci_args({"method.name": "dense", "train.epochs": 6})


class _Ctx:
    class spec:
        n_classes = 5


class _Trainer:
    def __init__(self, epoch=0):
        self.state = TrainState(epoch=epoch)


def _extra(name, params, logits, y, epoch=0):
    cb = DEFENCES.get(name)(**params).callbacks(_Ctx)[0]
    return cb.extra_loss(_Trainer(epoch), None, y, logits)


def test_label_smoothing_equals_cross_entropy_with_smoothed_targets():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(8, 5, generator=g), torch.randint(0, 5, (8,), generator=g)
    total = F.cross_entropy(logits, y) + _extra("label_smoothing", {"epsilon": 0.2}, logits, y)
    assert float(total) == pytest.approx(float(F.cross_entropy(logits, y, label_smoothing=0.2)), rel=1e-6)


def test_confidence_penalty_subtracts_beta_times_entropy():
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0, 0.0]])
    p = torch.softmax(logits, 1)
    entropy = float(-(p * p.log()).sum())
    assert float(_extra("confidence_penalty", {"beta": 0.5}, logits, torch.tensor([0]))) == pytest.approx(
        -0.5 * entropy
    )


def test_relaxloss_descends_above_alpha_ascends_or_flattens_below():
    logits = torch.tensor([[4.0, 0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 1])
    ce = F.cross_entropy(logits, y)
    assert _extra("relaxloss", {"alpha": 0.01}, logits, y) is None  # loss above α: plain descent
    ascent = ce + _extra("relaxloss", {"alpha": 5.0}, logits, y, epoch=0)
    assert ascent.item() == pytest.approx(-ce.item(), rel=1e-6)  # even epoch: gradient ascent
    flat = ce + _extra("relaxloss", {"alpha": 5.0}, logits, y, epoch=1)
    flat.backward()
    # odd epoch: both samples are correct, so the target keeps p_true and spreads the rest uniformly;
    # at that target the gradient w.r.t. the logits vanishes
    assert float(logits.grad.abs().max()) < 1e-6


def test_bad_defence_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="epsilon"):
        load_config(overrides=["defence.name=label_smoothing", "defence.params={epsilon: 2}"])
    with pytest.raises(ConfigError, match="no parameter"):
        load_config(overrides=["defence.name=relaxloss", "defence.params={alfa: 1}"])
    with pytest.raises(ConfigError, match="number"):
        load_config(overrides=["defence.name=confidence_penalty", "defence.params={beta: lots}"])


def test_early_stopping_stops_and_keeps_the_best_epoch(tmp_path):
    out = tmp_path / "es"
    assert (
        main(
            [
                "run",
                *FAST,
                "--set",
                "train.epochs=60",
                "--set",
                "train.lr=0.05",
                "--set",
                "defence.name=early_stopping",
                "--set",
                "defence.params={patience: 2}",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rep = json.loads((out / "report.json").read_text())
    assert rep["method_details"]["epochs"] < 60
    assert rep["defence"]["name"] == "early_stopping" and rep["defence"]["params"]["patience"] == 2


@pytest.mark.parametrize("defence", ["label_smoothing", "confidence_penalty", "relaxloss", "advreg"])
def test_defences_combine_with_a_sparse_method(tmp_path, defence):
    out = tmp_path / defence
    assert (
        main(
            [
                "run",
                *FAST,
                "--set",
                "method.name=rigl",
                "--set",
                "sparse.density=0.2",
                "--set",
                f"defence.name={defence}",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rep = json.loads((out / "report.json").read_text())
    assert rep["compression"]["density"] == pytest.approx(0.2, abs=1e-3) and rep["defence"]["name"] == defence


def test_label_smoothing_lowers_training_confidence(tmp_path):
    from safecompress.checkpoint import load_model
    from safecompress.data import DataContext, load_dataset

    conf = {}
    for name in ("none", "label_smoothing"):
        out = tmp_path / name
        assert (
            main(
                [
                    "run",
                    *FAST,
                    "--set",
                    "train.epochs=15",
                    "--set",
                    f"defence.name={name}",
                    "--set",
                    "defence.params={}" if name == "none" else "defence.params={epsilon: 0.3}",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        model = load_model(out / "model.safetensors").eval()
        ds = load_dataset("digits", DataContext())
        with torch.no_grad():
            conf[name] = float(torch.softmax(model(torch.from_numpy(ds.X[:500])), 1).max(1).values.mean())
    assert conf["label_smoothing"] < conf["none"] - 0.05


def test_early_stopping_with_a_sparse_method_saves_the_model_it_reports(tmp_path):
    from safecompress.checkpoint import load_model
    from safecompress.data import DataContext, load_dataset
    from safecompress.data.split import MembershipSplit
    from safecompress.train import evaluate

    out = tmp_path / "es"
    assert (
        main(
            [
                "run",
                *FAST,
                "--set",
                "train.epochs=40",
                "--set",
                "train.lr=0.05",
                "--set",
                "method.name=rigl",
                "--set",
                "sparse.density=0.2",
                "--set",
                "sparse.update_every=5",
                "--set",
                "defence.name=early_stopping",
                "--set",
                "defence.params={patience: 2}",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rep = json.loads((out / "report.json").read_text())
    assert rep["method_details"]["epochs"] < 40
    assert rep["compression"]["density"] == pytest.approx(0.2, abs=1e-3)
    ds = load_dataset("digits", DataContext())
    split = MembershipSplit.load(out / "split.npz", n_total=len(ds))
    idx = torch.as_tensor(split["test"])
    model = load_model(out / "model.safetensors")
    acc = evaluate(model, torch.from_numpy(ds.X)[idx], torch.from_numpy(ds.y)[idx], torch.device("cpu"))["accuracy"]
    assert acc == pytest.approx(rep["task"]["accuracy"], abs=1e-6)  # the file is the reported model


def test_dp_sgd_gradient_is_the_mean_of_clipped_masked_per_sample_gradients():
    from safecompress.defences.dp_sgd import _DPSGD
    from safecompress.train import Trainer

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    X, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    mask = torch.rand(4, 6) < 0.5

    class _Engine:  # stands in for the sparse engine: only its masks matter here
        masks = {"0.weight": mask}

    from safecompress.config import TrainConfig

    report = {}
    dp = _DPSGD(sigma=0.0, clip=0.5, delta=1e-5, n_train=80, seed=0, report=report)
    trainer = Trainer(model, TrainConfig(batch_size=8), seed=0, device=torch.device("cpu"), callbacks=[dp])
    trainer.callbacks.insert(0, _Engine())
    import safecompress.defences.dp_sgd as dpmod

    orig = dpmod._engine_masks
    dpmod._engine_masks = lambda tr: _Engine.masks
    try:
        dp.on_fit_start(trainer)
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        dp.before_step(trainer)
    finally:
        dpmod._engine_masks = orig
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    # the same by a per-sample loop
    ref = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(8):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(X[i : i + 1]), y[i : i + 1]).backward()
        g = {n: p.grad.clone() for n, p in model.named_parameters()}
        g["0.weight"] = g["0.weight"] * mask
        norm = torch.sqrt(sum(v.pow(2).sum() for v in g.values()))
        for n in ref:
            ref[n] += g[n] * min(1.0, 0.5 / (float(norm) + 1e-6)) / 8
    for n in ref:
        assert torch.allclose(got[n], ref[n], atol=1e-6), n
    assert bool((got["0.weight"][~mask] == 0).all())


def test_dp_sgd_with_a_sparse_method_reports_epsilon(tmp_path):
    eps = {}
    for sigma in (0.7, 2.0):
        out = tmp_path / f"dp{sigma}"
        assert (
            main(
                [
                    "run",
                    *FAST,
                    "--set",
                    "train.epochs=2",
                    "--set",
                    "method.name=rigl",
                    "--set",
                    "sparse.density=0.2",
                    "--set",
                    "defence.name=dp_sgd",
                    "--set",
                    f"defence.params={{noise_multiplier: {sigma}}}",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        rep = json.loads((out / "report.json").read_text())
        assert rep["compression"]["density"] == pytest.approx(0.2, abs=1e-3)  # masks hold under clipping + noise
        eps[sigma] = rep["defence"]["epsilon"]
        assert rep["defence"]["delta"] == 1e-5 and rep["defence"]["steps"] > 0
    assert 0 < eps[2.0] < eps[0.7]  # more noise, less privacy spent


def test_dp_sgd_refuses_batchnorm_with_a_fix(tmp_path, capsys):
    args = [
        "--preset",
        "ci",
        "--set",
        "data.name=digits",
        "--set",
        "model.name=cnn",
        "--set",
        "train.epochs=1",
        "--set",
        "audit.enabled=false",
        "--set",
        "defence.name=dp_sgd",
    ]
    assert main(["run", *args, "--out", str(tmp_path / "bn")]) == 2
    assert "model.norm=group" in capsys.readouterr().err
    assert main(["run", *args, "--set", "model.norm=group", "--out", str(tmp_path / "gn")]) == 0


def _trained_dense(tmp_path):
    """A small over-fitted dense model on digits with its data parts."""
    from safecompress.checkpoint import load_model
    from safecompress.data import DataContext, load_dataset
    from safecompress.data.split import MembershipSplit

    out = tmp_path / "dense"
    assert main(["run", *FAST, "--set", "train.epochs=15", "--out", str(out)]) == 0
    ds = load_dataset("digits", DataContext())
    split = MembershipSplit.load(out / "split.npz", n_total=len(ds))
    X, y = torch.from_numpy(ds.X), torch.from_numpy(ds.y)
    part = {p: (X[torch.as_tensor(split[p])], y[torch.as_tensor(split[p])]) for p in ("train", "val", "test")}
    return load_model(out / "model.safetensors", "cpu"), part


def test_memguard_keeps_labels_stays_in_budget_and_confuses_its_attack_model(tmp_path):
    from safecompress.defences import unwrap
    from safecompress.defences.memguard import _features

    model, part = _trained_dense(tmp_path)
    guard = DEFENCES.get("memguard")(budget=0.4)
    served = guard.deploy(model, part["train"], part["val"], seed=0, device=torch.device("cpu"))
    assert unwrap(served) is model
    assert [n for n, _ in served.named_parameters()] == [f"inner.{n}" for n, _ in model.named_parameters()]
    with torch.no_grad():
        for X, _ in (part["train"], part["test"]):
            raw, out = model.eval()(X), served.eval()(X)
            assert torch.equal(raw.argmax(1), out.argmax(1))  # accuracy is untouched
            l1 = (torch.softmax(out, 1) - torch.softmax(raw, 1)).abs().sum(1)
            assert float(l1.max()) <= 0.4 + 1e-4
            assert float(l1.mean()) > 1e-3  # it does perturb
            g_raw = served.attack(_features(raw)).squeeze(1)
            g_out = served.attack(_features(out)).squeeze(1)
            assert float(g_out.abs().mean()) < 0.5 * float(g_raw.abs().mean())  # pushed towards "unsure"


def test_memguard_run_reports_the_same_accuracy_and_leaves_white_box_attacks_alone(tmp_path):
    common = ["--preset", "ci", "--set", "method.name=rigl", "--set", "audit.attacks=[nn, grad_norm, label_only]"]
    reps = {}
    for name in ("none", "memguard"):
        assert main(["run", *common, "--set", f"defence.name={name}", "--out", str(tmp_path / name)]) == 0
        reps[name] = json.loads((tmp_path / name / "report.json").read_text())
    plain, guarded = reps["none"], reps["memguard"]
    assert guarded["task"]["accuracy"] == plain["task"]["accuracy"]
    assert guarded["defence"]["defender_samples"] > 0
    for attack in ("grad_norm", "label_only"):  # the weights and the labels are what they were
        assert guarded["audit"]["attacks"][attack]["auc"] == pytest.approx(plain["audit"]["attacks"][attack]["auc"])
    assert guarded["audit"]["attacks"]["nn"]["auc"] != plain["audit"]["attacks"]["nn"]["auc"]
    # a re-audit rebuilds the same served model
    assert main(["audit", str(tmp_path / "memguard"), "--attacks", "nn"]) == 0
    again = json.loads((tmp_path / "memguard" / "report.json").read_text())
    assert again["audit"]["attacks"]["nn"]["auc"] == pytest.approx(guarded["audit"]["attacks"]["nn"]["auc"])


def test_memguard_budget_must_be_an_l1_distance():
    with pytest.raises(ConfigError, match="budget"):
        DEFENCES.get("memguard")(budget=3.0)
