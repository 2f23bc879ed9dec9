"""Attack contract, attack strength on a model that memorises, and calibration on null data."""

import numpy as np
import pytest
import torch
from torch import nn

from safecompress import metrics
from safecompress.attacks import ATTACKS, BlackBoxTarget, Knowledge, Queries, ReferencePool, WhiteBoxTarget
from safecompress.attacks.features import last_layer_gradient, logits_and_penultimate
from safecompress.attacks.references import membership_matrix
from safecompress.auditor import audit_model
from safecompress.config import TrainConfig
from safecompress.errors import ConfigError
from safecompress.models import ModelSpec, build_model
from safecompress.train import Trainer

D, K = 24, 4


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g), torch.randint(0, K, (n,), generator=g)  # random labels: only memorisable


def train_fn(X, y, seed):
    model = build_model(ModelSpec("mlp", (D,), K, width=0.25), seed)
    cfg = TrainConfig(epochs=30, batch_size=64, optimizer="adam", lr=5e-3, weight_decay=0.0, schedule="constant")
    Trainer(model, cfg, seed=seed, device=torch.device("cpu")).fit(X, y)
    return model.eval(), None


@pytest.fixture(scope="module")
def setup():
    members, nonmembers, population = _data(300, 1), _data(300, 2), _data(1200, 3)
    target, _ = train_fn(*members, seed=0)
    return target, members, nonmembers, population


def test_gradient_closed_form_equals_autograd():
    model = build_model(ModelSpec("mlp", (D,), K, width=0.25), 0).eval()
    X, y = _data(5, 9)
    logits, h = logits_and_penultimate(model, X, torch.device("cpu"))
    closed = last_layer_gradient(logits, h, y)
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    for i in range(5):
        model.zero_grad()
        nn.functional.cross_entropy(model(X[i : i + 1]), y[i : i + 1]).backward()
        assert torch.allclose(closed[i], head.weight.grad, atol=1e-5)


def test_membership_matrix_balanced():
    m = membership_matrix(8, 100, seed=0)
    assert (m.sum(0) == 4).all()
    assert abs(membership_matrix(1, 100, 0).sum() - 50) == 0


def _context(population, refs=4, candidates=None):
    pool = ReferencePool(
        train_fn,
        *population,
        n_models=refs,
        seed=0,
        device=torch.device("cpu"),
        X_cand=None if candidates is None else candidates[0],
        y_cand=None if candidates is None else candidates[1],
    )
    return Knowledge(population[0], population[1], K, pool, torch.device("cpu"), seed=0, kind="tabular")


@pytest.fixture(scope="module")
def contexts(setup):
    target, members, nonmembers, population = setup
    Xq, yq = torch.cat([members[0], nonmembers[0]]), torch.cat([members[1], nonmembers[1]])
    return _context(population, 4, (Xq, yq)), (Xq, yq)


MEMBERSHIP = [n for n, c in ATTACKS.items() if c.family == "membership"]


@pytest.mark.parametrize("name", MEMBERSHIP)
def test_attack_contract(setup, contexts, name):
    target, *_ = setup
    ctx, (Xq, yq) = contexts
    scores = []
    for _ in range(2):
        attack = ATTACKS.get(name)()  # builds from defaults
        attack.fit(ctx)
        view = ctx.target_view(target, attack.white_box)
        if not attack.white_box:
            assert isinstance(view, BlackBoxTarget) and not isinstance(view, WhiteBoxTarget)
            assert not any(isinstance(v, nn.Module) for v in vars(view).values())  # weights out of reach
            assert not hasattr(view, "module")
        is_member = np.arange(len(yq)) < len(yq) // 2
        result = attack.evaluate(view, Queries(Xq, yq, is_member, n_bootstrap=0))
        s = result.scores
        assert s.shape == (len(yq),) and np.isfinite(s).all()
        assert result.metrics["auc"] == metrics.auc(s, is_member) and result.summary.startswith("AUC")
        assert result.details["white_box"] == attack.white_box
        scores.append(s)
    np.testing.assert_array_equal(scores[0], scores[1])  # deterministic


def test_strong_attacks_catch_memorisation(setup):
    target, members, nonmembers, population = setup
    result = audit_model(
        target,
        members,
        nonmembers,
        population,
        attacks=["loss", "lira", "rmia"],
        n_classes=K,
        train_fn=train_fn,
        refs=4,
        n_bootstrap=50,
    )
    aucs = {n: m["auc"] for n, m in result.report["attacks"].items()}
    assert aucs["loss"] > 0.7 and aucs["lira"] > 0.7, aucs
    assert result.report["worst"]["auc"] == max(aucs.values())
    assert result.report["attacks"]["lira"]["mode"] == "online"


def test_every_attack_near_chance_when_members_are_not_members(setup):
    """'Members' the target never saw: every attack must stay within 0.05 AUC of 0.5."""
    target, _, _, population = setup
    fake_members, nonmembers = _data(1000, 11), _data(1000, 12)
    result = audit_model(
        target,
        fake_members,
        nonmembers,
        population,
        attacks=ATTACKS.names(),
        n_classes=K,
        train_fn=train_fn,
        refs=4,
        n_bootstrap=0,
    )
    for name, m in result.report["attacks"].items():
        assert abs(m["auc"] - 0.5) < 0.05, (name, m["auc"])
    assert set(result.report["attacks"]) == set(MEMBERSHIP)
    assert abs(result.report["inversion"]["auc"] - 0.5) < 0.08  # reconstructions no closer to the fake members
    assert "skipped" in result.report["attribute"]  # no sensitive attribute here


def test_audit_rejects_unknown_attack_and_too_few_refs(setup):
    target, members, nonmembers, population = setup
    with pytest.raises(ConfigError, match="(?i)did you mean 'lira'"):
        audit_model(target, members, nonmembers, population, attacks=["lyra"], n_classes=K, train_fn=train_fn)
    with pytest.raises(ConfigError, match="reference models"):
        audit_model(target, members, nonmembers, population, attacks=["nn"], n_classes=K, train_fn=train_fn, refs=1)


def test_python_api_audits_a_users_model(setup):
    import safecompress

    target, members, nonmembers, population = setup
    report = safecompress.audit(
        target, members, nonmembers, population, attacks=["loss", "confidence"], refs=1, n_bootstrap=20
    )
    assert set(report["attacks"]) == {"loss", "confidence"}
    assert report["attacks"]["loss"]["auc"] > 0.6 and report["n_members"] == 300


def test_attack_options_are_validated():
    assert ATTACKS.get("lira")(online=False).params["online"] is False
    with pytest.raises(ConfigError, match="did you mean 'online'"):
        ATTACKS.get("lira")(onlin=False)


def test_offline_lira_option(setup):
    target, members, nonmembers, population = setup
    result = audit_model(
        target,
        members,
        nonmembers,
        population,
        attacks=["lira"],
        n_classes=K,
        train_fn=train_fn,
        refs=4,
        n_bootstrap=0,
        attack_params={"lira": {"online": False, "fixed_variance": True}},
    )
    assert result.report["attacks"]["lira"]["mode"] == "offline" and result.report["attacks"]["lira"]["auc"] > 0.6


def test_class_gaussians_match_sample_moments_and_shrink_small_classes():
    from safecompress.attacks.calibrated import class_gaussians

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [5000, 5000, 2])
    phi = np.where(y == 0, rng.normal(2.0, 1.0, len(y)), rng.normal(-1.0, 3.0, len(y)))
    mu, sd = class_gaussians(phi, y, 4, prior=20.0)
    assert mu[0] == pytest.approx(2.0, abs=0.05) and sd[0] == pytest.approx(1.0, abs=0.05)
    assert mu[1] == pytest.approx(-1.0, abs=0.1) and sd[1] == pytest.approx(3.0, abs=0.1)
    # none of class 3: the all-class mean and the pooled within-class spread; two of class 2: mostly those
    pooled = np.sqrt(
        ((phi[y == 0] - phi[y == 0].mean()) ** 2).sum()
        + ((phi[y == 1] - phi[y == 1].mean()) ** 2).sum()
        + ((phi[y == 2] - phi[y == 2].mean()) ** 2).sum()
    ) / np.sqrt(len(y) - 3)
    assert mu[3] == pytest.approx(phi.mean()) and sd[3] == pytest.approx(pooled)
    assert mu[2] == pytest.approx((phi[y == 2].sum() + 20 * phi.mean()) / 22)


def test_calibrated_attack_needs_no_references(setup):
    target, members, nonmembers, population = setup
    result = audit_model(
        target,
        members,
        nonmembers,
        population,
        attacks=["calibrated"],
        n_classes=K,
        train_fn=train_fn,
        refs=0,
        n_bootstrap=0,
    )
    assert result.report["attacks"]["calibrated"]["auc"] > 0.7
    with pytest.raises(ValueError, match="non-members"):
        ATTACKS.get("calibrated")().fit(Knowledge(population[0][:1], population[1][:1], K, None, torch.device("cpu")))


class _KnownLogit(nn.Module):
    """A fake target: input (label, φ) → logits whose scaled logit of that label is φ − log 3."""

    def forward(self, x):
        return torch.nn.functional.one_hot(x[:, 0].long(), K).float() * x[:, 1:2]


def _known(n, member, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=g)
    phi = torch.tensor([-6.0, -2.0, 2.0, 6.0])[y] + torch.randn(n, generator=g) + (1.0 if member else 0.0)
    return torch.stack([y.float(), phi], 1), y


def test_calibration_by_class_difficulty_beats_the_pooled_signal():
    """Classes of very different difficulty hide a member bump from a pooled threshold; per class it shows."""
    cpu = torch.device("cpu")
    view = BlackBoxTarget(_KnownLogit(), cpu)
    (Xm, ym), (Xn, yn) = _known(2000, True, 1), _known(2000, False, 2)
    X, y = torch.cat([Xm, Xn]), torch.cat([ym, yn])
    truth = np.r_[np.ones(2000, bool), np.zeros(2000, bool)]
    attack = ATTACKS.get("calibrated")().fit(Knowledge(*_known(2000, False, 3), K, None, cpu))

    calibrated = metrics.auc(attack.score(view, X, y), truth)
    pooled = metrics.auc(ATTACKS.get("loss")().score(view, X, y), truth)
    assert calibrated == pytest.approx(0.76, abs=0.03)  # Φ(1/√2): a unit bump over unit noise
    assert pooled < 0.62
    # without shrinkage the population's own scores are standardised within each class
    attack = ATTACKS.get("calibrated")(prior=0.0).fit(Knowledge(*_known(2000, False, 3), K, None, cpu))
    z = attack.score(view, attack.Xz_, attack.yz_)
    for c in range(K):
        zc = z[attack.yz_.numpy() == c]
        assert abs(zc.mean()) < 1e-9 and zc.std() == pytest.approx(1.0, abs=1e-9)


def test_capabilities_follow_a_subclass_own_references_unless_declared():
    """simulatable / needs_population default to ``needs_references == 0`` for each class: a subclass that needs no
    reference models is not stuck with its parent's computed default, while a declared value is inherited."""
    from safecompress.attacks import ATTACKS

    loss = ATTACKS.get("loss")  # one reference (a threshold), so it needs no population

    class ReferenceFree(loss):
        needs_references = 0

    class Child(ReferenceFree):
        pass

    class Declared(loss):
        needs_references = 0
        needs_population = False

    assert loss.needs_population is False
    assert ReferenceFree.needs_population is True and Child.needs_population is True
    assert Declared.needs_population is False and ATTACKS.get("evasion").needs_population is False
