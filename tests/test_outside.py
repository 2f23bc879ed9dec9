"""Auditing a model trained outside safecompress (safecompress.outside, `safecompress audit --model/--scores`).

A small MLP is trained here with a plain torch loop (overfitting a few hundred synthetic rows, so the
attacks have signal), exported to ONNX and torch.export, and audited three ways: as each file through the
CLI and in memory through the Python API. Every reference-free attack must give the same AUC on all three.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from safecompress.cli import main
from safecompress.outside import audit
from safecompress.report.schema import AuditReport

N_FEATURES, N_CLASSES, N = 12, 4, 200
# attacks that need neither reference models nor white-box access, and calibrated (which needs the population)
BLACK_BOX = ["loss", "confidence", "entropy", "m_entropy", "label_only", "calibrated"]


def _records(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    # a weak signal plus label noise: a wide MLP memorises the members, which the attacks then see
    y = ((X[:, 0] > 0).astype(int) * 2 + (rng.random(n) < 0.5)).astype(np.int64)
    return X, y


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """The trained model, its ONNX and .pt2 exports, and members/nonmembers/population .npz files."""
    folder = tmp_path_factory.mktemp("outside")
    members, nonmembers, population = _records(1, N), _records(2, N), _records(3, N)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(N_FEATURES, 128), nn.ReLU(), nn.Linear(128, N_CLASSES))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    X, y = torch.from_numpy(members[0]), torch.from_numpy(members[1])
    for _ in range(300):  # full batch: the members are memorised
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    model.eval()
    example = (torch.zeros(8, N_FEATURES),)  # a static batch of 8: the loaders chunk and pad to it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, str(folder / "model.onnx"), dynamo=False)
        torch.export.save(torch.export.export(model, example), str(folder / "model.pt2"))
    for name, (Xp, yp) in (("members", members), ("nonmembers", nonmembers), ("population", population)):
        np.savez(folder / f"{name}.npz", X=Xp, y=yp)
    return {"folder": folder, "model": model, "members": members, "nonmembers": nonmembers, "population": population}


@pytest.fixture(scope="module")
def api_audit(outside):
    """The in-memory module audited through the Python API (white-box: grad_norm runs)."""
    return audit(
        outside["model"],
        outside["members"],
        outside["nonmembers"],
        population=outside["population"],
        attacks=[*BLACK_BOX, "lira", "whitebox", "grad_norm"],
    )


def _cli_audit(outside, model_file, out, *extra) -> int:
    f = outside["folder"]
    return main(
        [
            "audit",
            "--model",
            str(model_file),
            "--members",
            str(f / "members.npz"),
            "--nonmembers",
            str(f / "nonmembers.npz"),
            "--out",
            str(out),
            *extra,
        ]
    )


def test_model_files_and_module_agree(outside, api_audit, tmp_path):
    f = outside["folder"]
    attacks = ",".join([*BLACK_BOX, "lira", "whitebox", "grad_norm"])
    aucs = {}
    for fmt in ("onnx", "pt2"):
        out = tmp_path / fmt
        assert (
            _cli_audit(
                outside, f / f"model.{fmt}", out, "--population", str(f / "population.npz"), "--attacks", attacks
            )
            == 0
        )
        for name in ("audit.json", "scores.npz", "roc.png", "report.json", "report.html"):
            assert (out / name).is_file(), name
        report = json.loads((out / "report.json").read_text())
        AuditReport.model_validate(report["audit"])  # the typed schema reads it
        assert AuditReport.load(out / "audit.json").worst.attack in BLACK_BOX
        assert report["model"]["format"] == fmt
        assert report["skipped"]["lira"].startswith("needs reference models")
        assert "white-box" in report["skipped"]["whitebox"] and "white-box" in report["skipped"]["grad_norm"]
        page = (out / "report.html").read_text()
        assert "Skipped attacks" in page
        roc = page.split('id="roc"', 1)[1].split("</div>", 1)[0]  # the ROC figure: inline SVG, as in a run's page
        assert "<svg" in roc and "data:image/png" not in roc
        aucs[fmt] = {k: v["auc"] for k, v in report["audit"]["attacks"].items()}
    api = api_audit
    aucs["torch"] = api.aucs
    # the in-memory module is white-box: grad_norm runs; whitebox still needs reference models
    assert "grad_norm" in api.aucs and api.skipped["whitebox"].startswith("needs reference models")
    assert set(aucs["onnx"]) == set(aucs["pt2"]) == set(BLACK_BOX)
    assert min(aucs["torch"][a] for a in BLACK_BOX) > 0.6  # the members are memorised: the attacks see it
    for a in BLACK_BOX:
        # pt2 runs the same aten kernels as the module: equal. ONNX runs onnxruntime's float32 kernels, whose
        # logits differ in the last bits; the AUCs agree to within a few swapped near-tied pairs (1/N² each).
        assert aucs["pt2"][a] == pytest.approx(aucs["torch"][a], abs=1e-6), a
        assert aucs["onnx"][a] == pytest.approx(aucs["torch"][a], abs=5 / N**2), a


def _logits(model, X):
    with torch.no_grad():
        return model(torch.from_numpy(X)).numpy()


def test_scores_mode_matches_model_mode(outside, api_audit, tmp_path):
    model, parts = outside["model"], ("members", "nonmembers", "population")
    arrays = {f"{p}_logits": _logits(model, outside[p][0]) for p in parts}
    arrays.update({f"{p}_y": outside[p][1] for p in parts})
    np.savez(tmp_path / "scores.npz", **arrays)
    out = tmp_path / "out"
    assert (
        main(["audit", "--scores", str(tmp_path / "scores.npz"), "--out", str(out), "--attacks", ",".join(BLACK_BOX)])
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    outputs_only = ["loss", "confidence", "entropy", "m_entropy", "calibrated"]
    got = {k: v["auc"] for k, v in report["audit"]["attacks"].items()}
    assert set(got) == set(outputs_only)
    for a in outputs_only:
        assert got[a] == pytest.approx(api_audit.aucs[a], abs=1e-9), a
    assert report["skipped"]["label_only"].startswith("queries the model")
    # the AUC is the textbook one: sklearn's on the per-record scores written to scores.npz
    z = np.load(out / "scores.npz")
    assert got["loss"] == pytest.approx(roc_auc_score(z["is_member"], z["score_loss"]), abs=1e-9)

    # probabilities instead of logits: the same AUCs up to float32 rounding of the softmax
    probs = {f"{p}_probs": torch.softmax(torch.from_numpy(arrays[f"{p}_logits"]), 1).numpy() for p in parts}
    np.savez(tmp_path / "probs.npz", **probs, **{f"{p}_y": outside[p][1] for p in parts})
    from safecompress.outside import audit_scores

    via_probs = audit_scores(tmp_path / "probs.npz", attacks=["loss", "confidence"]).aucs
    for a in ("loss", "confidence"):
        assert via_probs[a] == pytest.approx(got[a], abs=5 / N**2), a


def test_skipped_attacks_have_reasons(outside):
    # the default attack list, no population: everything that cannot run says why
    result = audit(outside["model"], outside["members"], outside["nonmembers"])
    skipped = result.skipped
    for name in ("lira", "rmia", "nn", "top3", "shadow", "whitebox"):
        assert skipped[name].startswith("needs reference models"), name
    assert "--population" in skipped["calibrated"] and "--population" in skipped["inversion"]
    assert skipped["attribute"].startswith("needs a sensitive attribute")
    assert {"loss", "confidence", "label_only", "grad_norm"} <= set(result.aucs)
    assert result.report["audit"]["skipped"] == skipped
    page = result.to_html()
    assert "Skipped attacks" in page and "needs reference models" in page


def test_torchscript_and_a_callable(outside, api_audit, tmp_path):
    scripted = torch.jit.script(outside["model"])
    scripted.save(str(tmp_path / "model.ts"))
    attacks = ["loss", "confidence", "grad_norm"]
    from_file = audit(tmp_path / "model.ts", outside["members"], outside["nonmembers"], attacks=attacks)
    assert from_file.model["format"] == "torchscript" and "white-box" in from_file.skipped["grad_norm"]
    with torch.no_grad():
        fn = audit(lambda X: outside["model"](X).numpy(), outside["members"], outside["nonmembers"], attacks=attacks)
    for result in (from_file, fn):
        for a in ("loss", "confidence"):
            assert result.aucs[a] == pytest.approx(api_audit.aucs[a], abs=1e-6), a


def test_safecompress_model_file(tmp_path):
    from safecompress.checkpoint import save_model
    from safecompress.models import ModelSpec, build_model

    spec = ModelSpec("mlp", (N_FEATURES,), N_CLASSES)
    save_model(build_model(spec, seed=0), spec, tmp_path / "model.safetensors")
    members, nonmembers = _records(1, 60), _records(2, 60)
    result = audit(tmp_path / "model.safetensors", members, nonmembers, attacks=["loss", "grad_norm"])
    assert result.model["format"] == "safetensors" and result.model["white_box"]
    assert set(result.aucs) == {"loss", "grad_norm"}  # white-box: grad_norm runs


def test_safecompress_model_file_with_a_user_factory_needs_trust(tmp_path, monkeypatch, capsys):
    import safecompress.checkpoint as checkpoint
    from safecompress.models import ModelSpec, build_model

    (tmp_path / "outside_nets.py").write_text(
        "from torch import nn\n\ndef make(input_shape, n_classes, width):\n"
        "    return nn.Sequential(nn.Linear(input_shape[0], 16), nn.ReLU(), nn.Linear(16, n_classes))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(checkpoint, "_TRUSTED_FACTORIES", set())  # this process trusts no factory yet
    spec = ModelSpec("outside_nets:make", (N_FEATURES,), N_CLASSES)
    checkpoint.save_model(build_model(spec, seed=0), spec, tmp_path / "model.safetensors")
    checkpoint._TRUSTED_FACTORIES.clear()
    for name, pair in (("members", _records(1, 60)), ("nonmembers", _records(2, 60))):
        np.savez(tmp_path / f"{name}.npz", X=pair[0], y=pair[1])
    args = ["audit", "--model", str(tmp_path / "model.safetensors"), "--attacks", "loss"]
    args += ["--members", str(tmp_path / "members.npz"), "--nonmembers", str(tmp_path / "nonmembers.npz")]
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 2
    assert "Pass --trust-model-code" in " ".join(capsys.readouterr().err.split()) and not out.exists()
    assert main([*args, "--out", str(out), "--trust-model-code"]) == 0
    assert json.loads((out / "report.json").read_text())["model"]["format"] == "safetensors"


def _bad_npz(path, X, y):
    np.savez(path, X=X, y=y)
    return path


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_bad_inputs_exit_2_and_write_nothing(outside, tmp_path, capsys, fmt):
    f = outside["folder"]
    Xm, ym = outside["members"]
    junk = tmp_path / f"junk.{fmt}"
    junk.write_bytes(b"this is not a model" * 10)
    pickled = tmp_path / "pickled.pt"
    torch.save(outside["model"], pickled)
    wide = _bad_npz(tmp_path / "wide.npz", np.hstack([Xm, Xm[:, :1]]), ym)
    label = _bad_npz(tmp_path / "label.npz", Xm, np.where(np.arange(len(ym)) == 3, 7, ym))
    model = f / f"model.{fmt}"
    out = tmp_path / "out"
    cases = [
        (
            ["--model", str(junk), "--members", str(f / "members.npz"), "--nonmembers", str(f / "nonmembers.npz")],
            "Supported formats",
        ),
        (
            ["--model", str(pickled), "--members", str(f / "members.npz"), "--nonmembers", str(f / "nonmembers.npz")],
            "pickle",
        ),
        (
            ["--model", str(model), "--members", str(wide), "--nonmembers", str(f / "nonmembers.npz")],
            "13 but the model takes 12",
        ),
        (
            ["--model", str(model), "--members", str(label), "--nonmembers", str(f / "nonmembers.npz")],
            "labels [7] are outside",
        ),
        (["--model", str(model), "--members", str(f / "members.npz")], "--nonmembers"),
        (
            [
                "--model",
                str(model),
                "--members",
                str(f / "members.npz"),
                "--nonmembers",
                str(f / "nonmembers.npz"),
                "--attacks",
                "lira",
            ],
            "no membership attack can run",
        ),
    ]
    for args, message in cases:
        assert main(["audit", *args, "--out", str(out)]) == 2, args
        err = capsys.readouterr().err
        assert message in " ".join(err.split()), (args, err)
        assert not out.exists(), args


def test_run_dir_still_required_without_model(tmp_path, capsys):
    assert main(["audit"]) == 2
    assert "give RUN_DIR" in capsys.readouterr().err
    assert main(["audit", str(tmp_path / "missing")]) == 2  # a run folder audit, as before


def test_csv_records(outside, api_audit, tmp_path):
    X, y = outside["members"]
    header = ",".join([f"f{i}" for i in range(N_FEATURES)] + ["label"])
    rows = [",".join([*(repr(float(v)) for v in x), str(int(c))]) for x, c in zip(X, y)]
    (tmp_path / "members.csv").write_text("\n".join([header, *rows]) + "\n")
    result = audit(outside["model"], tmp_path / "members.csv", outside["folder"] / "nonmembers.npz", attacks=["loss"])
    assert result.aucs["loss"] == pytest.approx(api_audit.aucs["loss"], abs=1e-9)
    assert result.data["members"] == {"records": N, "file": str(tmp_path / "members.csv")}


def test_evasion_needs_no_population_and_extraction_does():
    from safecompress.outside.policy import NEEDS_POPULATION, plan

    run, skipped = plan(
        ["loss", "evasion", "extraction", "calibrated"], model_format="torch", white_box=True, population=False
    )
    assert run == ["loss", "evasion"]  # PGD perturbs the queried records: known non-members give it nothing
    assert skipped == {"extraction": NEEDS_POPULATION, "calibrated": NEEDS_POPULATION}
    run, skipped = plan(["loss", "evasion", "extraction"], model_format="onnx", white_box=False, population=True)
    assert run == ["loss", "extraction"] and "white-box" in skipped["evasion"]
