"""Issue 17: `safecompress audit RUN --attacks loss` merges into the run's earlier audit instead of discarding it."""

import errno
import json
import shutil

import numpy as np
import pytest

from folders import snapshot
from runargs import ci_args
from safecompress import metrics
from safecompress.attacks.metric import ConfidenceAttack, LossAttack
from safecompress.cli import main
from safecompress.fileio import load_npz
from safecompress.provenance import code_version

# a fully audited tiny run: three membership attacks (two resting on the 2 reference models), and canaries
AUDITED = ci_args(
    {
        "method.name": "dense",
        "train.epochs": 3,
        "audit.enabled": "true",
        "audit.attacks": "[loss,confidence,lira]",
        "audit.refs": 2,
        "audit.bootstrap": 20,
        "audit.canaries": 20,
    }
)
FILES = ("report.json", "audit.json", "scores.npz", "roc.png", "report.html")


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    out = tmp_path_factory.mktemp("merge") / "run"
    assert main(["run", *AUDITED, "--out", str(out)]) == 0
    return out


@pytest.fixture
def run(audited, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(audited, dest)
    return dest


def _report(folder):
    return json.loads((folder / "report.json").read_text())


def _files(folder):
    return {name: (folder / name).read_bytes() for name in FILES}


def _numbers(entry):
    return {k: v for k, v in entry.items() if k != "wall_s"}


def test_reaudit_keeps_the_other_attacks_and_recomputes_the_strongest_over_all(run, monkeypatch):
    before, scores_before = _report(run), load_npz(run / "scores.npz")
    signal = LossAttack.signal
    monkeypatch.setattr(LossAttack, "signal", lambda self, logits, y: -signal(self, logits, y))  # a new loss
    assert main(["audit", str(run), "--attacks", "loss"]) == 0
    after, scores = _report(run), load_npz(run / "scores.npz")
    old, new = before["audit"], after["audit"]
    # the attacks not re-run: their report.json entries byte for byte, their scores array for array
    text = (run / "report.json").read_text()
    for name in ("confidence", "lira"):
        assert json.dumps(new["attacks"][name]) == json.dumps(old["attacks"][name])
        assert json.dumps(new["canaries"]["attacks"][name]) == json.dumps(old["canaries"]["attacks"][name])
        assert f'"{name}": ' + json.dumps(old["attacks"][name], indent=2).replace("\n", "\n      ") in text
        for key in (f"score_{name}", f"canary_score_{name}"):
            assert np.array_equal(scores[key], scores_before[key])
    # loss: the new (reversed) attack's entry and scores
    assert new["attacks"]["loss"]["auc"] == pytest.approx(1 - old["attacks"]["loss"]["auc"])
    assert np.allclose(scores["score_loss"], -scores_before["score_loss"])
    assert list(new["attacks"]) == ["loss", "confidence", "lira"] and new["references"] == 2
    # everything that depends on the set of attacks, recomputed over the merged set
    merged_scores = {k: scores[f"score_{k}"] for k in new["attacks"]}
    worst = metrics.worst_case(new["attacks"])
    assert {k: new["worst"][k] for k in worst} == worst and worst["attack"] == "loss" != old["worst"]["attack"]
    chance = metrics.max_auc_chance(merged_scores, scores["is_member"], n_permutations=200, seed=0)
    assert new["worst"]["chance"] == chance and chance["observed_max_auc"] == pytest.approx(worst["auc"])
    assert new["worst"]["significant"] == (chance["p_value"] < 0.05)
    assert new["per_class"]["attack"] == "loss" and new["per_class"] != old["per_class"]
    assert new["canaries"]["worst"] == metrics.worst_case(new["canaries"]["attacks"]) | {
        "tpr_at_lowest_fpr": new["canaries"]["worst"]["tpr_at_lowest_fpr"]
    }
    # provenance: loss from this audit, the others kept from the run's own audit (which recorded none)
    prov = new["provenance"]
    assert list(prov) == ["loss", "confidence", "lira"]
    assert prov["loss"]["references"] == 2 and prov["loss"]["command"] == "safecompress audit"
    assert prov["loss"]["code"] == code_version() and prov["loss"]["audited_at"].endswith("+00:00")
    assert prov["lira"] == {"references": 2, "audited_at": None, "command": None, "code": None}
    # every file tells the same story
    assert json.loads((run / "audit.json").read_text()) == new
    page = (run / "report.html").read_text()
    assert "loss, confidence, lira (3 attacks)" in page and "confidence, lira from the earlier audit" in page
    assert {k for k in scores if k.startswith("score_")} == {"score_loss", "score_confidence", "score_lira"}


def test_merging_an_identical_reaudit_gives_back_the_full_audit(run, capsys):
    before = _report(run)["audit"]
    assert main(["audit", str(run), "--attacks", "loss"]) == 0
    after = _report(run)["audit"]
    assert _numbers(after["attacks"]["loss"]) == _numbers(before["attacks"]["loss"])
    for key in ("worst", "per_class", "canaries", "references", "n_members", "resolution"):
        assert after[key] == before[key], key
    out = " ".join(capsys.readouterr().out.split())
    assert "audited with: loss, confidence, lira (3 attacks) (2 reference models; merged:" in out


def test_reference_models_that_differ_are_refused_before_anything_is_written(run, capsys):
    before = snapshot(run, ignore_lock=True)
    assert main(["audit", str(run), "--attacks", "loss", "--refs", "4"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "loss would rest on 4 reference models but confidence, lira" in err and "rest on 2" in err
    assert "--refs 2" in err and "--replace" in err and "Traceback" not in err
    assert snapshot(run, ignore_lock=True) == before  # no file touched, no reference model trained
    # an attack that uses no reference model merges whatever --refs says
    assert main(["audit", str(run), "--attacks", "calibrated", "--refs", "4"]) == 0
    audit = _report(run)["audit"]
    assert list(audit["attacks"]) == ["loss", "confidence", "lira", "calibrated"] and audit["references"] == 2
    assert audit["provenance"]["calibrated"]["references"] == 0


def test_replace_discards_the_earlier_audit(run, capsys):
    assert main(["audit", "--scores", str(run / "scores.npz"), "--replace"]) == 2  # only for run folders
    assert "--replace applies to re-auditing a run folder" in capsys.readouterr().err
    assert main(["audit", str(run), "--attacks", "loss", "--refs", "4", "--replace"]) == 0
    audit = _report(run)["audit"]
    assert list(audit["attacks"]) == ["loss"] and audit["worst"]["attack"] == "loss" and audit["references"] == 4
    assert list(audit["canaries"]["attacks"]) == ["loss"] and list(audit["provenance"]) == ["loss"]
    assert {k for k in load_npz(run / "scores.npz") if "score_" in k} == {"score_loss", "canary_score_loss"}


def test_an_earlier_audit_without_its_scores_is_not_merged(run, capsys):
    (run / "scores.npz").unlink()
    before = snapshot(run, ignore_lock=True)
    assert main(["audit", str(run), "--attacks", "loss"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "scores.npz cannot be read" in err and "--attacks loss,confidence,lira" in err and "--replace" in err
    assert snapshot(run, ignore_lock=True) == before


def test_a_failing_reaudit_leaves_the_earlier_audit_intact(run, monkeypatch, capsys):
    before = _files(run)

    def fail(self, target, X, y):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(ConfidenceAttack, "score", fail)  # after loss has been re-run
    with pytest.raises(RuntimeError, match="injected"):
        main(["audit", str(run), "--attacks", "loss,confidence"])
    assert _files(run) == before
    monkeypatch.undo()

    # a disk that fills up while the new files are written: none replaces its earlier version
    import safecompress.fileio as fileio

    staged, calls = fileio._staged, []

    def full(path, data):
        calls.append(path.name)
        if path.name == "report.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return staged(path, data)

    monkeypatch.setattr(fileio, "_staged", full)
    assert main(["audit", str(run), "--attacks", "loss"]) == 2
    assert "no space left" in capsys.readouterr().err
    assert calls[:3] == ["audit.json", "scores.npz", "roc.png"] and calls[-1] == "report.json"
    assert _files(run) == before and not list(run.glob(".*.tmp"))


def test_a_reaudit_of_the_run_refreshes_its_baseline_comparison_and_flags_a_baseline_audited_differently(
    audited, tmp_path
):
    from safecompress.baseline import baseline_summary

    main_dir = tmp_path / "main"
    shutil.copytree(audited, main_dir)
    shutil.copytree(audited, main_dir / "baseline-rigl")  # the same records: a stand-in for a baseline run
    base = _report(main_dir / "baseline-rigl")
    (main_dir / "baseline-rigl" / "report.json").write_text(json.dumps({**base, "method": "rigl"}, indent=2))
    report = _report(main_dir)
    report["baseline"] = baseline_summary("rigl", main_dir, _report(main_dir / "baseline-rigl"), True, 20, 0)
    (main_dir / "report.json").write_text(json.dumps(report, indent=2))
    assert main(["audit", str(main_dir / "baseline-rigl"), "--attacks", "loss", "--replace"]) == 0
    assert main(["audit", str(main_dir), "--attacks", "loss"]) == 0
    rep, base = _report(main_dir), _report(main_dir / "baseline-rigl")
    assert rep["baseline"]["audit_worst"] == base["audit"]["worst"]
    assert set(rep["baseline"]["comparison"]["attacks"]) == {"loss"}  # the attacks both audits ran
    page = " ".join((main_dir / "report.html").read_text().split())
    assert "not comparable: audited differently" in page
    assert "attacks only in dense: confidence, lira" in page and "Beware, not comparable" in page


def test_side_by_side_flags_runs_audited_with_other_attacks_or_reference_models(audited):
    from rich.console import Console

    from safecompress.cli import _summary_table
    from safecompress.report.headline import NOT_COMPARABLE, side_by_side
    from safecompress.report.schema import RunReport

    rep = RunReport.model_validate(_report(audited))
    same = RunReport.model_validate({**_report(audited), "method": "rigl"})
    assert [row.label for row in side_by_side(rep, same)[0][1]] == [row.label for row in rep.headline()]
    other = _report(audited)
    other["method"], other["audit"]["references"] = "rigl", 4
    del other["audit"]["attacks"]["confidence"]
    (col, rows), _ = side_by_side(rep, RunReport.model_validate(other))
    flag = next(row for row in rows if row.text == NOT_COMPARABLE)
    assert flag.label == "audit vs rigl" and rows.index(flag) == [r.label for r in rows].index("strongest attack") - 1
    assert flag.note == "attacks only in dense: confidence; reference models 2 vs 4"
    console = Console(width=400, record=True)
    console.print(_summary_table(rep, RunReport.model_validate(other)))
    assert NOT_COMPARABLE in console.export_text()


def test_merge_keeps_and_replaces_the_attacks_of_other_families():
    from safecompress.audit_merge import Earlier, merge
    from safecompress.auditor import AuditResult, strongest

    rng = np.random.default_rng(0)
    is_member, labels = np.repeat([True, False], 20), np.tile([0, 1], 20)
    s = {k: rng.random(40) for k in ("a", "b")}

    def entry(score):
        return metrics.membership_metrics(score, is_member, n_bootstrap=10, seed=0)

    def audit(scores, others):
        attacks = {k: entry(v) for k, v in scores.items()}
        worst, per_class = strongest(attacks, scores, is_member, labels, 10, 0)
        return {
            "attacks": attacks,
            "worst": worst,
            "per_class": per_class,
            "n_members": 20,
            "n_nonmembers": 20,
            "references": 2,
            "resolution": {},
            "timing": {"references_s": 1.0},
            **others,
        }

    old = audit(s, {"attribute": {"family": "attribute", "x": 1}, "inversion": {"family": "inversion", "x": 2}})
    old_scores = {"is_member": is_member, "labels": labels, **{f"score_{k}": v for k, v in s.items()}}
    new_s = {"b": rng.random(40)}
    result = AuditResult(audit(new_s, {"inversion": {"family": "inversion", "x": 3}}), new_s, is_member, labels)
    merged = merge(Earlier(old, old_scores), result, 2, 10, 0).report
    assert merged["attribute"] == {"family": "attribute", "x": 1} and merged["inversion"]["x"] == 3
    assert merged["attacks"]["a"] == old["attacks"]["a"] and merged["attacks"]["b"] == result.report["attacks"]["b"]
    assert list(merged["provenance"]) == ["a", "b", "attribute", "inversion"]
    assert merged["provenance"]["attribute"]["references"] == 0 and merged["provenance"]["a"]["references"] == 2
    assert merged["worst"] == strongest(merged["attacks"], {"a": s["a"], **new_s}, is_member, labels, 10, 0)[0]
    # every membership attack re-run: the earlier scores are not needed, the attacks of other families still kept
    result = AuditResult(audit(s, {}), s, is_member, labels)
    merged = merge(Earlier(old, None, "gone"), result, 2, 10, 0).report
    assert merged["attribute"] == old["attribute"] and merged["inversion"] == old["inversion"]
    assert merged["attacks"] == result.report["attacks"] and merged["worst"] == result.report["worst"]


def test_scores_left_by_an_interrupted_reaudit_are_not_merged_with_the_older_report(run, capsys):
    """report.json and scores.npz are renamed one after the other: a re-audit killed between the two leaves new
    scores beside the old report, which the next merge must refuse rather than mix."""
    older = (run / "report.json").read_bytes()
    assert main(["audit", str(run), "--attacks", "loss"]) == 0
    scores_id = _report(run)["audit"]["scores_id"]
    assert str(load_npz(run / "scores.npz")["scores_id"]) == scores_id
    (run / "report.json").write_bytes(older)  # the kill: the new scores.npz is in place, report.json is not
    capsys.readouterr()
    before = snapshot(run, ignore_lock=True)
    assert main(["audit", str(run), "--attacks", "loss"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "another audit than report.json" in err and "--replace" in err
    assert snapshot(run, ignore_lock=True) == before


def test_scores_of_other_records_are_refused_before_any_attack_runs(run, monkeypatch, capsys):
    """An earlier scores.npz whose records are not the run's audit records (an edited file) cannot be merged: the
    re-audit stops before training or attacking anything, and writes nothing."""
    from safecompress.fileio import npz_bytes

    arrays = dict(load_npz(run / "scores.npz"))
    arrays["labels"] = (arrays["labels"] + 1) % 4  # other records: the labels no longer match the split's
    (run / "scores.npz").write_bytes(npz_bytes(**arrays))
    ran = []
    monkeypatch.setattr(LossAttack, "fit", lambda self, knowledge: ran.append("loss") or self)
    before = snapshot(run, ignore_lock=True)
    assert main(["audit", str(run), "--attacks", "loss"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "scored other records" in err and "--replace" in err
    after = snapshot(run, ignore_lock=True)
    assert ran == []  # no attack was fitted (and so no reference model trained for one)
    # only log.txt grew (it records the attempt); every other file is as it was
    assert {k: v for k, v in after.items() if k != "log.txt"} == {k: v for k, v in before.items() if k != "log.txt"}
