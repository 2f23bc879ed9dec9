"""Experiment tracking: a finished run folder logged to MLflow (local file store) and TensorBoard, read back."""

import json
import os
import re

import pytest

from runargs import ci_args
from safecompress.cli import main
from safecompress.track import TRACKERS, read_run
from safecompress.track.mlflow import ALLOW_FILE_STORE, allow_file_store, resolve_uri
from safecompress.track.record import read_history

pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

EPOCHS = 3
AUDITED = ci_args({"method.name": "dense", "train.epochs": EPOCHS, "audit.enabled": "true", "audit.attacks": "[loss]"})
SC = ci_args(
    {
        "method.name": "safecompress",
        "train.lr": 0.005,
        "data.split.train": 0.5,
        "data.split.population": 0.05,
        "train.epochs": 2,
        "sparse.update_every": 10,
        "sparse.density": 0.2,
    }
)
EPOCH_LINE = re.compile(r"safecompress\.train: epoch (\d+)/(\d+) loss (\S+) acc (\S+)$")


def _client(store):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store.as_uri())


def _only_run(client, experiment):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return runs[0]


def _steps(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def _log_epochs(folder):
    """The main model's epoch lines of log.txt, (epoch, loss, acc): those before the audit trains its
    reference models."""
    text = (folder / "log.txt").read_text().split("safecompress.attacks.references:")[0]
    return [
        (int(m.group(1)), float(m.group(3)), float(m.group(4)))
        for line in text.splitlines()
        if (m := EPOCH_LINE.search(line)) and int(m.group(2)) == EPOCHS
    ]


@pytest.fixture
def file_store_env(monkeypatch):
    """Reading a file store back needs the opt-out; logging must restore the variable's absence itself."""
    monkeypatch.delenv(ALLOW_FILE_STORE, raising=False)
    return monkeypatch


@pytest.fixture(scope="module")
def sc_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sc") / "sc"
    assert main(["run", *SC, "--out", str(out)]) == 0
    return out


def test_run_tracks_to_mlflow_history_audit_tags_artifacts(tmp_path, file_store_env, capsys):
    store, out = tmp_path / "store", tmp_path / "run"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    file_store_env.chdir(cwd)
    args = ["--track", "mlflow", "--track-uri", str(store), "--track-experiment", "t1"]
    assert main(["run", *AUDITED, "--out", str(out), *args]) == 0
    assert "tracked: mlflow: run" in capsys.readouterr().out
    assert ALLOW_FILE_STORE not in os.environ  # set only while logging
    assert not any(cwd.iterdir())  # nothing written to the current folder with --track-uri
    report = json.loads((out / "report.json").read_text())

    file_store_env.setenv(ALLOW_FILE_STORE, "true")
    client = _client(store)
    run = _only_run(client, "t1")
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    rid = run.info.run_id
    # per-epoch history, step = epoch: report.json's at full precision, which the trainer's lines in log.txt
    # show to four decimals
    epochs = [(int(h["epoch"]), h["loss"], h["train_accuracy_running"]) for h in report["history"]]
    assert [(e, round(loss, 4), round(acc, 4)) for e, loss, acc in epochs] == _log_epochs(out)
    assert (
        [e for e, _, _ in epochs]
        == list(range(1, EPOCHS + 1))
        == list(range(1, report["method_details"]["epochs"] + 1))
    )
    assert _steps(client, rid, "train/loss") == [(e, loss) for e, loss, _ in epochs]
    assert _steps(client, rid, "train/train_accuracy_running") == [(e, acc) for e, _, acc in epochs]
    # audit, task, compression, timing equal report.json's
    metrics = run.data.metrics
    loss = report["audit"]["attacks"]["loss"]
    assert metrics["audit/loss/auc"] == loss["auc"]
    for fpr, tpr in loss["tpr_at_fpr"].items():
        assert metrics.get(f"audit/loss/tpr_at_fpr_{fpr}") == tpr  # None (unresolved) is not logged
    assert metrics["audit/strongest/auc"] == report["audit"]["worst"]["auc"]
    assert metrics["task/accuracy"] == report["task"]["accuracy"]
    assert metrics["compression/density"] == report["compression"]["density"]
    assert metrics["compression/file_bytes"] == report["compression"]["file_bytes"]
    assert metrics["timing/train_s"] == report["timing"]["train_s"]
    # params: the flattened resolved config; tags
    params = run.data.params
    assert params["train.epochs"] == str(EPOCHS) and params["method.name"] == "dense"
    tags = run.data.tags
    assert tags["method"] == "dense" and tags["dataset"] == "digits" and tags["seed"] == str(report["seed"])
    assert tags["code_hash"] == report["code"]["source_sha256"]
    artifacts = {a.path for a in client.list_artifacts(rid)}
    assert {"report.html", "report.json", "roc.png", "config.yaml", "headline.json"} <= artifacts
    assert "rounds" not in artifacts  # not a SafeCompress run


def test_safecompress_rounds_to_mlflow_one_step_per_round(sc_run, tmp_path, file_store_env):
    store = tmp_path / "store"
    assert main(["track", str(sc_run), "--to", "mlflow", "--track-uri", str(store)]) == 0
    rounds = [json.loads(line) for line in (sc_run / "rounds.jsonl").read_text().splitlines()]
    assert len(rounds) >= 2
    file_store_env.setenv(ALLOW_FILE_STORE, "true")
    client = _client(store)
    run = _only_run(client, "safecompress")
    rid = run.info.run_id
    chosen = [r["candidates"][r["chosen"]] for r in rounds]
    assert _steps(client, rid, "round/val_accuracy") == [
        (r["round"], c["val_accuracy"]) for r, c in zip(rounds, chosen)
    ]
    assert _steps(client, rid, "round/attack_auc/nn") == [
        (r["round"], c["attack_auc"]["nn"]) for r, c in zip(rounds, chosen)
    ]
    assert run.data.tags["method"] == "safecompress"
    local = client.download_artifacts(rid, "rounds/candidates.json", str(tmp_path))
    with open(local) as fh:
        table = json.load(fh)
    assert len(table["data"]) == sum(len(r["candidates"]) for r in rounds)
    assert sum(row[table["columns"].index("chosen")] for row in table["data"]) == len(rounds)


def test_tensorboard_scalars_and_text(sc_run, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tmp_path / "tb"
    for _ in range(2):  # logging the same folder twice adds a second run, never mixes events
        assert main(["track", str(sc_run), "--to", "tensorboard", "--track-uri", str(logdir)]) == 0
    folders = sorted(p.name for p in (logdir / "safecompress").iterdir())
    assert folders == ["sc", "sc-2"]
    acc = EventAccumulator(str(logdir / "safecompress" / "sc"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    report = json.loads((sc_run / "report.json").read_text())
    rounds = [json.loads(line) for line in (sc_run / "rounds.jsonl").read_text().splitlines()]
    history = read_history(sc_run, report, {})
    scalars = acc.Tags()["scalars"]
    assert {"train/loss", "round/val_accuracy", "task/accuracy", "compression/density", "timing/train_s"} <= set(
        scalars
    )
    assert history == report["history"]  # report.json's, at full precision (float32 in TensorBoard)
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [
        (int(h["epoch"]), pytest.approx(h["loss"], rel=1e-6)) for h in history
    ]
    assert len(history) == 2
    assert [e.step for e in acc.Scalars("round/val_accuracy")] == [r["round"] for r in rounds]
    (task,) = acc.Scalars("task/accuracy")
    assert task.value == pytest.approx(report["task"]["accuracy"], abs=1e-6)  # stored as float32
    assert "params/text_summary" in acc.Tags()["tensors"]


def test_audit_command_tracks_the_new_audit(tmp_path, file_store_env):
    out, store = tmp_path / "run", tmp_path / "store"
    unaudited = ci_args({"method.name": "dense", "train.epochs": 2})
    assert main(["run", *unaudited, "--out", str(out)]) == 0
    assert main(["audit", str(out), "--attacks", "loss", "--track", "mlflow", "--track-uri", str(store)]) == 0
    report = json.loads((out / "report.json").read_text())
    file_store_env.setenv(ALLOW_FILE_STORE, "true")
    run = _only_run(_client(store), "safecompress")
    assert run.data.metrics["audit/loss/auc"] == report["audit"]["attacks"]["loss"]["auc"]


def test_unknown_tracker_fails_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *AUDITED, "--out", str(out), "--track", "mlflow,mlflw"]) == 2
    assert "did you mean 'mlflow'" in capsys.readouterr().err.lower()
    assert not out.exists()


def test_missing_extra_fails_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(TRACKERS.get("tensorboard"), "requires", ("safecompress_no_such_module",))
    out = tmp_path / "run"
    assert main(["run", *AUDITED, "--out", str(out), "--track", "tensorboard"]) == 2
    assert "pip install 'safecompress[track]'" in capsys.readouterr().err
    assert not out.exists()


def test_track_needs_a_finished_run_folder(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    assert main(["track", str(tmp_path / "half"), "--to", "mlflow", "--track-uri", str(tmp_path / "s")]) == 2
    assert "no report.json" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    assert main(["run", *AUDITED, "--track-uri", str(tmp_path / "s"), "--out", str(tmp_path / "r")]) == 2
    assert "--track-uri needs --track" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_tracker_failure_keeps_the_run_and_says_how_to_log_again(tmp_path, monkeypatch, capsys, file_store_env):
    def broken(self, run):
        raise RuntimeError("tracking server unreachable")

    cls = TRACKERS.get("mlflow")
    out, store = tmp_path / "run", tmp_path / "store"
    with monkeypatch.context() as m:
        m.setattr(cls, "log", broken)
        code = main(["run", *AUDITED, "--out", str(out), "--track", "mlflow", "--track-uri", str(store)])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "run itself is complete" in err and "tracking server unreachable" in err
    assert f"safecompress track {out} --to mlflow --track-uri {store}" in err
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert "report.json" in before
    assert main(["track", str(out), "--to", "mlflow", "--track-uri", str(store)]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # only read


def test_history_from_log_skips_other_models_and_keeps_resumed_epochs(tmp_path):
    lines = [
        "t INFO safecompress.runner: safecompress 0.1.0: run in /x (mode new)",
        "t INFO safecompress.train: epoch 1/2 loss 9.0 acc 0.1",  # a teacher of another length
        "t INFO safecompress.train: epoch 1/3 loss 2.0 acc 0.3",
        "t INFO safecompress.runner: safecompress 0.1.0: run in /x (mode resume)",
        "t INFO safecompress.runner: resumed from /x/checkpoint.safetensors at epoch 1",
        "t INFO safecompress.train: epoch 2/3 loss 1.5 acc 0.5",
        "t INFO safecompress.train: epoch 3/3 loss 1.0 acc 0.7",
        "t INFO safecompress.attacks.references: training reference models [1, 2] of 2",
        "t INFO safecompress.train: epoch 1/3 loss 5.0 acc 0.2",  # a reference model
        "t INFO safecompress.runner: test accuracy 0.8; report at /x/report.json",
    ]
    (tmp_path / "log.txt").write_text("\n".join(lines) + "\n")
    history = read_history(tmp_path, {"method_details": {"epochs": 3}}, {})
    assert [(h["epoch"], h["loss"]) for h in history] == [(1, 2.0), (2, 1.5), (3, 1.0)]
    kept = [{"epoch": 1, "loss": 0.25, "note": "x"}]
    assert read_history(tmp_path, {"history": kept}, {}) == [{"epoch": 1.0, "loss": 0.25}]


def test_file_store_opt_out_is_restored_and_uris_resolved(tmp_path, monkeypatch):
    monkeypatch.setenv(ALLOW_FILE_STORE, "false")
    with allow_file_store("file:///tmp/x"):
        assert os.environ[ALLOW_FILE_STORE] == "true"
    assert os.environ[ALLOW_FILE_STORE] == "false"
    with allow_file_store("http://localhost:5000"):
        assert os.environ[ALLOW_FILE_STORE] == "false"
    monkeypatch.chdir(tmp_path)
    assert resolve_uri(None) == (tmp_path / "mlruns").resolve().as_uri()
    assert resolve_uri("sqlite:///m.db") == "sqlite:///m.db"
    assert resolve_uri("store") == (tmp_path / "store").resolve().as_uri()


def test_read_run_of_a_folder_without_rounds(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({"method": "dense", "dataset": "d", "seed": 1}))
    run = read_run(tmp_path)
    assert run.rounds == [] and run.history == [] and run.tags()["code_hash"] == "unknown"
    assert run.headline() == {}  # not a full RunReport: numbers only
