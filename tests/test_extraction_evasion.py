"""Attacks beyond membership, continued: model extraction (a surrogate trained on the served answers) and
evasion (white-box PGD) — the fidelity measure, chance and copy levels, budgets against the population,
PGD against the closed-form worst case of linear models, the attack's sanity checks, and the audit/CLI
wiring."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from safecompress.attacks import ATTACKS, Knowledge, Queries, target_view
from safecompress.attacks.evasion import pgd, sanity_checks
from safecompress.attacks.extraction import auto_budgets, fidelity
from safecompress.auditor import audit_model
from safecompress.cli import main
from safecompress.config import TrainConfig
from safecompress.errors import ConfigError
from safecompress.models import ModelSpec, build_model
from safecompress.train import Trainer

CPU = torch.device("cpu")
FAST = {"epochs": 20, "min_steps": 100}  # surrogates for the tests: enough to fit these small problems


def _queries(X, y, seed=0, n_bootstrap=50):
    half = len(y) // 2
    return Queries(X, y, np.r_[np.ones(half, bool), np.zeros(len(y) - half, bool)], seed=seed, n_bootstrap=n_bootstrap)


def _run(attack, model, population, X, y, n_classes, kind="tabular"):
    knowledge = Knowledge(*population, n_classes, None, CPU, seed=0, kind=kind)
    result = attack.fit(knowledge).evaluate(target_view(model, CPU, attack.white_box), _queries(X, y))
    assert result.summary and result.scores is None
    return result.metrics


# -- extraction ------------------------------------------------------------------------------------------


def test_fidelity_of_a_model_against_itself_is_exactly_one():
    logits = torch.randn(500, 7, generator=torch.Generator().manual_seed(0))
    assert fidelity(logits, logits) == 1.0
    assert fidelity(torch.softmax(logits, 1), logits) == 1.0  # probabilities or logits: the same argmax
    other = logits.clone()
    other[:100] = -other[:100]  # the argmax of a negated row is its argmin: another class
    assert fidelity(other, logits) == 0.8
    assert fidelity(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1])) == 0.75
    with pytest.raises(ValueError, match="same records"):
        fidelity(logits, logits[:10])


class _Hashed(nn.Module):
    """A target whose answer is a hash of the input: no smooth network can predict it, and its answers are
    balanced over the classes, so any surrogate agrees with it 1 / classes of the time."""

    def __init__(self, k):
        super().__init__()
        self.k = k
        self.unused = nn.Linear(1, 1)

    def forward(self, x):
        cls = (x[:, 0] * 1e4).floor().long() % self.k
        return 5.0 * nn.functional.one_hot(cls, self.k).float()


def test_an_untrained_surrogate_agrees_with_the_target_only_by_chance():
    k, g = 10, torch.Generator().manual_seed(1)
    X, pop = torch.randn(3000, 8, generator=g), torch.randn(300, 8, generator=g)
    target = _Hashed(k)
    y = target(X).argmax(1)
    m = _run(ATTACKS.get("extraction")(budgets=[100], epochs=1, min_steps=1), target, (pop, pop[:, 0].long()), X, y, k)
    for mode in ("labels", "probabilities"):
        start = m["curves"][mode][0]
        assert start["budget"] == 0 and abs(start["fidelity"] - 1 / k) < 0.03, start
    assert abs(m["constant_fidelity"] - 1 / k) < 0.03
    assert abs(m["fidelity"] - 1 / k) < 0.04  # 100 queries of a hash teach nothing either


def _blobs(n, k=4, d=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(k, d, generator=torch.Generator().manual_seed(99))
    y = torch.randint(0, k, (n,), generator=g)
    return centres[y] + torch.randn(n, d, generator=g), y


def _trained_mlp(X, y, k, width=0.25, epochs=10):
    model = build_model(ModelSpec("mlp", (X.shape[1],), k, width=width), 0)
    cfg = TrainConfig(epochs=epochs, batch_size=64, optimizer="adam", lr=3e-3, weight_decay=0.0, schedule="constant")
    Trainer(model, cfg, seed=0, device=CPU).fit(X, y)
    return model.eval()


def test_a_surrogate_of_the_targets_own_architecture_copies_it_from_its_probabilities():
    k = 4
    target = _trained_mlp(*_blobs(800, k, seed=1), k)
    pop, (X, y) = _blobs(1000, k, seed=2), _blobs(1000, k, seed=3)
    attack = ATTACKS.get("extraction")(budgets=[100, 1000], model="mlp", width=0.25, **FAST)
    m = _run(attack, target, pop, X, y, k)
    assert m["surrogate"] == "mlp" and m["budgets"] == [100, 1000] and m["budgets_from"] == "given"
    assert m["mode"] == "probabilities" and m["budget"] == 1000
    assert m["fidelity"] >= 0.97, m["curves"]
    assert m["curves"]["labels"][-1]["fidelity"] >= 0.95
    assert [p["budget"] for p in m["curves"]["probabilities"]] == [0, 100, 1000]
    assert m["curves"]["probabilities"][0]["fidelity"] < 0.6  # where the surrogate started
    lo, hi = m["fidelity_ci"]
    assert lo <= m["fidelity"] <= hi
    assert abs(m["accuracy"] - m["target_accuracy"]) < 0.03
    assert "fidelity" in ATTACKS.get("extraction").summarize(m)


def test_extraction_budgets_must_fit_the_attackers_population():
    pop = _blobs(600)
    assert auto_budgets(600) == [250, 500] and auto_budgets(100) == [100] and auto_budgets(5000)[-1] == 2000
    with pytest.raises(
        ConfigError, match=r"budget 1000 is larger than the attacker's population of 600.*budgets ≤ 600"
    ):
        ATTACKS.get("extraction")(budgets=[250, 1000]).fit(Knowledge(*pop, 4, None, CPU))
    fitted = ATTACKS.get("extraction")().fit(Knowledge(*pop, 4, None, CPU))
    assert fitted.budgets_ == [250, 500]  # auto: the ladder up to the population, said in the result
    for bad, message in (
        ({"budgets": [0, 10]}, "must be ≥ 2"),
        ({"budgets": [1, 10]}, "must be ≥ 2"),
        ({"model": "os:system"}, "not a model of the zoo"),  # no factory paths: a received run must not import code
        ({"budgets": []}, "at least one query budget"),
        ({"modes": []}, "at least one of labels"),
        ({"model": "mpl"}, "not a model of the zoo"),
        ({"width": float("nan")}, "finite number > 0"),
    ):
        with pytest.raises(ConfigError, match=message):
            ATTACKS.get("extraction")(**bad)


def test_the_audit_refuses_a_budget_above_the_population_before_it_trains_anything():
    pop, members, nonmembers = _blobs(300, seed=1), _blobs(50, seed=2), _blobs(50, seed=3)

    def train_fn(X, y, seed):
        raise AssertionError("no reference model may be trained before the attacks are checked")

    with pytest.raises(ConfigError, match="population of 300"):
        audit_model(
            nn.Linear(10, 4),
            members,
            nonmembers,
            pop,
            attacks=["loss", "extraction"],
            n_classes=4,
            train_fn=train_fn,
            refs=1,
            attack_params={"extraction": {"budgets": [400]}},
        )


def test_extraction_trains_a_text_surrogate_on_token_ids():
    g = torch.Generator().manual_seed(0)
    X = torch.randint(2, 40, (400, 12), generator=g).float()
    target = build_model(ModelSpec("fasttext", (12,), 3, width=0.5, vocab_size=40), 0).eval()
    y = target(X).argmax(1)
    m = _run(
        ATTACKS.get("extraction")(budgets=[100], epochs=1, min_steps=5),
        target,
        (X[:200], y[:200]),
        X[200:],
        y[200:],
        3,
        "text",
    )
    assert m["surrogate"] == "fasttext" and 0.0 <= m["fidelity"] <= 1.0


# -- evasion ---------------------------------------------------------------------------------------------


def _linear_binary(d=20, n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = nn.Linear(d, 2)
    with torch.no_grad():
        model.weight.copy_(torch.randn(2, d, generator=g))
        model.bias.copy_(torch.randn(2, generator=g))
    X = torch.randn(n, d, generator=g)
    with torch.no_grad():
        y = model(X).argmax(1)
    y[:100] = 1 - y[:100]  # some records the model gets wrong, as a real one does
    return model, X, y


def _margin(model, X, y):
    with torch.no_grad():
        z = model(X)
    return z.gather(1, y[:, None])[:, 0] - z.gather(1, (1 - y)[:, None])[:, 0]


@pytest.mark.parametrize(("norm", "q"), [("linf", 1), ("l2", 2)])
def test_pgd_on_a_linear_binary_model_reaches_the_closed_form_worst_case(norm, q):
    """For z = Wx + b with two classes the worst case in an ε-ball lowers every record's margin by
    ε·‖w₁ − w₀‖ in the dual norm (L1 for L∞, L2 for L2): robust accuracy is the count of margins above it."""
    model, X, y = _linear_binary()
    w = model.weight[1] - model.weight[0]
    for eps in (0.02, 0.1, 0.3):
        exact_drop = eps * float(w.detach().norm(p=q))
        m0 = _margin(model, X, y)
        closed_form = float((m0 > exact_drop).float().mean())
        x_adv, _ = pgd(model, X, y, eps, norm, steps=20, random_start=False)
        drop = m0 - _margin(model, x_adv, y)
        np.testing.assert_allclose(drop.numpy(), exact_drop, rtol=1e-4)
        assert float((_margin(model, x_adv, y) > 0).float().mean()) == closed_form
        # from a random start the L∞ steps still reach the corner; the L2 ones approach the direction of w
        x_rs, _ = pgd(model, X, y, eps, norm, steps=20, random_start=True, seed=3)
        drop_rs = m0 - _margin(model, x_rs, y)
        assert float(drop_rs.min()) >= exact_drop * (1 - (1e-4 if norm == "linf" else 0.05))
        assert float(drop_rs.max()) <= exact_drop * (1 + 1e-4)  # never beyond the true worst case
        assert abs(float((_margin(model, x_rs, y) > 0).float().mean()) - closed_form) <= 0.002


def test_pgd_on_a_multiclass_linear_model_never_beats_the_exact_worst_case_and_comes_close():
    g = torch.Generator().manual_seed(2)
    k, d, eps = 5, 16, 0.15
    model = nn.Linear(d, k)
    with torch.no_grad():
        model.weight.copy_(torch.randn(k, d, generator=g) / d**0.5)
        model.bias.copy_(0.3 * torch.randn(k, generator=g))
    X = torch.randn(1500, d, generator=g)
    with torch.no_grad():
        y = model(X).argmax(1)
        z = model(X)
        W = model.weight
        # record i survives iff for every j ≠ y: (z_y − z_j) > ε‖w_y − w_j‖₁
        gaps = z.gather(1, y[:, None]) - z
        need = eps * (W[y][:, None, :] - W[None, :, :]).abs().sum(2)
        gaps[torch.arange(len(y)), y] = float("inf")
        exact = float((gaps > need).all(1).float().mean())
    robust = {}
    for objective in ("margin", "ce"):
        x_adv, _ = pgd(model, X, y, eps, "linf", steps=40, objective=objective)
        with torch.no_grad():
            robust[objective] = float((model(x_adv).argmax(1) == y).float().mean())
        assert robust[objective] >= exact - 1e-12, (objective, robust, exact)  # no attack beats the worst case
    assert robust["margin"] - exact < 0.02 and robust["margin"] <= robust["ce"], (robust, exact)


def test_evasion_reports_robust_accuracy_with_its_sanity_checks_and_the_checks_fire():
    model, X, y = _linear_binary()
    attack = ATTACKS.get("evasion")(eps_linf=[0.01, 0.1], eps_l2=[0.5], max_queries=600)
    m = _run(attack, model, (X[:300], y[:300]), X[300:1300], y[300:1300], 2)
    assert m["records"] == 600 and m["clip"] is None  # tables are not clipped by default
    assert [p["eps"] for p in m["linf"]] == [0.01, 0.1] and [p["eps"] for p in m["l2"]] == [0.5]
    assert m["checks_passed"] and not m["failed_checks"]
    for p in m["linf"] + m["l2"]:
        assert all(p["checks"].values()) and p["robust_accuracy"] <= m["clean_accuracy"]
        assert p["max_norm"] <= p["eps"] * (1 + 1e-5)
    assert m["linf"][1]["robust_accuracy"] < m["linf"][0]["robust_accuracy"]
    assert m["robust_accuracy"] == {"linf": m["linf"][1]["robust_accuracy"], "l2": m["l2"][0]["robust_accuracy"]}
    # each check fails on what it guards against
    ok = dict(
        clean_loss=0.5, adv_loss=0.9, max_norm=0.1, eps=0.1, clean_accuracy=0.8, robust_accuracy=0.4, in_range=True
    )
    assert all(sanity_checks(**ok).values())
    for change, check in (
        ({"adv_loss": 0.4}, "loss_increased"),
        ({"max_norm": 0.11}, "within_budget"),
        ({"robust_accuracy": 0.81}, "robust_le_clean"),
        ({"in_range": False}, "in_range"),
    ):
        checks = sanity_checks(**{**ok, **change})
        assert not checks[check] and sum(not v for v in checks.values()) == 1
    failed = {**m, "checks_passed": False, "failed_checks": ["linf ε=0.1: within_budget"]}
    assert "CHECK FAILED: linf ε=0.1: within_budget" in ATTACKS.get("evasion").summarize(failed)


def test_evasion_clips_images_to_their_range_and_skips_text():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(200, 1, 4, 4, generator=g)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        y = model(X).argmax(1)
    m = _run(
        ATTACKS.get("evasion")(eps_linf=[0.2], eps_l2=[1.0]), model, (X[:100], y[:100]), X[100:], y[100:], 3, "image"
    )
    lo, hi = m["clip"]
    assert 0.0 <= lo < 0.05 and 0.95 < hi <= 1.0
    assert all(p["checks"]["in_range"] for p in m["linf"] + m["l2"]) and m["checks_passed"]
    x_adv, _ = pgd(model, X, y, 0.2, "linf", 10, clip=(0.0, 1.0))
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert float((x_adv - X).abs().max()) <= 0.2 + 1e-6
    text = _run(ATTACKS.get("evasion")(), model, (X[:100], y[:100]), X[100:], y[100:], 3, "text")
    assert "token ids" in text["skipped"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"eps_linf": [-0.1]}, "must be finite numbers > 0"),
        ({"eps_l2": [float("nan")]}, "must be finite numbers > 0"),
        ({"eps_linf": [], "eps_l2": []}, "both empty"),
        ({"steps": 0}, "must be ≥ 1"),
        ({"step_size": -1.0}, "finite number > 0"),
    ],
)
def test_evasion_refuses_bad_budgets(params, message):
    with pytest.raises(ConfigError, match=message):
        ATTACKS.get("evasion")(**params)


# -- the audit and the CLI -------------------------------------------------------------------------------


def test_extraction_and_evasion_are_off_by_default_and_reach_the_reports(tmp_path, capsys):
    from safecompress.config import DEFAULT_ATTACKS

    assert "extraction" not in DEFAULT_ATTACKS and "evasion" not in DEFAULT_ATTACKS
    assert main(["list", "attacks", "--json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["extraction"]["default"] == "-" and listed["evasion"]["access"] == "white"
    assert listed["extraction"]["simulate"] == "-" and listed["loss"]["default"] == "yes"
    out = tmp_path / "run"
    params = "audit.attack_params={extraction: {budgets: [100, 400], epochs: 5, min_steps: 50}, evasion: {steps: 5}}"
    args = ["run", "--preset", "ci", "--set", "method.name=rigl", "--set", "audit.refs=1"]
    args += ["--set", "audit.attacks=[loss, extraction, evasion]"]
    assert main([*args, "--set", params, "--out", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())  # the summary table wraps its cells
    for words in ("model extraction", "fidelity", "evasion (adversarial examples)", "robust accuracy"):
        assert words in printed, words
    audit = json.loads((out / "report.json").read_text())["audit"]
    ex, ev = audit["extraction"], audit["evasion"]
    assert ex["family"] == "extraction" and ex["budgets"] == [100, 400] and 0 <= ex["fidelity"] <= 1
    assert (
        ev["family"] == "evasion"
        and ev["checks_passed"]
        and ev["records"] == audit["n_members"] + audit["n_nonmembers"]
    )
    html = (out / "report.html").read_text()
    assert "Beyond membership" in html and "model extraction" in html and "robust accuracy" in html
    too_many = tmp_path / "too_many"
    big = "audit.attack_params={extraction: {budgets: [100000]}}"
    assert main([*args, "--set", big, "--out", str(too_many)]) == 2
    err = capsys.readouterr().err
    assert "larger than the attacker's population of" in err and "Traceback" not in err and not too_many.exists()
    assert (
        main(["run", "--preset", "ci", "--set", "safecompress.simulate=[nn, evasion]", "--out", str(tmp_path / "s")])
        == 2
    )
    assert "evasion" in capsys.readouterr().err
