"""Plugins from single files outside src/: discovered through SAFECOMPRESS_PLUGINS, listed, run in an audit
and reported; a broken plugin is a clear error naming it. Each CLI call runs in a subprocess so the
toy plugins never enter this test session's registries."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import safecompress
from safecompress import plugins
from safecompress.errors import PluginError

SRC = str(Path(safecompress.__file__).resolve().parents[1])

TOY_ATTACK = '''
"""A toy membership attack: score = -loss of the target's logits (members have low loss)."""
import torch.nn.functional as F

from safecompress.attacks import Attack, register_attack


@register_attack("toy")
class ToyLossAttack(Attack):
    citation = "test plugin"
    needs_references = 0

    def score(self, target, X, y):
        return (-F.cross_entropy(target.logits(X), y, reduction="none")).double().numpy()
'''

TOY_DEFENCE = '''
"""A toy training-time defence that changes nothing (it only has to be found and configured)."""
from safecompress.defences import Defence, register_defence


@register_defence("toy_defence")
class ToyDefence(Defence):
    description = "a plugin defence that does nothing"
    defaults = {"strength": 0.5}
'''


def _cli(args, plugin_paths, cwd):
    env = {
        **os.environ,
        "SAFECOMPRESS_PLUGINS": ",".join(str(p) for p in plugin_paths),
        "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    code = "import sys; from safecompress.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=240
    )


@pytest.fixture
def toy_plugins(tmp_path):
    attack, defence = tmp_path / "toy_attack.py", tmp_path / "toy_defence.py"
    attack.write_text(textwrap.dedent(TOY_ATTACK))
    defence.write_text(textwrap.dedent(TOY_DEFENCE))
    return [attack, defence]


def test_single_file_plugins_are_listed(tmp_path, toy_plugins):
    attacks = _cli(["list", "attacks"], toy_plugins, tmp_path)
    assert attacks.returncode == 0, attacks.stderr
    names = {line.split()[1] for line in attacks.stdout.splitlines() if line.startswith("│")}
    assert {"toy", "loss", "lira"} <= names
    defences = _cli(["list", "defences"], toy_plugins, tmp_path)
    assert defences.returncode == 0, defences.stderr
    assert "toy_defence" in defences.stdout and "strength=0.5" in defences.stdout


def test_plugin_attack_and_defence_run_in_an_audit_and_reach_the_reports(tmp_path, toy_plugins):
    out = tmp_path / "run"
    args = [
        "run",
        "--preset",
        "ci",
        "--set",
        "data.name=digits",
        "--set",
        "model.name=mlp",
        "--set",
        "method.name=rigl",
        "--set",
        "train.epochs=2",
        "--set",
        "audit.attacks=[loss,toy]",
        "--set",
        "defence.name=toy_defence",
        "--out",
        str(out),
    ]
    result = _cli(args, toy_plugins, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert set(report["audit"]["attacks"]) == {"loss", "toy"}
    assert report["defence"] == {"name": "toy_defence", "params": {"strength": 0.5}}
    toy, loss = report["audit"]["attacks"]["toy"], report["audit"]["attacks"]["loss"]
    assert toy["auc"] == pytest.approx(loss["auc"])  # same score as the built-in loss attack
    assert "></span>toy</td>" in (out / "report.html").read_text()  # its row in the attack table (after its colour)


def test_broken_plugin_is_a_clear_error_naming_it(tmp_path):
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("import a_module_that_does_not_exist_xyz\n")
    result = _cli(["list", "attacks"], [broken], tmp_path)
    assert result.returncode == 2
    assert "broken_plugin.py" in result.stderr and "a_module_that_does_not_exist_xyz" in result.stderr
    assert "Traceback" not in result.stderr
    missing = _cli(["list", "methods"], ["no_such_plugin_module"], tmp_path)
    assert missing.returncode == 2 and "no_such_plugin_module" in missing.stderr


def test_plugins_load_once_and_lazily(tmp_path, monkeypatch):
    counter = tmp_path / "count_plugin.py"
    counter.write_text("import builtins\nbuiltins._sc_plugin_loads = getattr(builtins, '_sc_plugin_loads', 0) + 1\n")
    import builtins

    from safecompress.attacks import ATTACKS

    monkeypatch.setenv("SAFECOMPRESS_PLUGINS", str(counter))
    plugins.reset()
    try:
        assert "loss" in ATTACKS and ATTACKS.names()  # first lookups load the plugin ...
        assert builtins._sc_plugin_loads == 1  # ... once
        assert any("count_plugin.py" in label for label in plugins.loaded_plugins())
        monkeypatch.setenv("SAFECOMPRESS_PLUGINS", str(tmp_path / "missing.py"))
        plugins.reset()
        with pytest.raises(PluginError, match="missing.py"):
            ATTACKS.get("loss")
        with pytest.raises(PluginError, match="missing.py"):  # still failing, still named
            ATTACKS.names()
    finally:
        monkeypatch.undo()  # the environment as it was, then load (again) what it names
        plugins.reset()
        del builtins._sc_plugin_loads
    assert "loss" in ATTACKS


def test_packages_import_every_module_in_sorted_order():
    from safecompress.attacks import ATTACKS
    from safecompress.methods import METHODS

    attack_modules = plugins.import_package("safecompress.attacks", safecompress.attacks.__path__)
    assert attack_modules == sorted(attack_modules) and {"metric", "lira", "rmia"} <= set(attack_modules)
    assert {"loss", "lira", "rmia", "whitebox"} <= set(ATTACKS.names())
    assert {"dense", "rigl", "safecompress", "set"} <= set(METHODS.names())


def test_entry_point_plugins_are_loaded_and_named_when_broken(monkeypatch):
    class FakeEntryPoint:
        def __init__(self, name, value):
            self.name, self.value = name, value

        def load(self):
            import importlib

            return importlib.import_module(self.value)

    seen = []
    monkeypatch.delenv("SAFECOMPRESS_PLUGINS", raising=False)
    monkeypatch.setattr(
        plugins.importlib.metadata, "entry_points", lambda group: seen.append(group) or [FakeEntryPoint("ok", "json")]
    )
    plugins.reset()
    try:
        plugins.load_plugins()
        assert seen == ["safecompress.plugins"] and any("'ok'" in p for p in plugins.loaded_plugins())
        monkeypatch.setattr(
            plugins.importlib.metadata,
            "entry_points",
            lambda group: [FakeEntryPoint("bad", "no_such_entry_point_module_xyz")],
        )
        plugins.reset()
        with pytest.raises(PluginError, match="'bad'.*no_such_entry_point_module_xyz"):
            plugins.load_plugins()
    finally:
        monkeypatch.undo()
        plugins.reset()


def test_plugin_attack_without_references_is_an_in_loop_simulator(tmp_path, toy_plugins):
    out = tmp_path / "sc"
    args = [
        "run",
        "--preset",
        "ci",
        "--set",
        "data.name=digits",
        "--set",
        "model.name=mlp",
        "--set",
        "train.epochs=4",
        "--set",
        "method.name=safecompress",
        "--set",
        "data.split.train=0.5",
        "--set",
        "data.split.population=0.05",
        "--set",
        "sparse.update_every=10",
        "--set",
        "safecompress.simulate=[toy,loss]",
        "--set",
        "audit.enabled=false",
        "--out",
        str(out),
    ]
    result = _cli(args, toy_plugins, tmp_path)
    assert result.returncode == 0, result.stderr
    rounds = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert rounds
    for r in rounds:
        for c in r["candidates"]:
            # the toy score is the loss attack's: the same AUC on the same probe half
            assert c["attack_auc"]["toy"] == pytest.approx(c["attack_auc"]["loss"])
            assert 0 <= c["attack_tpr"]["toy"] <= 1


TOY_FAMILY = '''
"""A toy attack of a new family: how much more accurate the model is on members than on non-members."""
from safecompress.attacks import Attack, AttackResult, register_attack


@register_attack("gap")
class AccuracyGap(Attack):
    family = "gap"
    title = "accuracy gap"
    needs_references = 0
    simulatable = True
    citation = "test plugin"

    def evaluate(self, target, queries):
        X, y, m = queries.X[: queries.n], queries.y[: queries.n], queries.is_member
        correct = (target.logits(X).argmax(1) == y).double().numpy()
        gap = float(correct[m].mean() - correct[~m].mean())
        if queries.in_loop:
            return AttackResult({"auc": 0.5 + gap / 2, "advantage": max(gap, 0.0)})
        metrics = {"gap": round(gap, 4), "accuracy_members": round(float(correct[m].mean()), 4)}
        return AttackResult(metrics, summary=self.summarize(metrics))

    @classmethod
    def summarize(cls, entry):
        return f"members {entry['gap']:+.4f} more accurate"
'''


def test_plugin_attack_of_a_new_family_is_listed_audited_reported_and_simulated(tmp_path):
    plugin = tmp_path / "gap_attack.py"
    plugin.write_text(textwrap.dedent(TOY_FAMILY))
    listed = _cli(["list", "attacks"], [plugin], tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[1]: line for line in listed.stdout.splitlines() if line.startswith("│")}
    assert "gap" in rows and " gap " in rows["gap"] and "yes" in rows["gap"]  # its family; simulatable
    out = tmp_path / "sc"
    args = ["run", "--preset", "ci", "--set", "data.name=digits", "--set", "model.name=mlp", "--set", "train.epochs=4"]
    args += ["--set", "method.name=safecompress", "--set", "data.split.train=0.5"]
    args += ["--set", "data.split.population=0.05", "--set", "sparse.update_every=10"]
    args += ["--set", "safecompress.simulate=[gap,loss]", "--set", "audit.attacks=[loss,gap]", "--out", str(out)]
    result = _cli(args, [plugin], tmp_path)
    assert result.returncode == 0, result.stderr
    audit = json.loads((out / "report.json").read_text())["audit"]
    assert set(audit["attacks"]) == {"loss"}  # not a membership attack: its own entry
    gap = audit["gap"]
    assert gap["family"] == "gap" and -1 <= gap["gap"] <= 1 and gap["wall_s"] >= 0
    line = f"members {gap['gap']:+.4f} more accurate"
    assert f"<td>accuracy gap</td><td>{line}</td>" in (out / "report.html").read_text()
    assert "accuracy gap" in result.stdout  # the CLI's summary row
    rounds = [json.loads(r) for r in (out / "rounds.jsonl").read_text().splitlines()]
    assert rounds
    for c in (c for r in rounds for c in r["candidates"]):  # an in-loop simulator beside loss
        assert set(c["attack_auc"]) == {"gap", "loss"} and c.get("attack_tpr", {}).get("gap") is None
