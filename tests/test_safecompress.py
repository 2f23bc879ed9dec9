"""The SafeCompress loop: rounds of candidates tested by simulated attackers on probe data only."""

import json

import pytest

from runargs import ci_args, ci_overrides
from safecompress.cli import main
from safecompress.errors import ConfigError
from safecompress.methods.safecompress.objectives import Candidate, select
from safecompress.methods.safecompress.simulate import Simulator

SC = {
    "train.lr": 0.005,
    "data.split.train": 0.5,
    "data.split.population": 0.05,
    "train.epochs": 4,
    "sparse.update_every": 10,
    "method.name": "safecompress",
    "sparse.density": 0.2,
}
FAST = ci_args(SC)


def _rounds(folder):
    return [json.loads(line) for line in (folder / "rounds.jsonl").read_text().splitlines()]


def test_rounds_log_n_candidates_and_the_objective_choice(tmp_path):
    out = tmp_path / "sc"
    assert main(["run", *FAST, "--out", str(out)]) == 0
    rounds = _rounds(out)
    assert len(rounds) >= 2
    for r in rounds:
        assert len(r["candidates"]) == 4
        assert sum(c["chosen"] for c in r["candidates"]) == 1
        cands = [Candidate(c["val_accuracy"], c["attack_auc"], c["attack_advantage"]) for c in r["candidates"]]
        assert select(cands, "weighted", 1.0)[0] == r["chosen"]  # the logged choice is the objective's argmax
        assert set(r["candidates"][0]["attack_auc"]) == {"nn"}
    rep = json.loads((out / "report.json").read_text())
    assert rep["compression"]["density"] == pytest.approx(0.2, abs=1e-3)
    assert rep["schema_version"] == 1
    assert rep["method_details"]["safecompress"]["simulate"] == ["nn"]


def test_mmia_with_several_heterogeneous_simulators(tmp_path):
    out = tmp_path / "mmia"
    assert (
        main(
            [
                "run",
                *FAST,
                "--set",
                "safecompress.simulate=[nn,whitebox,loss]",
                "--set",
                "safecompress.candidates=[{prune: magnitude, grow: gradient, fraction: 0.3}, "
                "{prune: random, grow: random, fraction: 0.5}]",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    r = _rounds(out)[0]
    assert len(r["candidates"]) == 2 and set(r["candidates"][0]["attack_auc"]) == {"nn", "whitebox", "loss"}


def test_resume_after_kill_gives_the_same_report(tmp_path, kill_at_epoch):
    audited = ci_args(
        {**SC, "audit.enabled": "true", "audit.attacks": "[loss,nn,lira]", "audit.refs": 2, "audit.bootstrap": 20}
    )
    assert main(["run", *audited, "--out", str(tmp_path / "a")]) == 0
    with kill_at_epoch(2):
        assert main(["run", *audited, "--out", str(tmp_path / "b")]) == 130
    assert main(["run", *audited, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    assert a["task"] == b["task"] and a["compression"] == b["compression"]

    def numbers(rep):  # every audit number except timings
        return {k: {m: v for m, v in at.items() if m != "wall_s"} for k, at in rep["audit"]["attacks"].items()}

    assert numbers(a) == numbers(b)  # the audit of the resumed run is identical too
    assert _rounds(tmp_path / "a") == _rounds(tmp_path / "b")


def test_simulator_rejects_attacks_it_cannot_run_in_the_loop():
    with pytest.raises(ConfigError, match="cannot be simulated"):
        Simulator("lira", 10, "tabular")


def test_bad_safecompress_config():
    from safecompress.config import load_config

    with pytest.raises(ConfigError) as exc:
        load_config(overrides=["safecompress.simulate=[nnn]", "safecompress.objective=paretto"])
    text = str(exc.value)
    assert "did you mean 'nn'" in text.lower() and "pareto" in text


def test_minmax_sign_model_step_lowers_attackers_member_score():
    import torch

    from safecompress.adversarial import AdversarialRegularizer
    from safecompress.config import TrainConfig
    from safecompress.models import ModelSpec, build_model
    from safecompress.train import Trainer

    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(64, 10, generator=g), torch.randint(0, 3, (64,), generator=g)
    Xo, yo = torch.randn(64, 10, generator=g), torch.randint(0, 3, (64,), generator=g)
    model = build_model(ModelSpec("mlp", (10,), 3, width=0.1), 0)
    reg = AdversarialRegularizer(3, (Xo, yo), beta=5.0, k=3, seed=0, lr=1e-2)
    trainer = Trainer(
        model,
        TrainConfig(epochs=1, batch_size=64, optimizer="sgd", lr=0.5, momentum=0.0, weight_decay=0.0),
        seed=0,
        device=torch.device("cpu"),
        callbacks=[reg],
    )
    # warm the attacker up against the current model, then take one model step with CE switched off
    for _ in range(5):
        reg._attacker_steps(trainer, X, y, model(X))
    trainer.loss_fn = lambda logits, yb: logits.sum() * 0.0
    with torch.no_grad():
        before = torch.sigmoid(reg.member_score(model(X), y)).mean()
    reg._attacker_steps = lambda *a: None  # freeze the attacker: judge the model step alone
    trainer.train_step(X, y)
    with torch.no_grad():
        after = torch.sigmoid(reg.member_score(model(X), y)).mean()
    assert after < before


def test_adversarial_safecompress_runs(tmp_path):
    out = tmp_path / "adv"
    assert (
        main(
            [
                "run",
                *FAST,
                "--set",
                "safecompress.adversarial.enabled=true",
                "--set",
                "safecompress.adversarial.warmup=0.1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads((out / "report.json").read_text())["task"]["accuracy"] > 0.2


def test_privacy_aware_leakage_candidate(tmp_path):
    out = tmp_path / "leak"
    assert (
        main(
            [
                "run",
                *FAST,
                "--set",
                "safecompress.candidates=[{prune: leakage, grow: gradient, fraction: 0.3}, "
                "{prune: magnitude, grow: gradient, fraction: 0.3}]",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert _rounds(out)[0]["candidates"][0]["strategy"]["prune"] == "leakage"


def test_leakage_criterion_drops_the_gap_carrying_weight():
    import torch

    from safecompress.sparse.criteria import PRUNE, LayerState

    w = torch.tensor([1.0, 1.0, 0.5])
    s = LayerState(
        w,
        torch.ones(3, dtype=torch.bool),
        None,
        None,
        torch.ones(3, dtype=torch.bool),
        torch.Generator(),
        gap_grad=torch.tensor([0.0, 2.0, 0.0]),
    )
    assert int(PRUNE.get("leakage")(s).argmin()) == 1  # equal magnitude, but weight 1 carries the gap
    with pytest.raises(RuntimeError, match="SafeCompress only"):
        PRUNE.get("leakage")(LayerState(w, s.mask, None, None, s.mask, torch.Generator()))


def test_candidate_finetuning_keeps_masks_and_reports_overhead(tmp_path):
    out = tmp_path / "ft"
    assert main(["run", *FAST, "--set", "safecompress.finetune_steps=3", "--out", str(out)]) == 0
    rounds = _rounds(out)
    assert all(len(r["candidates"]) == 4 for r in rounds)
    rep = json.loads((out / "report.json").read_text())
    assert rep["compression"]["density"] == pytest.approx(0.2, abs=1e-3)  # fine-tuning never regrows weights
    t = rep["timing"]
    assert t["rounds_s"] > 0 and t["sparse_training_s"] > 0
    assert t["overhead_x"] == pytest.approx(t["train_s"] / t["sparse_training_s"], rel=1e-2)
    # fine-tuned candidates differ from untuned ones: same seed without fine-tuning gives other val scores
    plain = tmp_path / "plain"
    assert main(["run", *FAST, "--out", str(plain)]) == 0
    assert [c["val_accuracy"] for c in rounds[0]["candidates"]] != [
        c["val_accuracy"] for c in _rounds(plain)[0]["candidates"]
    ]
    # the chosen candidate's fine-tuning steps are training steps: the main training skipped as many batches,
    # and the rounds happened at the same steps as without fine-tuning (the budget and schedule are RigL's)
    assert [r["steps_counted"] for r in rounds] == [3] * len(rounds)
    assert rep["method_details"]["safecompress"]["finetune_steps_counted"] == 3 * len(rounds)
    assert [r["step"] for r in rounds] == [r["step"] for r in _rounds(plain)]
    assert (
        json.loads((plain / "report.json").read_text())["method_details"]["safecompress"]["finetune_steps_counted"] == 0
    )


def test_live_progress_shows_round_accuracy_and_attack_success(tmp_path, capsys):
    from rich.console import Console

    from safecompress.config import load_config
    from safecompress.progress import RichProgress
    from safecompress.runner import run_experiment

    overrides = ci_overrides(SC)
    cfg = load_config(preset="ci", overrides=overrides)
    console = Console(file=__import__("io").StringIO(), width=200, force_terminal=False)
    run_experiment(cfg, tmp_path / "p", callbacks=[RichProgress(console, "sc")])
    text = console.file.getvalue()
    assert "round" in text and "val acc" in text and "attack AUC" in text


def test_final_last_trains_to_the_end_with_the_budget_objective(tmp_path):
    out = tmp_path / "last"
    args = [
        *FAST,
        "--set",
        "safecompress.final=last",
        "--set",
        "safecompress.objective=budget",
        "--set",
        "safecompress.budget=0.5001",
        "--set",
        "safecompress.simulate=[loss]",
    ]
    assert main(["run", *args, "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    sc = rep["method_details"]["safecompress"]
    assert sc["final_round"] == "final" and sc["final"] == "last"
    # a heavy privacy weight makes best_round stop early; final: last never cuts training short
    early = tmp_path / "early"
    assert main(["run", *FAST, "--set", "safecompress.privacy_weight=100", "--out", str(early)]) == 0
    rep_early = json.loads((early / "report.json").read_text())
    assert rep_early["method_details"]["safecompress"]["final_round"] != "final"
    assert rep["task"]["train_accuracy"] > rep_early["task"]["train_accuracy"]
    for r in _rounds(out):  # every round kept the budget objective's choice
        cands = [Candidate(c["val_accuracy"], c["attack_auc"], c["attack_advantage"]) for c in r["candidates"]]
        assert select(cands, "budget", budget=0.5001)[0] == r["chosen"]


def test_rigl_select_has_one_rigl_candidate_per_round(tmp_path):
    out = tmp_path / "rs"
    assert main(["run", *FAST, "--set", "method.name=rigl_select", "--out", str(out)]) == 0
    rounds = _rounds(out)
    assert rounds and all(len(r["candidates"]) == 1 for r in rounds)
    assert all(
        r["candidates"][0]["strategy"]["prune"] == "magnitude" and r["candidates"][0]["strategy"]["grow"] == "gradient"
        for r in rounds
    )


def test_regularised_candidates_need_finetuning_and_train_with_their_own_term(tmp_path):
    from safecompress.config import load_config

    with pytest.raises(ConfigError, match="finetune_steps"):
        load_config(overrides=["safecompress.candidates=[{regularizer: confidence_penalty, strength: 1.0}]"])
    out = tmp_path / "reg"
    cands = (
        "[{regularizer: none}, {regularizer: confidence_penalty, strength: 2.0}, {regularizer: hamp, strength: 0.99}]"
    )
    args = [
        *FAST,
        "--set",
        f"safecompress.candidates={cands}",
        "--set",
        "safecompress.finetune_steps=5",
        "--set",
        "safecompress.final=last",
    ]
    assert main(["run", *args, "--out", str(out)]) == 0
    rounds = _rounds(out)
    for r in rounds:
        accs = [c["val_accuracy"] for c in r["candidates"]]
        assert len(set(accs)) > 1 or len({c["attack_auc"]["nn"] for c in r["candidates"]}) > 1  # they really differ
        assert [c["strategy"]["regularizer"] for c in r["candidates"]] == ["none", "confidence_penalty", "hamp"]
        # the chosen candidate's regulariser trains the model until the next round; a candidate without one
        # keeps the regulariser of the last round that chose one
        previous = next(
            (
                q["candidates"][q["chosen"]]["strategy"]
                for q in reversed(rounds[: r["round"] + 1])
                if q["candidates"][q["chosen"]]["strategy"]["regularizer"] != "none"
            ),
            None,
        )
        if previous is None:
            assert "regularizer" not in r
        else:
            assert r["regularizer"] == {"name": previous["regularizer"], "strength": previous["strength"]}


def test_hamp_without_soft_labels_only_remaps():
    from safecompress.defences import DEFENCES

    class _Ctx:
        class spec:
            n_classes = 5

    assert DEFENCES.get("hamp")(soft_labels=False).callbacks(_Ctx) == []
    assert len(DEFENCES.get("hamp")().callbacks(_Ctx)) == 1
    with pytest.raises(ConfigError, match="soft_labels"):
        DEFENCES.get("hamp")(soft_labels=1)


def test_low_fpr_budget_with_the_calibrated_simulator(tmp_path):
    """The calibrated simulator learns from probe non-members only; a TPR budget picks by its TPR at low FPR."""
    out = tmp_path / "tpr"
    args = [
        *FAST,
        "--set",
        "data.name=purchase100-synth",
        "--set",
        "data.split.train=0.3",
        "--set",
        "data.split.probe_nonmembers=0.2",
        "--set",
        "safecompress.simulate=[calibrated]",
        "--set",
        "safecompress.objective=budget",
        "--set",
        "safecompress.budget_metric=tpr",
        "--set",
        "safecompress.budget=0.05",
        "--set",
        "safecompress.low_fpr=0.05",
        "--set",
        "safecompress.final=last",
        # the audit's reference models replay the recipe on splits of their own (fewer probe non-members)
        "--set",
        "audit.enabled=true",
        "--set",
        "audit.refs=1",
        "--set",
        "audit.attacks=[loss]",
    ]
    assert main(["run", *args, "--out", str(out)]) == 0
    rounds = _rounds(out)
    assert rounds
    for r in rounds:
        cands = [
            Candidate(c["val_accuracy"], c["attack_auc"], c["attack_advantage"], c["attack_tpr"])
            for c in r["candidates"]
        ]
        assert all(0 <= c.tprs["calibrated"] <= 1 for c in cands)
        assert select(cands, "budget", budget=0.05, metric="tpr")[0] == r["chosen"]
    assert json.loads((out / "report.json").read_text())["audit"]["attacks"]["loss"]["auc"] > 0.5


def test_tpr_budget_needs_enough_probe_non_members(tmp_path):
    args = [
        *FAST,
        "--set",
        "safecompress.simulate=[calibrated]",
        "--set",
        "safecompress.objective=budget",
        "--set",
        "safecompress.budget_metric=tpr",
        "--set",
        "safecompress.budget=0.05",
    ]
    assert main(["run", *args, "--out", str(tmp_path / "few")]) == 2  # digits: far fewer than 1000 at FPR 1 %


def test_budget_units_and_unsimulable_attacks_fail_when_the_config_is_read():
    from safecompress.config import load_config

    with pytest.raises(ConfigError, match="AUC budget must exceed 0.5"):
        load_config(overrides=["safecompress.objective=budget", "safecompress.budget=0.05"])
    load_config(overrides=["safecompress.budget=0.05", "safecompress.budget_metric=tpr"])
    with pytest.raises(ConfigError, match="cannot be simulated"):
        load_config(overrides=["safecompress.simulate=[lira]"])
