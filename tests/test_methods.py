"""Every compression method trains end to end and lands exactly on the target density."""

import json

import pytest

from runargs import ci_args
from safecompress import load_model
from safecompress.cli import main
from safecompress.methods import METHODS

FAST = ci_args(
    {
        "train.lr": 0.005,
        "data.split.train": 0.5,
        "data.split.population": 0.05,
        "train.epochs": 6,
        "sparse.update_every": 5,
    }
)


@pytest.mark.parametrize("method", METHODS.names())
def test_method_reaches_target_density(tmp_path, method):
    out = tmp_path / method
    needs = ["--set", "defence.name=label_smoothing"] if method == "defend_then_compress" else []
    assert (
        main(["run", *FAST, *needs, "--set", f"method.name={method}", "--set", "sparse.density=0.2", "--out", str(out)])
        == 0
    )
    rep = json.loads((out / "report.json").read_text())
    comp = rep["compression"]
    if method == "dense":
        assert comp["density"] == 1.0
    else:
        prunable = sum(
            layer["nonzeros"] / layer["density"] for layer in rep["method_details"]["sparse"]["layers"].values()
        )
        assert comp["density"] == pytest.approx(0.2, abs=1.0 / prunable)
        assert comp["ratio"] > 2
    model = load_model(out / "model.safetensors")
    nonzero = sum(int((p != 0).sum()) for p in model.parameters())
    assert nonzero <= comp["nonzeros"]
    assert rep["task"]["accuracy"] > 0.5  # learned (chance is 0.1)


def test_dynamic_methods_change_topology(tmp_path):
    out = tmp_path / "rigl"
    assert main(["run", *FAST, "--set", "method.name=rigl", "--out", str(out)]) == 0
    sparse = json.loads((out / "report.json").read_text())["method_details"]["sparse"]
    assert sparse["topology_updates"] > 0 and sparse["itop_rate"] > sparse["prunable_density"]


def test_sparse_run_resumes_identically(tmp_path, kill_at_epoch):
    args = [*FAST, "--set", "method.name=rigl", "--set", "train.epochs=4"]
    assert main(["run", *args, "--out", str(tmp_path / "a")]) == 0
    with kill_at_epoch(2):
        assert main(["run", *args, "--out", str(tmp_path / "b")]) == 130
    assert main(["run", *args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    assert a["task"] == b["task"] and a["method_details"]["sparse"] == b["method_details"]["sparse"]


def test_export_variants(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", *FAST, "--set", "method.name=static", "--set", "sparse.density=0.1", "--out", str(out)]) == 0
    fp32 = load_model(out / "model.safetensors")
    sizes = {}
    for values in ("fp32", "fp16", "int8"):
        assert main(["export", str(out), "--values", values]) == 0
        path = out / f"model-{values}.safetensors"
        sizes[values] = path.stat().st_size
        back = load_model(path)
        for (n, p), q in zip(fp32.named_parameters(), back.parameters()):
            tol = {"fp32": 0, "fp16": 1e-3, "int8": 1e-2}[values] * float(p.detach().abs().max())
            assert float((p - q).detach().abs().max()) <= tol + 1e-12, n
    assert sizes["int8"] < sizes["fp16"] < sizes["fp32"]
    assert main(["export", str(tmp_path / "nothing")]) == 2
    assert "no model.safetensors" in capsys.readouterr().err


def test_list_methods(capsys):
    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    for name in ("dense", "static", "set", "rigl", "mest", "gmp", "oneshot"):
        assert name in out


def test_ci_rigl_run_audits_every_preset_attack(tmp_path):
    """Done-when of the audit issue: the ci preset's RigL run carries an audit of every attack."""
    from safecompress.config import load_config

    out = tmp_path / "rigl"
    assert main(["run", "--preset", "ci", "--set", "method.name=rigl", "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    from safecompress.attacks import ATTACKS

    wanted = load_config(preset="ci").audit.attacks
    assert set(rep["audit"]["attacks"]) == {a for a in wanted if ATTACKS.get(a).family == "membership"}
    assert all(a in rep["audit"] for a in wanted if ATTACKS.get(a).family != "membership")  # attribute, inversion
    assert rep["audit"]["worst"]["auc"] == max(m["auc"] for m in rep["audit"]["attacks"].values())
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("method,density", [("dense", 1.0), ("rigl", 0.2)])
def test_int8_quantized_model_is_the_one_evaluated_and_saved(tmp_path, method, density):
    import torch

    from safecompress.checkpoint import load_model
    from safecompress.data import DataContext, load_dataset
    from safecompress.data.split import MembershipSplit
    from safecompress.train import evaluate

    runs = {}
    for q in ("none", "int8"):
        out = tmp_path / q
        assert (
            main(
                [
                    "run",
                    *FAST,
                    "--set",
                    f"method.name={method}",
                    "--set",
                    f"sparse.density={density}",
                    "--set",
                    f"quantize={q}",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        runs[q] = json.loads((out / "report.json").read_text())
    assert runs["int8"]["compression"]["values"] == "int8"
    assert runs["int8"]["compression"]["file_bytes"] < 0.4 * runs["none"]["compression"]["file_bytes"]
    assert abs(runs["int8"]["task"]["accuracy"] - runs["none"]["task"]["accuracy"]) < 0.05  # int8 costs little
    ds = load_dataset("digits", DataContext())
    idx = torch.as_tensor(MembershipSplit.load(tmp_path / "int8" / "split.npz", n_total=len(ds))["test"])
    model = load_model(tmp_path / "int8" / "model.safetensors")
    acc = evaluate(model, torch.from_numpy(ds.X)[idx], torch.from_numpy(ds.y)[idx], torch.device("cpu"))["accuracy"]
    assert acc == pytest.approx(runs["int8"]["task"]["accuracy"], abs=1e-6)


def test_distillation_loss_and_sparse_student(tmp_path, monkeypatch):
    import torch
    import torch.nn.functional as F

    from safecompress.methods.distill import _Distil

    teacher = torch.nn.Linear(4, 3)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    logits = torch.randn(6, 3)
    total = F.cross_entropy(logits, y) + _Distil(teacher, 0.7, 2.0).extra_loss(None, x, y, logits)
    p_t = torch.softmax(teacher(x) / 2.0, 1)
    kl = (p_t * (p_t.log() - torch.log_softmax(logits / 2.0, 1))).sum(1).mean()
    assert float(total) == pytest.approx(float(0.3 * F.cross_entropy(logits, y) + 0.7 * 4.0 * kl), rel=1e-5)

    args = [*FAST, "--set", "method.name=distill", "--set", "sparse.density=0.2"]
    assert main(["run", *args, "--out", str(tmp_path / "a")]) == 0
    from safecompress.sparse.engine import SparseEngine
    from safecompress.train import Callback, Trainer

    original = Trainer.fit

    def student_dies_at_epoch_2(self, X, y):  # the teacher trains to the end; the student is killed
        class Kill(Callback):
            def on_epoch_end(self, trainer, metrics):
                if trainer.state.epoch == 2:
                    raise KeyboardInterrupt

        if any(isinstance(cb, SparseEngine) for cb in self.callbacks):
            self.callbacks.append(Kill())
        return original(self, X, y)

    monkeypatch.setattr(Trainer, "fit", student_dies_at_epoch_2)
    assert main(["run", *args, "--out", str(tmp_path / "b")]) == 130
    monkeypatch.setattr(Trainer, "fit", original)
    assert (tmp_path / "b" / "teacher.safetensors").is_file()  # cached: the resume does not retrain it
    assert main(["run", *args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    assert a["task"] == b["task"] and a["compression"]["density"] == pytest.approx(0.2, abs=1e-3)


def test_defend_then_compress_refuses_an_undefended_run_before_writing_anything(tmp_path, capsys):
    from safecompress.cli import main

    out = tmp_path / "dtc"
    assert main(["run", "--preset", "ci", "--set", "method.name=defend_then_compress", "--out", str(out)]) == 2
    assert "needs a defence" in capsys.readouterr().err and not out.exists()


def test_defend_then_compress_prunes_a_defended_dense_model(tmp_path):
    import json

    from safecompress.cli import main

    out = tmp_path / "dtc"
    assert (
        main(
            [
                "run",
                "--preset",
                "ci",
                "--set",
                "method.name=defend_then_compress",
                "--set",
                "defence.name=label_smoothing",
                "--set",
                "audit.enabled=false",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rep = json.loads((out / "report.json").read_text())
    assert rep["compression"]["density"] == pytest.approx(0.1, abs=1e-3)
    assert rep["method_details"]["pipeline"] == {"defence": "label_smoothing", "prune_at": 0.6}


def test_dmp_student_never_trains_on_private_samples(tmp_path, monkeypatch):
    import json

    import numpy as np

    from safecompress.cli import main
    from safecompress.data.split import MembershipSplit
    from safecompress.train import Trainer

    seen = []
    fit = Trainer.fit

    def spy(self, X, y, *a, **k):
        seen.append(X.clone())
        return fit(self, X, y, *a, **k)

    monkeypatch.setattr(Trainer, "fit", spy)
    out = tmp_path / "dmp"
    assert (
        main(["run", "--preset", "ci", "--set", "method.name=dmp", "--set", "audit.enabled=false", "--out", str(out)])
        == 0
    )
    rep = json.loads((out / "report.json").read_text())
    import torch
    import yaml

    from safecompress.config import build_config
    from safecompress.data import load_dataset
    from safecompress.runsetup import data_context

    cfg = build_config(yaml.safe_load((out / "config.yaml").read_text()))
    ds = load_dataset(cfg.data.name, data_context(cfg))
    split = MembershipSplit.load(out / "split.npz", n_total=len(ds))
    teacher_X, student_X = seen
    private = {tuple(r) for r in ds.X[split["train"]].tolist()}
    reference = np.concatenate([split["val"], split["probe_nonmembers"]])
    assert torch.equal(teacher_X, torch.from_numpy(ds.X[split["train"]]))
    assert len(student_X) == len(reference) == rep["method_details"]["dmp"]["reference_samples"]
    assert not any(tuple(r) in private for r in student_X.tolist())
    assert rep["compression"]["density"] == pytest.approx(0.1, abs=1e-3)


def test_method_context_trains_with_the_defence_it_receives(tmp_path):
    """The context does not build the defence from the config: its trainer runs the callbacks of the
    instance it was handed (between the method's extra callbacks and the run's own)."""
    import numpy as np
    import torch

    from safecompress.config import build_config
    from safecompress.defences import Defence
    from safecompress.methods import MethodContext
    from safecompress.models import ModelSpec
    from safecompress.train import Callback

    marks = [Callback(), Callback(), Callback()]

    class Handed(Defence):
        def callbacks(self, ctx):
            assert ctx.defence is self
            return [marks[1]]

    cfg = build_config({"defence": {"name": "label_smoothing"}})  # not the defence the context trains with
    ctx = MethodContext(
        cfg=cfg,
        spec=ModelSpec("mlp", (4,), 2, 1.0, "auto"),
        X=torch.zeros(8, 4),
        y=torch.zeros(8, dtype=torch.int64),
        split={"train": np.arange(8)},
        device=torch.device("cpu"),
        augment=False,
        flip=False,
        run_dir=tmp_path,
        defence=Handed(),
        callbacks=[marks[2]],
    )
    trainer = ctx.new_trainer(ctx.new_model(), extra=[marks[0]])
    assert trainer.callbacks == marks
