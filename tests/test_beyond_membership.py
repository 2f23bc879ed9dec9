"""Attacks beyond membership: attribute inference and model inversion — data with a sensitive
attribute, the attacks on models built to leak (or not), the audit sections, the in-loop simulators."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from safecompress.attacks import ATTACKS, Knowledge, Queries, target_view
from safecompress.cli import main
from safecompress.data import DataContext, load_dataset

SMALL_IMG = [
    "--preset",
    "ci",
    "--set",
    "data.name=cifar10-synth-attr",
    "--set",
    "data.max_samples=2000",
    "--set",
    "train.epochs=2",
    "--set",
    "data.synth_samples=2000",
]


def test_planted_attribute_is_independent_of_the_class_and_visible_in_the_blue_channel(tmp_path):
    from safecompress.data.synth_attr import TINT

    ctx = DataContext(cache_dir=tmp_path, synth_samples=2000)
    ds = load_dataset("cifar10-synth-attr", ctx)
    plain = load_dataset("cifar10-synth", ctx)
    assert ds.sensitive.shape == ds.y.shape and set(np.unique(ds.sensitive)) == {0, 1}
    assert ds.sensitive_names == ["no_tint", "tint"]
    for c in range(10):  # P(s=1 | y=c) ≈ ½ for every class (independent of the task)
        assert abs(ds.sensitive[ds.y == c].mean() - 0.5) < 0.15
    diff = ds.X[:, 2] - plain.X[:, 2]
    assert np.allclose(ds.X[:, :2], plain.X[:, :2])  # only the blue channel is touched
    assert float(diff[ds.sensitive == 0].max()) == 0.0
    assert 0.6 * TINT < float(diff[ds.sensitive == 1].mean()) <= TINT + 1e-6
    again = load_dataset("cifar10-synth-attr", ctx)
    assert np.array_equal(again.sensitive, ds.sensitive) and np.array_equal(again.X, ds.X)


def test_csv_and_npz_carry_a_sensitive_attribute_held_out_of_the_features(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("a,sex,b,label\n1,F,2,x\n3,M,4,y\n5,F,6,x\n")
    ds = load_dataset("csv", DataContext(path=csv, label_column="label", sensitive_column="sex"))
    assert ds.X.shape == (3, 2) and ds.X[:, 0].tolist() == [1, 3, 5]
    assert ds.sensitive.tolist() == [0, 1, 0] and ds.sensitive_names == ["F", "M"]
    from safecompress.errors import DataError

    with pytest.raises(DataError, match="column 'sex'"):  # not held out: a non-numeric feature
        load_dataset("csv", DataContext(path=csv, label_column="label"))

    with pytest.raises(DataError, match="no sensitive column 'race'"):
        load_dataset("csv", DataContext(path=csv, label_column="label", sensitive_column="race"))
    npz = tmp_path / "d.npz"
    np.savez(npz, X=np.random.default_rng(0).random((4, 3)), y=np.array([0, 1, 0, 1]), sensitive=np.array([2, 0, 2, 1]))
    ds = load_dataset("npz", DataContext(path=npz))
    assert ds.sensitive.tolist() == [2, 0, 2, 1]
    with pytest.raises(DataError, match="no array 'group'"):
        load_dataset("npz", DataContext(path=npz, sensitive_column="group"))


class _Embed(nn.Module):
    """A fixed network whose embedding carries feature 0 (the attribute's proxy) or not."""

    def __init__(self, leaky: bool, d: int = 6, k: int = 3):
        super().__init__()
        self.body = nn.Linear(d, 4)
        self.head = nn.Linear(4, k)
        with torch.no_grad():
            self.body.weight.zero_()
            self.body.bias.zero_()
            self.body.weight[1, 1] = self.body.weight[2, 2] = 1.0
            if leaky:
                self.body.weight[0, 0] = 3.0
            self.head.weight.normal_(generator=torch.Generator().manual_seed(0))

    def forward(self, x):
        return self.head(self.body(x))


def _run(attack, model, population, members, nonmembers, n_classes, kind, s=(None, None, None)):
    """The audit's contract for one attack: fit with the population, evaluate on members vs non-members."""
    cpu = torch.device("cpu")
    knowledge = Knowledge(*population, n_classes, None, cpu, seed=0, kind=kind, s_population=s[0])
    is_member = np.r_[np.ones(len(members[1]), bool), np.zeros(len(nonmembers[1]), bool)]
    s_q = None if s[1] is None else np.concatenate(s[1:])
    X, y = torch.cat([members[0], nonmembers[0]]), torch.cat([members[1], nonmembers[1]])
    queries = Queries(X, y, is_member, s_q, seed=0, n_bootstrap=50)
    result = attack.fit(knowledge).evaluate(target_view(model, cpu, attack.white_box), queries)
    assert result.summary and result.scores is None
    return result.metrics


def _property_data(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(3 * n, 6, generator=g)
    s = (X[:, 0] > 0).long().numpy()  # the attribute is exactly what feature 0 encodes
    y = torch.randint(0, 3, (3 * n,), generator=g)
    parts = [slice(0, n), slice(n, 2 * n), slice(2 * n, 3 * n)]
    return {
        "population": (X[parts[0]], y[parts[0]]),
        "members": (X[parts[1]], y[parts[1]]),
        "nonmembers": (X[parts[2]], y[parts[2]]),
        "n_classes": 3,
        "kind": "image",
        "s": tuple(s[p] for p in parts),
    }


def test_attribute_inference_finds_an_attribute_the_embedding_carries_and_not_one_it_does_not():
    data = _property_data()
    attack = ATTACKS.get("attribute")(with_features=False)  # the attacker sees only the model
    leaky = _run(attack, _Embed(True), **data)
    blind = _run(attack, _Embed(False), **data)
    assert leaky["strongest"]["auc"] > 0.9 and leaky["strongest"]["advantage"] > 0.3
    assert leaky["views"]["embedding"]["auc_members"] > 0.9
    assert abs(blind["strongest"]["auc"] - 0.5) < 0.1 and blind["strongest"]["advantage"] < 0.1
    assert leaky["baselines"]["majority"] < 0.6
    lo, hi = leaky["strongest"]["auc_ci"]
    assert lo <= leaky["strongest"]["auc"] <= hi


def test_attribute_inference_says_why_it_cannot_run_without_a_sensitive_attribute():
    data = _property_data()
    data["s"] = (None, None, None)
    out = _run(ATTACKS.get("attribute")(), _Embed(True), **data)
    assert "no sensitive attribute" in out["skipped"]


class _Bumps(nn.Module):
    """Logit of class c = A · Σ exp(−‖x − xᵢ‖²/2σ²) over the records xᵢ of class c it was "trained" on:
    confidence peaks exactly on those records, as in a model that memorised them."""

    def __init__(self, X, y, k, sigma=1.0, A=5.0):
        super().__init__()
        self.X, self.y, self.k, self.sigma, self.A = X, y, k, sigma, A
        self.unused = nn.Linear(1, 1)

    def forward(self, x):
        kern = torch.exp(-(torch.cdist(x.flatten(1), self.X.flatten(1)) ** 2) / (2 * self.sigma**2))
        return self.A * torch.stack([kern[:, self.y == c].sum(1) for c in range(self.k)], 1)


def test_model_inversion_leads_to_memorised_members_but_not_to_a_population_model():
    g = torch.Generator().manual_seed(1)
    k, n = 4, 40
    members = (torch.randn(n, 5, generator=g), torch.arange(n) % k)
    nonmembers = (torch.randn(n, 5, generator=g), torch.arange(n) % k)
    pop = (torch.randn(400, 5, generator=g), torch.arange(400) % k)
    attack = ATTACKS.get("inversion")()
    leaky = _run(attack, _Bumps(*members, k), pop, members, nonmembers, k, "tabular")  # memorised the members
    fair = _run(attack, _Bumps(*pop, k), pop, members, nonmembers, k, "tabular")  # learned from the population
    assert leaky["member_closer_rate"] > 0.85 and leaky["auc"] > 0.58
    assert fair["member_closer_rate"] < 0.75 and fair["auc"] < 0.55
    assert leaky["target_confidence"] > 0.5 and leaky["classes_inverted"] == k


def test_list_and_audit_report_attribute_and_inversion_or_say_why_not(tmp_path, capsys):
    assert main(["list", "attacks"]) == 0
    listing = capsys.readouterr().out
    assert "attribute" in listing and "inversion" in listing
    plain = tmp_path / "plain"
    assert (
        main(
            [
                "run",
                "--preset",
                "ci",
                "--set",
                "method.name=rigl",
                "--set",
                "audit.attacks=[loss, attribute, inversion]",
                "--out",
                str(plain),
            ]
        )
        == 0
    )
    audit = json.loads((plain / "report.json").read_text())["audit"]
    assert "no sensitive attribute" in audit["attribute"]["skipped"]
    assert 0.0 <= audit["inversion"]["auc"] <= 1.0 and audit["inversion"]["reconstructions"] > 0
    printed = capsys.readouterr().out
    assert "attribute inference" in printed and "n/a" in printed
    attr = tmp_path / "attr"
    assert (
        main(
            [
                "run",
                *SMALL_IMG,
                "--set",
                "method.name=rigl",
                "--set",
                "audit.attacks=[loss, attribute]",
                "--set",
                "audit.refs=1",
                "--out",
                str(attr),
            ]
        )
        == 0
    )
    a = json.loads((attr / "report.json").read_text())["audit"]["attribute"]
    assert set(a["views"]) == {"output", "embedding"} and a["attribute_values"] == ["no_tint", "tint"]
    assert "Beyond membership" in (attr / "report.html").read_text()
    assert main(["audit", str(attr), "--attacks", "attribute"]) == 2  # needs a membership attack beside it
    assert "need a membership attack" in capsys.readouterr().err


def test_safecompress_simulates_attribute_and_inversion_attackers_in_the_loop(tmp_path, capsys):
    out = tmp_path / "sc"
    assert (
        main(
            [
                "run",
                *SMALL_IMG,
                "--set",
                "safecompress.simulate=[nn, attribute, inversion]",
                "--set",
                "audit.enabled=false",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rounds = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert rounds and all(
        set(c["attack_auc"]) == {"nn", "attribute", "inversion"} for r in rounds for c in r["candidates"]
    )
    from safecompress.methods.safecompress.objectives import Candidate, select

    for r in rounds:  # the worst case over the heterogeneous attackers decides
        cands = [Candidate(c["val_accuracy"], c["attack_auc"], c["attack_advantage"]) for c in r["candidates"]]
        assert select(cands, "weighted", 1.0, combine="worst")[0] == r["chosen"]
    bad = tmp_path / "bad"
    assert main(["run", "--preset", "ci", "--set", "safecompress.simulate=[nn, attribute]", "--out", str(bad)]) == 2
    assert "sensitive attribute" in capsys.readouterr().err and not bad.exists()


def test_attribute_adversary_resumes_exactly_after_a_kill(tmp_path, kill_at_epoch):
    args = [
        *SMALL_IMG,
        "--set",
        "train.epochs=3",
        "--set",
        "safecompress.attribute_adversary=1.0",
        "--set",
        "audit.enabled=false",
    ]
    assert main(["run", *args, "--out", str(tmp_path / "a")]) == 0
    with kill_at_epoch(2):
        assert main(["run", *args, "--out", str(tmp_path / "b")]) == 130
    assert main(["run", *args, "--resume", "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    assert a["task"] == b["task"]
    assert a["method_details"]["safecompress"]["attribute_head_accuracy"] is not None
