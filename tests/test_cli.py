"""End-to-end: the CLI writes a complete run folder, is reproducible, resumable, and fails cleanly."""

import html
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from safecompress.checkpoint import load_model
from safecompress.cli import main
from safecompress.data.split import MembershipSplit

RUN_FILES = {"config.yaml", "split.npz", "model.safetensors", "report.json", "log.txt"}
FAST = [
    "--preset",
    "ci",
    "--set",
    "data.name=digits",
    "--set",
    "method.name=dense",
    "--set",
    "train.epochs=2",
    "--set",
    "audit.enabled=false",
]
AUDITED = FAST[:-1] + ["audit.attacks=[loss,lira,nn]"]


def _run(args):
    return main(["run", *args])


def test_run_writes_every_file_and_same_seed_same_accuracy(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(AUDITED + ["--out", str(a)]) == 0
    assert "report:" in capsys.readouterr().out
    assert _run(AUDITED + ["--out", str(b)]) == 0
    assert RUN_FILES | {"audit.json", "scores.npz", "roc.png"} <= {p.name for p in a.iterdir()}
    ra, rb = (json.loads((d / "report.json").read_text()) for d in (a, b))
    assert ra["task"]["accuracy"] == rb["task"]["accuracy"]
    assert ra["task"]["train_accuracy"] == rb["task"]["train_accuracy"]
    for key in ("method", "dataset", "seed", "version", "timing", "model"):
        assert key in ra
    assert ra["model"]["parameters"] > 0 and ra["dataset"] == "digits" and ra["method"] == "dense"
    cfg = yaml.safe_load((a / "config.yaml").read_text())
    assert cfg["model"]["name"] == "cnn"  # "auto" resolved and saved
    split = MembershipSplit.load(a / "split.npz", n_total=ra["data"]["n_samples"])
    assert split.sizes() == ra["data"]["split"]
    assert load_model(a / "model.safetensors")  # loads without pickle
    assert "test accuracy" in (a / "log.txt").read_text()
    assert not (a / "checkpoint.safetensors").exists()
    assert set(ra["audit"]["attacks"]) == {"loss", "lira", "nn"}

    def numbers(audit):
        return {k: {m: v for m, v in a.items() if m != "wall_s"} for k, a in audit["attacks"].items()}

    assert numbers(ra["audit"]) == numbers(rb["audit"])  # same seed, same audit numbers
    assert ra["audit"]["worst"]["attack"] in ra["audit"]["attacks"]
    for m in ra["audit"]["attacks"].values():
        assert 0 <= m["auc"] <= 1 and len(m["auc_ci"]) == 2 and set(m["tpr_at_fpr"]) == {"0.001", "0.01", "0.1"}
    scores = np.load(a / "scores.npz")
    assert scores["is_member"].sum() == ra["audit"]["n_members"] == ra["data"]["split"]["audit_members"]


def test_audit_command_reaudits_and_compares(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(FAST + ["--out", str(a)]) == 0
    assert _run(FAST + ["--out", str(b), "--set", "train.epochs=4"]) == 0
    assert "audit" not in json.loads((a / "report.json").read_text())
    assert main(["audit", str(b), "--attacks", "loss,rmia", "--refs", "2"]) == 0
    assert main(["audit", str(a), "--attacks", "loss,rmia", "--refs", "2", "--compare", str(b)]) == 0
    out = capsys.readouterr().out
    assert "rmia" in out and "strongest" in out
    rep = json.loads((a / "report.json").read_text())
    assert set(rep["audit"]["attacks"]) == {"loss", "rmia"} and rep["audit"]["references"] == 2
    comp = json.loads((a / "compare.json").read_text())["attacks"]
    assert set(comp) == {"loss", "rmia"} and 0 <= comp["loss"]["members_more_exposed_in_this_run"] <= 1
    assert main(["audit", str(a), "--attacks", "lyra"]) == 2
    assert "did you mean 'lira'" in capsys.readouterr().err.lower()
    assert main(["audit", str(tmp_path / "missing")]) == 2


def test_existing_folder_needs_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "r"
    assert _run(FAST + ["--out", str(out)]) == 0
    before = (out / "report.json").read_bytes()
    assert _run(FAST + ["--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "report.json").read_bytes() == before  # nothing destroyed
    assert _run(FAST + ["--out", str(out), "--resume"]) == 0
    assert "already complete" in capsys.readouterr().out
    # resuming with a different config is refused
    assert _run(FAST + ["--out", str(out), "--resume", "--set", "seed=5"]) == 2
    assert "different configuration" in capsys.readouterr().err
    # a failing overwrite leaves the old run untouched
    assert _run(FAST + ["--out", str(out), "--overwrite", "--set", "data.split.train=0.9"]) == 2
    assert (out / "report.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".r.")]
    assert _run(FAST + ["--out", str(out), "--overwrite", "--set", "seed=3"]) == 0
    assert json.loads((out / "report.json").read_text())["seed"] == 3


def test_resume_after_kill_continues_to_the_same_result(tmp_path, kill_at_epoch):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    args = FAST[:-1] + ["audit.enabled=false", "--set", "train.epochs=4"]
    assert _run(args + ["--out", str(straight)]) == 0
    with kill_at_epoch(2):
        assert _run(args + ["--out", str(killed)]) == 130
    assert (killed / "checkpoint.safetensors").exists() and not (killed / "report.json").exists()
    assert _run(args + ["--out", str(killed), "--resume"]) == 0
    a, b = (json.loads((d / "report.json").read_text()) for d in (straight, killed))
    assert a["task"] == b["task"]
    assert "resumed from" in (killed / "log.txt").read_text()
    # report.json carries the per-epoch history, the epochs before the kill restored from the checkpoint
    assert [h["epoch"] for h in b["history"]] == [1, 2, 3, 4] and b["history"] == a["history"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--set", "data.nmae=digits"], "did you mean 'data.name'"),
        (["--set", "data.name=texas100", "--data-dir", "{tmp}"], "not found"),
        (["--set", "data.name=digits", "--set", "data.split.train=5000"], "impossible membership split"),
        (["--set", "data.name=purchase100-synth", "--set", "train.augment=on"], "needs image data"),
        (["--set", "data.name=npz"], "data.path"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, args, needle):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert _run(["--preset", "ci", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert needle in err.replace("\n", " ")
    if "--data-dir" in args:
        assert str(tmp_path) in err  # says where it looked
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()  # a run that never started leaves no folder behind


def test_console_script_exit_code_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: 2\n  lr_rate: 0.1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "safecompress", "run", "--config", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "unknown key" in proc.stderr and "Traceback" not in proc.stderr


def test_list_datasets_and_models(capsys):
    assert main(["list", "datasets", "--long"]) == 0
    out = capsys.readouterr().out
    for name in (
        "fashion-mnist",
        "digits",
        "purchase100-synth",
        "texas100-synth",
        "cifar10-synth",
        "cifar100-synth",
        "cifar10",
        "cifar100",
        "purchase100",
        "texas100",
        "imagenet100",
        "npz",
        "csv",
    ):
        assert name in out, name
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    for name in ("mlp", "cnn", "vgg-c", "resnet18"):
        assert name in out
    assert main(["list", "attacks"]) == 0
    out = capsys.readouterr().out
    for name in (
        "loss",
        "confidence",
        "entropy",
        "m_entropy",
        "nn",
        "top3",
        "shadow",
        "lira",
        "rmia",
        "whitebox",
        "grad_norm",
        "label_only",
    ):
        assert name in out
    assert main(["--help"]) == 0
    assert main(["run", "--help"]) == 0


def test_baseline_runs_beside_and_the_summary_shows_both(tmp_path, capsys):
    out = tmp_path / "sc"
    args = AUDITED + [
        "--set",
        "method.name=safecompress",
        "--set",
        "sparse.density=0.2",
        "--set",
        "model.name=mlp",
        "--set",
        "sparse.update_every=5",
        "--set",
        "baseline=rigl",
        "--out",
        str(out),
    ]
    assert _run(args) == 0
    text = capsys.readouterr().out
    assert "rigl (baseline)" in text and "strongest attack" in text
    rep = json.loads((out / "report.json").read_text())
    base = json.loads((out / "baseline-rigl" / "report.json").read_text())
    assert base["method"] == "rigl" and rep["method"] == "safecompress"
    assert rep["baseline"]["task"] == base["task"] and rep["baseline"]["audit_worst"] == base["audit"]["worst"]
    # the baseline shares the split: same data, same members
    assert (out / "split.npz").read_bytes() == (out / "baseline-rigl" / "split.npz").read_bytes()
    # a paired comparison over the same audit records, and one plain sentence of what was won and lost
    st = rep["baseline"]["comparison"]["strongest"]
    assert st["auc_verdict"] in ("less leaky", "leakier", "no detectable difference")
    lo, hi = st["delta_auc_ci"]
    assert lo <= st["delta_auc"] <= hi
    assert st["delta_auc"] == pytest.approx(rep["audit"]["worst"]["auc"] - base["audit"]["worst"]["auc"])
    assert "safecompress vs rigl:" in " ".join(text.split()) and st["auc_verdict"] in " ".join(text.split())
    page = (out / "report.html").read_text()
    assert "safecompress vs rigl:" in page
    # both runs' strongest attacks on one ROC figure, labelled with each run's own attack and AUC
    section = page.split("Strongest attack: this run against the baseline", 1)[1]
    figure = section.split("<table", 1)[0]  # the figure between the heading and the attack table
    assert figure.count("<svg") == 1 and "data:image/png" not in figure
    # one headline: the terminal table and report.html show the same rows with the same figures
    from rich.console import Console

    from safecompress.cli import _summary_table
    from safecompress.report.headline import headline
    from safecompress.report.schema import RunReport

    wide = Console(width=400, record=True)
    wide.print(_summary_table(RunReport.model_validate(rep), RunReport.model_validate(base)))
    terminal = wide.export_text()
    for row in headline(rep):
        assert row.label in terminal and html.escape(row.label) in page
        if row.unresolved is None:
            assert row.text in terminal and html.escape(row.text) in page
    assert f"{st['delta_auc']:+.3f}" in terminal  # the paired comparison reaches the terminal, not only the HTML
    ratio = rep["timing"]["train_s"] / base["timing"]["train_s"]
    assert "train time vs rigl" in terminal and f"{ratio:.2f}×" in terminal
    assert _run(args[:-2] + ["--out", str(out), "--resume"]) == 0
    assert "already complete" in capsys.readouterr().out


def test_no_config_and_no_preset_means_the_default_job(monkeypatch):
    import safecompress.runner

    seen = []

    def fake_run(cfg, out, mode, callbacks=(), executor=None):
        seen.append(cfg)
        raise KeyboardInterrupt  # stop before any training

    monkeypatch.setattr(safecompress.runner, "run_experiment", fake_run)
    assert main(["run", "--out", "unused"]) == 130
    cfg = seen[0]
    assert (cfg.method.name, cfg.data.name, cfg.sparse.density, cfg.baseline) == (
        "safecompress",
        "purchase100-synth",
        0.05,
        "rigl",
    )
    assert cfg.safecompress.simulate == ["nn"] and cfg.audit.enabled


@pytest.mark.parametrize(
    "what", ["datasets", "models", "attacks", "methods", "defences", "defenses", "presets", "suites"]
)
def test_every_list_prints_json_objects_for_scripts(what, capsys):
    assert main(["list", what, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(isinstance(r, dict) and r["name"] for r in rows)
    assert all(k == k.lower() and " " not in k and "?" not in k for k in rows[0])  # keys a script can use


def test_list_presets_and_suites_name_what_run_and_bench_accept(capsys):
    from safecompress.benchmark import SUITES
    from safecompress.config import PRESETS

    assert main(["list", "presets", "--json"]) == 0
    presets = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in presets] == list(PRESETS)
    assert all(p["description"].startswith(p["name"] + ":") for p in presets)  # each file's own first sentence
    assert main(["list", "suites", "--json"]) == 0
    suites = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert set(suites) == set(SUITES)
    assert int(suites["ablation"]["cells"]) == 18  # RigL, N = 1, 2, 4, 8 and N = 4 with fine-tuning; 3 seeds


def test_list_datasets_fits_a_narrow_terminal_and_says_bring_your_own(capsys, monkeypatch):
    from rich.console import Console

    import safecompress.cli as cli_mod

    monkeypatch.setattr(cli_mod, "out_console", Console(width=80, force_terminal=False))
    assert main(["list", "datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines if line.startswith(("│", "┃"))) <= 80
    row = {line.split("│")[1].strip(): line for line in lines if line.startswith("│")}
    assert set(row) >= {"npz", "csv", "purchase100-synth", "cifar10"}  # one line per dataset: nothing folded
    assert "bring your own" in row["npz"] and "bring your own" in row["csv"] and "not found" not in row["npz"]
    assert "generated" in row["purchase100-synth"]


def test_list_methods_shows_plain_text_not_restructuredtext(capsys):
    assert main(["list", "methods", "--json"]) == 0
    for m in json.loads(capsys.readouterr().out):
        assert "``" not in m["description"] and ":func:" not in m["description"] and ":class:" not in m["description"]


def test_verbose_is_accepted_after_the_subcommand(capsys):
    import logging

    assert main(["list", "models", "-v"]) == 0
    handler = logging.getLogger("safecompress").handlers[0]
    assert handler.level == logging.INFO
    assert main(["list", "models"]) == 0  # without it, only warnings
    assert logging.getLogger("safecompress").handlers[0].level == logging.WARNING
