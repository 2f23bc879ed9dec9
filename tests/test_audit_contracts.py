"""Evaluation contracts, guarded by tests: references are trained on exactly the rows they are labelled
IN for, training happens in training mode and queries in eval mode, the loop never reads a test/audit/
population row, and LiRA computes what the paper's test computes."""

import json

import numpy as np
import pytest
import torch

from safecompress.attacks.lira import lira_scores
from safecompress.attacks.references import ReferencePool
from safecompress.cli import main
from safecompress.config import load_config
from safecompress.data import load_dataset
from safecompress.data.split import make_split
from safecompress.methods import METHODS
from safecompress.models import ModelSpec
from safecompress.run_audit import reference_trainer
from safecompress.runsetup import data_context
from safecompress.train import Trainer

TINY = [
    "data.name=digits",
    "model.name=mlp",
    "train.augment=false",
    "train.epochs=1",
    "sparse.update_every=5",
    "audit.enabled=false",
    "sparse.density=0.3",
]

RECIPES = {  # name: (method, defence)
    "rigl": ("rigl", "none"),
    "safecompress": ("safecompress", "none"),
    "early_stopping": ("rigl", "early_stopping"),
    "advreg": ("rigl", "advreg"),
    "dmp": ("dmp", "none"),
}


def _row_keys(X: torch.Tensor) -> list[bytes]:
    return [r.numpy().tobytes() for r in X.reshape(len(X), -1)]


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_reference_trains_on_exactly_its_in_rows(recipe, monkeypatch, tmp_path):
    method, defence = RECIPES[recipe]
    cfg = load_config(preset="ci", overrides=[*TINY, f"method.name={method}", f"defence.name={defence}"])
    ds = load_dataset(cfg.data.name, data_context(cfg))
    split = make_split(len(ds), cfg.data.split, cfg.seed, cfg.data.max_samples)
    spec = ModelSpec("mlp", ds.input_shape, ds.n_classes, cfg.model.width, cfg.model.norm)
    seen = []
    cls = METHODS.get(method)
    original = cls.train

    def spy(self, ctx):
        seen.append({p: ctx.X[torch.as_tensor(np.asarray(ix))] for p, ix in ctx.split.items()})
        return original(self, ctx)

    monkeypatch.setattr(cls, "train", spy)
    pop = torch.as_tensor(split["population"])
    X, y = torch.from_numpy(ds.X), torch.from_numpy(ds.y)
    train_fn = reference_trainer(cfg, spec, torch.device("cpu"), False, False, tmp_path, split.sizes())
    pool = ReferencePool(train_fn, X[pop], y[pop], 2, seed=0, device=torch.device("cpu"))
    pool.ensure(2)
    assert len(seen) == 2
    for k, parts in enumerate(seen):
        in_rows = set(_row_keys(pool.X[torch.from_numpy(np.flatnonzero(pool.in_masks[k]))]))
        out_rows = set(_row_keys(pool.X[torch.from_numpy(np.flatnonzero(~pool.in_masks[k]))]))
        trained = set(_row_keys(parts["train"]))
        assert trained == in_rows, f"{recipe}: reference {k} trained on rows other than its IN half"
        for name, rows in parts.items():
            keys = set(_row_keys(rows))
            if name in ("train", "probe_members"):
                assert keys <= in_rows
            else:  # val / probe non-members: held out from this reference, so OUT for it
                assert keys <= out_rows and not keys & in_rows, f"{recipe}: {name} holds IN rows of reference {k}"
        sizes = split.sizes()
        for name in set(parts) & {"val", "probe_nonmembers"}:  # the target's proportions to its training set
            assert len(parts[name]) / len(parts["train"]) == pytest.approx(sizes[name] / sizes["train"], abs=0.02)


METHOD_NAMES = [
    "dense",
    "static",
    "set",
    "rigl",
    "rigl_select",
    "mest",
    "gmp",
    "oneshot",
    "distill",
    "dmp",
    "defend_then_compress",
    "safecompress",
]


def test_every_method_is_covered_here():
    assert set(METHOD_NAMES) == {name for name, _ in METHODS.items()}


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_optimizer_step_runs_in_training_mode(method, monkeypatch, tmp_path):
    modes = []
    original = Trainer.train_step

    def spy(self, xb, yb):
        modes.append(all(m.training for m in self.model.modules()))
        return original(self, xb, yb)

    monkeypatch.setattr(Trainer, "train_step", spy)
    extra = {
        "safecompress": ["--set", "safecompress.simulate=[nn,whitebox,grad_norm]"],
        "defend_then_compress": ["--set", "defence.name=relaxloss"],
    }.get(method, [])
    args = [
        "run",
        "--preset",
        "ci",
        *sum((["--set", t] for t in TINY), []),
        "--set",
        "train.epochs=2",
        "--set",
        "model.norm=batch",
        "--set",
        f"method.name={method}",
        *extra,
        "--out",
        str(tmp_path / method),
    ]
    assert main(args) == 0
    assert modes and all(modes), f"{method}: {modes.count(False)} of {len(modes)} steps ran in eval mode"


def test_queries_run_in_eval_mode_and_give_the_model_back_in_its_mode():
    from safecompress.attacks import BlackBoxTarget, WhiteBoxTarget
    from safecompress.attacks.features import logits_and_penultimate
    from safecompress.attacks.whitebox import per_sample_grad_norms
    from safecompress.methods.safecompress.simulate import ProbeData, Simulator
    from safecompress.models import build_model
    from safecompress.train import evaluate

    model = build_model(ModelSpec("mlp", (1, 8, 8), 10, 0.25, "batch"), 0).train()
    during = []
    model.register_forward_pre_hook(lambda m, inp: during.append(m.training))
    X, y = torch.randn(40, 1, 8, 8), torch.randint(0, 10, (40,))
    probe = ProbeData(X, y, np.arange(40) < 20)
    dev = torch.device("cpu")
    calls = [
        lambda: BlackBoxTarget(model, dev).logits(X),
        lambda: logits_and_penultimate(model, X, dev),
        lambda: per_sample_grad_norms(model, X, y, dev),
        lambda: evaluate(model, X, y, dev),
    ]
    for name in ("nn", "loss", "whitebox", "grad_norm"):
        sim = Simulator(name, 10, "image", 0, epochs=2)
        calls += [
            lambda s=sim: s.fit(WhiteBoxTarget(model, dev), probe),
            lambda s=sim: s.measure(WhiteBoxTarget(model, dev), probe),
        ]
    for call in calls:
        during.clear()
        call()
        assert not any(during), "a query ran the model in training mode"
        assert all(m.training for m in model.modules()), "a query left the model in eval mode"


def test_the_loop_never_reads_test_audit_or_population_rows(tmp_path, monkeypatch):
    """Replace every test, audit non-member and population row (features and labels) by noise: the
    SafeCompress run's model and rounds must not change by a single byte."""
    import safecompress.runner as runner
    import safecompress.runsetup as runsetup

    overrides = [
        "data.name=digits",
        "model.name=mlp",
        "train.augment=false",
        "train.epochs=3",
        "sparse.update_every=8",
        "audit.enabled=false",
        "method.name=safecompress",
        "safecompress.simulate=[nn,loss]",
    ]
    cfg = load_config(preset="ci", overrides=overrides)
    real = load_dataset(cfg.data.name, data_context(cfg))
    split = make_split(len(real), cfg.data.split, cfg.seed, cfg.data.max_samples)
    rows = np.concatenate([split["test"], split["audit_nonmembers"], split["population"]])
    noisy = load_dataset(cfg.data.name, data_context(cfg))
    rng = np.random.default_rng(0)
    noisy.X[rows] = rng.normal(size=noisy.X[rows].shape).astype(noisy.X.dtype)
    noisy.y[rows] = rng.integers(0, noisy.n_classes, len(rows)).astype(noisy.y.dtype)
    outputs = {}
    for name, ds in (("real", real), ("noisy", noisy)):
        monkeypatch.setattr(runsetup, "load_dataset", lambda *a, ds=ds, **k: ds)
        runner.run_experiment(cfg, tmp_path / name)
        outputs[name] = [(tmp_path / name / f).read_bytes() for f in ("model.safetensors", "rounds.jsonl")]
    assert outputs["real"] == outputs["noisy"]
    rep = json.loads((tmp_path / "noisy" / "report.json").read_text())
    assert rep["task"]["accuracy"] != json.loads((tmp_path / "real" / "report.json").read_text())["task"]["accuracy"]


# ------------------------------------------------------------------------------ LiRA


def _slow_lira(phi_t, phi, is_in, fixed):
    """Carlini et al.'s test written out per example: Gaussians for the IN and OUT reference values,
    a global variance (every reference value of that side around the global mean) when ``fixed``."""
    all_in = phi[is_in]
    all_out = phi[~is_in]
    out = []
    for j in range(len(phi_t)):
        ins, outs = phi[is_in[:, j], j], phi[~is_in[:, j], j]
        s_in = np.std(all_in) if fixed or len(ins) < 2 else np.std(ins, ddof=1)
        s_out = np.std(all_out) if fixed or len(outs) < 2 else np.std(outs, ddof=1)
        lp_in = -0.5 * ((phi_t[j] - ins.mean()) / s_in) ** 2 - np.log(s_in)
        lp_out = -0.5 * ((phi_t[j] - outs.mean()) / s_out) ** 2 - np.log(s_out)
        out.append(lp_in - lp_out)
    return np.array(out)


@pytest.mark.parametrize(("k", "fixed"), [(2, True), (4, True), (8, False), (16, False)])
def test_lira_matches_a_slow_reference(k, fixed):
    from safecompress.attacks.references import membership_matrix

    rng = np.random.default_rng(k)
    n = 50
    is_in = membership_matrix(k, n, seed=1)
    phi = rng.normal(size=(k, n)) + 2.0 * is_in
    phi_t = rng.normal(size=n) + 1.0
    got = lira_scores(phi_t, phi, is_in, fixed)
    assert np.allclose(got, _slow_lira(phi_t, phi, is_in, fixed))


def test_lira_with_two_references_uses_a_global_variance_not_zero():
    from safecompress.attacks.references import membership_matrix

    rng = np.random.default_rng(0)
    is_in = membership_matrix(2, 200, seed=0)
    phi = rng.normal(size=(2, 200)) * 3.0 + 2.0 * is_in
    phi_t = phi[0] + rng.normal(size=200) * 0.1
    scores = lira_scores(phi_t, phi, is_in, fixed=True)
    # a clamped zero variance makes |score| explode (1e-3 scale); a global σ ≈ 3 keeps it moderate
    assert np.abs(scores).max() < 100
    member = is_in[0]  # phi_t follows reference 0, so its IN points should score higher
    from safecompress.metrics import auc

    assert auc(scores, member) > 0.8


# ------------------------------------------------------------------------------ canaries


def test_canaries_are_inserted_like_members_and_reported_apart(tmp_path):
    out = tmp_path / "can"
    args = [
        "run",
        "--preset",
        "ci",
        "--set",
        "data.name=digits",
        "--set",
        "model.name=mlp",
        "--set",
        "train.augment=false",
        "--set",
        "method.name=rigl",
        "--set",
        "train.epochs=25",
        "--set",
        "audit.attacks=[loss,lira]",
        "--set",
        "audit.canaries=60",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    rep = json.loads((out / "report.json").read_text())
    can = rep["audit"]["canaries"]
    assert can["n_members"] == 30 and can["n_nonmembers"] == 30
    assert set(can["attacks"]) == {"loss", "lira"}
    # a wrong label can only be fitted by memorising it: canaries leak far more than average records
    assert can["worst"]["auc"] > rep["audit"]["worst"]["auc"] and can["worst"]["auc"] > 0.7
    from safecompress.canaries import Canaries
    from safecompress.fileio import load_npz

    c = Canaries.load(out)
    z = load_npz(out / "scores.npz")
    assert np.array_equal(z["canary_is_member"], c.is_member) and len(z["canary_score_loss"]) == 60
    assert len(z["score_loss"]) == rep["audit"]["n_members"] + rep["audit"]["n_nonmembers"]  # average case unchanged
    assert (out / "report.html").read_text().count("canaries (30 in, 30 out)") == 1


def test_too_many_canaries_is_a_config_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "can"
    args = [
        "run",
        "--preset",
        "ci",
        "--set",
        "data.name=digits",
        "--set",
        "model.name=mlp",
        "--set",
        "audit.canaries=100000",
        "--out",
        str(out),
    ]
    assert main(args) == 2
    assert "audit.canaries=100000" in capsys.readouterr().err
    assert not out.exists()


def test_simulators_attack_the_model_as_it_is_served():
    """The loop tests what ships: black-box simulators query the network under the run's inference-time
    defence (HAMP's output remapping), white-box ones hold its weights, as in the audit."""
    from safecompress import metrics
    from safecompress.attacks import WhiteBoxTarget
    from safecompress.defences import DEFENCES
    from safecompress.defences.base import unwrap
    from safecompress.methods.safecompress.candidates import CandidateData, Serving, assess
    from safecompress.methods.safecompress.simulate import ProbeData, Simulator
    from safecompress.models import build_model

    model = build_model(ModelSpec("mlp", (1, 8, 8), 10, 0.25, "batch"), 0)
    gen = torch.Generator().manual_seed(0)
    X, y = torch.randn(80, 1, 8, 8, generator=gen), torch.randint(0, 10, (80,), generator=gen)
    probe = ProbeData(X[:40], y[:40], np.arange(40) < 20)
    dev = torch.device("cpu")
    served_data = CandidateData(
        (X[40:60], y[40:60]), probe, (X[60:], y[60:]), Serving(DEFENCES.get("hamp")(soft_labels=False), seed=3)
    )
    bare_data = CandidateData(served_data.val, probe, served_data.train)
    served = served_data.served(model, dev)
    assert served is not model and unwrap(served) is model and bare_data.served(model, dev) is model
    loss, grad = Simulator("loss", 10, "image"), Simulator("grad_norm", 10, "image")
    assert not hasattr(loss.view(model, served, dev), "module")  # outputs only (as served: see below)
    assert grad.view(model, served, dev).module is model
    through, bare = assess(model, served_data, [loss, grad], dev), assess(model, bare_data, [loss, grad], dev)
    assert through.aucs["grad_norm"] == bare.aucs["grad_norm"]  # the weights bypass the remapping
    seen = np.asarray(loss.attack.score(WhiteBoxTarget(served, dev), probe.X, probe.y))
    assert through.aucs["loss"] == pytest.approx(metrics.auc(seen, probe.is_member))
    # served, a query's loss depends only on the rank of its true class (at most C values); bare, on the logits
    assert (
        len(np.unique(seen))
        <= 10
        < len(np.unique(np.asarray(loss.attack.score(WhiteBoxTarget(model, dev), probe.X, probe.y))))
    )
    assert through.accuracy == bare.accuracy  # remapping never changes a label
