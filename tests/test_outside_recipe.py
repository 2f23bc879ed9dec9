"""`safecompress audit --model FILE --recipe CFG --population P`: reference models for a model trained elsewhere.

A small MLP is trained here with a plain torch loop and saved as TorchScript; its architecture comes from a
factory module the recipe names (``model.name: "recipe_nets:make"``). With the recipe the reference attacks
(lira, rmia) run, on references trained on the population only; every bad input exits 2 with nothing written.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from safecompress.cli import main
from safecompress.outside import audit

N_FEATURES, N_CLASSES, N = 12, 4, 200
NETS = """
from torch import nn

def make(input_shape, n_classes, width):
    h = int(64 * width)
    return nn.Sequential(nn.Linear(input_shape[0], h), nn.ReLU(), nn.Linear(h, n_classes))

def three_outputs(input_shape, n_classes, width):
    return nn.Sequential(nn.Linear(input_shape[0], 8), nn.ReLU(), nn.Linear(8, 3))

def five_inputs(input_shape, n_classes, width):
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, n_classes))

def broken(input_shape, n_classes, width):
    raise ValueError("no GPU here")

def flat(input_shape, n_classes, width):
    n = 1
    for d in input_shape:
        n *= d
    return nn.Sequential(nn.Flatten(), nn.Linear(n, n_classes))
"""
RECIPE = """\
model:
  name: recipe_nets:{factory}
method:
  name: dense
train:
  epochs: 60
  batch_size: 100
  optimizer: adam
  lr: 0.01
  weight_decay: 0.0
  schedule: constant
  device: cpu
audit:
  refs: 2
"""


def _records(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    y = ((X[:, 0] > 0).astype(int) * 2 + (rng.random(n) < 0.5)).astype(np.int64)  # weak signal, label noise
    return X, y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The factory module (importable), the records, the outside model as TorchScript and a recipe file."""
    folder = tmp_path_factory.mktemp("recipe")
    (folder / "recipe_nets.py").write_text(NETS)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(folder))
        import recipe_nets

        parts = {"members": _records(1, N), "nonmembers": _records(2, N), "population": _records(3, N)}
        for name, (X, y) in parts.items():
            np.savez(folder / f"{name}.npz", X=X, y=y)
        torch.manual_seed(0)
        model = recipe_nets.make((N_FEATURES,), N_CLASSES, 1.0)  # trained outside safecompress: a plain loop
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        X, y = map(torch.from_numpy, parts["members"])
        for _ in range(300):  # full batch: the members are memorised
            opt.zero_grad()
            nn.functional.cross_entropy(model(X), y).backward()
            opt.step()
        torch.jit.script(model.eval()).save(str(folder / "model.ts"))
        for factory in ("make", "three_outputs", "five_inputs", "broken"):
            (folder / f"{factory}.yaml").write_text(RECIPE.format(factory=factory))
        yield {"folder": folder, **parts}
    sys.modules.pop("recipe_nets", None)


def _args(f, out, *extra, population="population.npz", recipe="make.yaml"):
    args = ["audit", "--model", str(f / "model.ts"), "--members", str(f / "members.npz")]
    args += ["--nonmembers", str(f / "nonmembers.npz"), "--out", str(out), *extra]
    if population:
        args += ["--population", str(f / population)]
    if recipe:
        args += ["--recipe", str(f / recipe)]
    return args


def _rows(X) -> set[bytes]:
    return {row.tobytes() for row in np.asarray(X, dtype=np.float32)}


def test_recipe_trains_references_on_the_population_only(trained, tmp_path, monkeypatch, capsys):
    import safecompress.attacks.references as references

    seen = []  # every reference's training rows (and held-out rows, for recipes that read some)
    original = references.train_reference

    def spy(task):
        _, X, _, _, _, _, out = task
        seen.append([X, *([] if out is None else [out[0]])])
        return original(task)

    monkeypatch.setattr(references, "train_reference", spy)
    f, out = trained["folder"], tmp_path / "out"
    assert main(_args(f, out, "--attacks", "loss,lira,rmia")) == 0
    report = json.loads((out / "report.json").read_text())
    attacks = report["audit"]["attacks"]
    assert {"lira", "rmia", "loss"} == set(attacks) and not report["skipped"]
    assert attacks["lira"]["mode"] == "offline"  # no audited record is IN any reference
    assert attacks["lira"]["auc"] > 0.6  # the members are memorised, and the references see it
    assert report["audit"]["references"] == 2 and report["audit"]["timing"]["references_s"] > 0
    recipe = report["recipe"]
    assert recipe["references"] == 2 and recipe["file"] == str(f / "make.yaml")
    assert recipe["model"] == "recipe_nets:make" and recipe["method"] == "dense"
    assert recipe["trained_on"] == {"population": N, "members": 0, "nonmembers": 0}
    # behaviour: the 2 references trained on population rows only, never on a member or non-member row
    assert len(seen) == 2
    population, audited = (
        _rows(trained["population"][0]),
        _rows(trained["members"][0]) | _rows(trained["nonmembers"][0]),
    )
    for tensors in seen:
        rows = set().union(*(_rows(t.numpy()) for t in tensors))
        assert rows <= population and not rows & audited
    assert "reference models: 2, trained with the recipe" in " ".join(capsys.readouterr().out.split())
    page = (out / "report.html").read_text()
    assert "id=references" in page and "2 reference models" in page and "Recipe of the reference models" in page


def test_python_api_takes_a_config_and_refs(trained):
    from safecompress.config import build_config

    cfg = build_config({"model": {"name": "recipe_nets:make"}, "method": {"name": "dense"}, "train": {"epochs": 5}})
    parts = [trained["folder"] / "model.ts", *(trained[p] for p in ("members", "nonmembers", "population"))]
    result = audit(*parts, attacks=["loss", "lira"], recipe=cfg, refs=4, n_bootstrap=20)
    assert result.recipe["references"] == 4 and result.report["audit"]["references"] == 4
    assert result.recipe["file"] is None and "lira" in result.aucs
    # without a recipe the reference attacks are skipped, and the reason says how to run them
    plain = audit(*parts, attacks=["loss", "lira"], n_bootstrap=20)
    assert plain.recipe is None and "recipe" not in plain.report
    assert "--recipe" in plain.skipped["lira"] and plain.report["audit"]["references"] == 0


def test_bad_recipe_inputs_exit_2_and_write_nothing(trained, tmp_path, capsys):
    f = trained["folder"]
    (tmp_path / "broken.yaml").write_text("model: [unclosed\n")
    (tmp_path / "typo.yaml").write_text("model:\n  name: recipe_nets:make\ntrain:\n  epoch: 3\n")
    (tmp_path / "nowhere.yaml").write_text("model:\n  name: nowhere_nets:make\n")
    X, y = trained["population"]
    np.savez(tmp_path / "wide.npz", X=np.hstack([X, X[:, :1]]), y=y)
    np.savez(tmp_path / "label.npz", X=X, y=np.where(np.arange(len(y)) == 3, 7, y))
    (tmp_path / "scores.npz").write_bytes(b"")
    out = tmp_path / "out"
    cases = [
        (_args(f, out, recipe=None) + ["--recipe", str(tmp_path / "missing.yaml")], "missing.yaml does not exist"),
        (_args(f, out, recipe=None) + ["--recipe", str(tmp_path / "broken.yaml")], "is not valid YAML"),
        (_args(f, out, recipe=None) + ["--recipe", str(tmp_path / "typo.yaml")], "did you mean 'train.epochs'"),
        (_args(f, out, recipe=None) + ["--recipe", str(tmp_path / "nowhere.yaml")], "cannot import the factory"),
        (_args(f, out, recipe="broken.yaml"), "the factory raised ValueError: no GPU here"),
        (_args(f, out, recipe="three_outputs.yaml"), "but the audited model has 4 output classes"),
        (_args(f, out, recipe="five_inputs.yaml"), "rejects the audit's records of shape 12"),
        (_args(f, out, population=None), "--recipe needs --population"),
        (_args(f, out, population=None) + ["--population", str(tmp_path / "wide.npz")], "records have shape 13"),
        (_args(f, out, population=None) + ["--population", str(tmp_path / "label.npz")], "labels [7] are outside"),
        (_args(f, out, "--attacks", "lira,nn", "--refs", "1"), "needs 2 reference models but 1 are trained"),
        (_args(f, out, "--refs", "2", recipe=None), "--refs: reference models of an outside model"),
        (
            ["audit", "--scores", str(tmp_path / "scores.npz"), "--recipe", str(f / "make.yaml"), "--out", str(out)],
            "--recipe: not with --scores",
        ),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in " ".join(err.split()), (args, err)
        assert "Traceback" not in err
        assert not out.exists(), args


def test_population_sharing_audited_records_is_refused(trained, tmp_path, capsys):
    """References (and the calibrated attack) must never fit on an audited record: overlap exits 2, unwritten."""
    f, out = trained["folder"], tmp_path / "out"
    Xn, yn = trained["nonmembers"]
    Xp, yp = trained["population"]
    # 5 non-members slipped into the population, with other labels: still the same records by features
    np.savez(tmp_path / "leaky.npz", X=np.vstack([Xp[:-5], Xn[:5]]), y=np.concatenate([yp[:-5], (yn[:5] + 1) % 4]))
    cases = [
        (_args(f, out, population="members.npz"), f"{N} of its {N} rows are audited records"),
        (_args(f, out, population=None) + ["--population", str(tmp_path / "leaky.npz")], f"5 of its {N} rows"),
        (  # no recipe: the calibrated attack fits on the population as known non-members
            _args(f, out, "--attacks", "calibrated", population="members.npz", recipe=None),
            "calibrated attacks fit on it as known non-members",
        ),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = " ".join(capsys.readouterr().err.split())
        assert message in err and "Remove those rows from the population" in err, (args, err)
        assert not out.exists(), args


def test_no_reference_trained_when_no_attack_needs_one(trained, tmp_path):
    f, out = trained["folder"], tmp_path / "out"
    assert main(_args(f, out, "--attacks", "calibrated", "--refs", "4")) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["audit"]["references"] == 0 and report["recipe"]["references"] == 0
    assert report["recipe"]["trained_on"] == {"population": 0, "members": 0, "nonmembers": 0}
    assert report["recipe"]["hflip"] is False  # tables: no augmentation, no flip
    page = (out / "report.html").read_text()
    assert "4 reference models" not in page and "No reference model was trained" in page


def test_references_flip_images_only_when_the_recipe_names_a_flippable_dataset(trained, monkeypatch):
    import safecompress.outside.recipe as recipe_mod
    from safecompress.config import build_config

    flips = []
    real = recipe_mod.reference_trainer
    monkeypatch.setattr(
        recipe_mod,
        "reference_trainer",
        lambda cfg, spec, dev, aug, flip, *a: flips.append((aug, flip)) or real(cfg, spec, dev, aug, flip, *a),
    )
    rng = np.random.default_rng(0)
    images = (torch.from_numpy(rng.random((40, 1, 8, 8), dtype=np.float32)), torch.arange(40) % N_CLASSES)
    base = {"model": {"name": "recipe_nets:flat"}, "method": {"name": "dense"}, "train": {"augment": True}}
    for data, flip in ((None, False), ({"name": "digits"}, False), ({"name": "cifar10-synth"}, True)):
        cfg = build_config({**base, **({"data": data} if data else {})})
        assert recipe_mod.recipe_hflip(cfg) is flip, data
        with recipe_mod.recipe_references(recipe_mod.load_recipe(cfg), images, N_CLASSES, refs=1) as (_, info):
            assert info["augment"] is True and info["hflip"] is flip, data
        assert flips[-1] == (True, flip), data
