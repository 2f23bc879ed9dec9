"""The facade follows scikit-learn's conventions, takes Datasets, DataLoaders and member indices as it takes
tensors, and saves / reloads a fitted estimator without pickle."""

import json

import pytest
import torch
from sklearn.base import clone
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
)

from safecompress import SafeCompress, checkpoint, fileio
from safecompress.errors import ConfigError, RunFolderError, SafeCompressError, UntrustedCodeError
from safecompress.models import ModelSpec, build_model
from safecompress.userdata import gather

D, K = 8, 3


def make_mlp(d=D, hidden=16, k=K):
    """The user's model factory (module level, so save_pretrained can record it by import path)."""
    return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, k))


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=g)
    return torch.randn(n, D, generator=g) + 2 * nn.functional.one_hot(y, D).float(), y


TRAIN, VAL, OUT = _data(96, 0), _data(48, 1), _data(48, 2)
N_MEMBERS = 32
MEMBERS = (TRAIN[0][:N_MEMBERS], TRAIN[1][:N_MEMBERS])  # the reference fit's probe members, as samples


def _estimator(**params):
    base = dict(density=0.5, simulate=["loss"], epochs=2, batch_size=16, lr=1e-2, update_every=2, device="cpu")
    base["safecompress__privacy_weight"] = 5.0  # so the rounds' choices (and the model) depend on probe and val
    return SafeCompress(**{**base, **params})


def _fit(train=TRAIN, val=VAL, probe=None, model=None, **params):
    torch.manual_seed(1)
    model = model if model is not None else make_mlp()
    return _estimator(**params).fit(model, train, val, probe=probe or (MEMBERS, OUT))


@pytest.fixture(scope="module")
def fitted():
    return _fit()


def _equal(a, b):
    """Whether two fitted estimators hold the same masks and weights."""
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    return (
        a.masks_.keys() == b.masks_.keys()
        and all(torch.equal(a.masks_[k], b.masks_[k]) for k in a.masks_)
        and sa.keys() == sb.keys()
        and all(torch.equal(sa[k], sb[k]) for k in sa)
    )


def _same_model(a, b):
    assert _equal(a, b)


# -- parameters ----------------------------------------------------------------------------------------------------


def test_get_set_params_round_trip():
    sc = SafeCompress(density=0.1, safecompress__privacy_weight=2.0)
    params = sc.get_params()
    assert params["density"] == 0.1 and params["epochs"] == 30 and params["safecompress__privacy_weight"] == 2.0
    assert sc.get_params(deep=False) == params
    assert SafeCompress(**params).get_params() == params
    assert sc.set_params(epochs=3, train__schedule="constant", safecompress__privacy_weight=0.5) is sc
    assert sc.epochs == 3
    assert sc.get_params()["train__schedule"] == "constant" and sc.get_params()["safecompress__privacy_weight"] == 0.5
    assert sc._config().safecompress.privacy_weight == 0.5 and sc._config().train.schedule == "constant"
    with pytest.raises(ValueError, match=r"no parameter 'desnity'.*valid: density, simulate"):
        sc.set_params(desnity=0.2)
    assert sc.density == 0.1  # nothing was set


def test_constructor_stores_as_given_and_fit_validates():
    sc = SafeCompress(density=7, simulate="nn", desnity=0.2)  # no error here
    assert sc.density == 7 and sc.simulate == "nn" and sc.get_params()["desnity"] == 0.2
    with pytest.raises(ConfigError, match="no parameter 'desnity'"):
        sc.fit(make_mlp(), TRAIN, VAL)
    with pytest.raises(ConfigError, match="density"):
        SafeCompress(density=7).fit(make_mlp(), TRAIN, VAL)


def test_clone_and_repr(fitted):
    sc = SafeCompress(density=0.1, simulate=["nn"], safecompress__privacy_weight=2)
    twin = clone(sc)
    assert twin is not sc and twin.get_params() == sc.get_params()
    assert repr(SafeCompress()) == "SafeCompress()"
    assert repr(sc) == "SafeCompress(density=0.1, safecompress__privacy_weight=2)"
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params()
    assert not [k for k in vars(fresh) if k.endswith("_")]  # fitted attributes exist only after fit


def test_fit_returns_self(fitted):
    sc = _estimator()
    assert sc.fit(make_mlp(), TRAIN, VAL, probe=(range(N_MEMBERS), OUT)) is sc
    assert isinstance(sc.model_, nn.Module) and not sc.model_.training
    assert set(sc.masks_) == {"0.weight", "2.weight"} and sc.history_ and sc.n_classes_ == K


# -- data forms ------------------------------------------------------------------------------------------------------


class _NumpyPairs(Dataset):
    """A user's own Dataset: numpy inputs and int labels."""

    def __init__(self, X, y):
        self.X, self.y = X.numpy(), y.tolist()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


def _loader(pair, batch_size):
    return DataLoader(TensorDataset(*pair), batch_size=batch_size, shuffle=True)


FORMS = {
    "datasets": dict(
        train=TensorDataset(*TRAIN), val=_NumpyPairs(*VAL), probe=(TensorDataset(*MEMBERS), _NumpyPairs(*OUT))
    ),
    "loaders": dict(train=_loader(TRAIN, 10), val=_loader(VAL, 7), probe=(_loader(MEMBERS, 5), _loader(OUT, 64))),
    "unbatched loader": dict(train=DataLoader(TensorDataset(*TRAIN), batch_size=None)),
    "index range": dict(probe=(range(N_MEMBERS), OUT)),
    "index tensor": dict(probe=(torch.arange(N_MEMBERS), OUT)),
    "index list, numpy pairs": dict(
        train=(TRAIN[0].numpy(), TRAIN[1].numpy()), probe=(list(range(N_MEMBERS)), (OUT[0].numpy(), OUT[1].numpy()))
    ),
}


@pytest.mark.parametrize("form", FORMS)
def test_data_forms_give_the_same_model_as_tensors(fitted, form):
    _same_model(_fit(**FORMS[form]), fitted)


def test_the_comparison_sees_the_probe_and_val(fitted):
    """The test above means something: one other member, or other val data, gives another model."""
    assert not _equal(_fit(probe=(range(1, N_MEMBERS + 1), OUT)), fitted)
    assert not _equal(_fit(val=_data(48, 7)), fitted)


class _Dicts(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {"x": TRAIN[0][i], "y": TRAIN[1][i]}


BAD = {
    "lengths": (dict(train=(TRAIN[0], TRAIN[1][:-1])), "X has 96 samples but y has 95"),
    "index out of range": (dict(probe=([0, 96], OUT)), "index 96 is out of range: train has 96 samples"),
    "negative index": (dict(probe=(torch.tensor([-1, 2]), OUT)), "index -1 is out of range"),
    "repeated index": (dict(probe=([3, 3], OUT)), "index 3 is given twice"),
    "float indices": (dict(probe=(torch.tensor([0.0, 1.0]), OUT)), "integer positions in train"),
    "members not in train": (dict(probe=((TRAIN[0][:5] + 1, TRAIN[1][:5]), OUT)), "subset of train"),
    "dataset of dicts": (dict(train=_Dicts()), "train: item 0 is a dict, not a pair"),
    "dataset of triples": (dict(val=TensorDataset(*VAL, VAL[1])), "val: item 0 is a tuple of 3, not a pair"),
    "loader of triples": (dict(val=DataLoader(TensorDataset(*VAL, VAL[1]), batch_size=8)), "batch 0 is a list of 3"),
    "bare tensor": (dict(train=TRAIN[0]), "train must be a pair"),
    "probe not a pair": (dict(probe=(OUT,)), "probe must be \\(members, non-members\\)"),
    "shapes differ": (dict(val=(VAL[0][:, :4], VAL[1])), "val samples have shape \\(4,\\) but train's have \\(8,\\)"),
    "fractional labels": (dict(val=(VAL[0], VAL[1] + 0.5)), "integer class labels"),
    "negative labels": (dict(val=(VAL[0], VAL[1] - 1)), "holds the label -1"),
    "n_classes too small": (dict(n_classes=2), "n_classes=2, but the labels go up to 2"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_inputs_say_what_to_change(case):
    inputs, message = BAD[case]
    args = {"train": TRAIN, "val": VAL, "probe": (range(N_MEMBERS), OUT), **inputs}
    with pytest.raises(ConfigError, match=message):
        _estimator().fit(make_mlp(), **args)


def test_loaders_with_subset_samplers_read_only_their_samples():
    """One dataset split by SubsetRandomSampler loaders: each part is its sampler's rows (in index order), so the
    probe's non-members stay out of train."""
    whole = TensorDataset(*_data(100, 3))
    perm = torch.randperm(100, generator=torch.Generator().manual_seed(0)).tolist()
    train_idx, val_idx, held_idx = perm[:60], perm[60:80], perm[80:]

    def loader(idx, **kw):
        return DataLoader(whole, batch_size=16, sampler=SubsetRandomSampler(idx), **kw)

    data = gather(loader(train_idx), loader(val_idx, drop_last=True), probe=(range(10), loader(held_idx)))
    sizes = {k: len(v) for k, v in data.split.items()}
    assert sizes == {"train": 60, "val": 20, "probe_members": 10, "probe_nonmembers": 20}
    for part, idx in (("train", train_idx), ("val", val_idx), ("probe_nonmembers", held_idx)):
        rows = data.split[part]
        assert torch.equal(data.X[rows], whole.tensors[0][sorted(idx)])
        assert torch.equal(data.y[rows], whole.tensors[1][sorted(idx)])
    train_rows = {tuple(r.tolist()) for r in data.X[data.split["train"]]}
    assert not any(tuple(r.tolist()) in train_rows for r in data.X[data.split["probe_nonmembers"]])
    # a sampler over every sample, shuffled or not, reads the dataset as it is
    full = gather(DataLoader(whole, batch_size=7, sampler=RandomSampler(whole)), VAL)
    assert torch.equal(full.X[full.split["train"]], whole.tensors[0])


def test_probe_nonmembers_that_are_training_rows_are_refused():
    overlap = (torch.cat([OUT[0][:10], TRAIN[0][40:42]]), torch.cat([OUT[1][:10], TRAIN[1][40:42]]))
    with pytest.raises(ConfigError, match=r"never trains on, but 2 of them equal a training row .*train\[40\]"):
        gather(TRAIN, VAL, probe=(range(5), overlap))
    whole = TensorDataset(*TRAIN)  # the same index twice: the non-members' loader draws training rows
    with pytest.raises(ConfigError, match="never trains on"):
        gather(
            DataLoader(whole, sampler=SubsetRandomSampler(range(60))),
            VAL,
            probe=(range(5), DataLoader(whole, sampler=SubsetRandomSampler(range(50, 96)))),
        )


class _EvenBatches:
    def __iter__(self):
        return iter([[0, 2], [4, 6]])

    def __len__(self):
        return 2


SAMPLER_REFUSALS = {
    "with replacement": (dict(sampler=RandomSampler(range(96), replacement=True)), "with replacement"),
    "fewer samples": (dict(sampler=RandomSampler(range(96), num_samples=50)), "draws 50 of 96"),
    "weighted": (dict(sampler=WeightedRandomSampler([1.0] * 96, 96)), "WeightedRandomSampler"),
    "batch sampler": (dict(batch_sampler=_EvenBatches()), "custom batch_sampler"),
    "batches as sampler": (dict(sampler=BatchSampler(range(96), 8, False)), "does not yield dataset indices"),
    "index out of range": (dict(sampler=SubsetRandomSampler([0, 200])), "draws index 200"),
}


@pytest.mark.parametrize("case", SAMPLER_REFUSALS)
def test_loaders_whose_samples_change_are_refused(case):
    kwargs, message = SAMPLER_REFUSALS[case]
    with pytest.raises(ConfigError, match=message) as info:
        gather(DataLoader(TensorDataset(*TRAIN), **kwargs), VAL)
    assert "Subset(dataset, indices)" in str(info.value) or case == "index out of range"


def test_methods_that_simulate_attacks_need_a_probe():
    with pytest.raises(ConfigError, match="needs probe="):
        _estimator().fit(make_mlp(), TRAIN, VAL)


# -- save_pretrained / from_pretrained -------------------------------------------------------------------------------


def test_save_and_reload_without_pickle(fitted, tmp_path):
    folder = fitted.save_pretrained(tmp_path / "m", factory=make_mlp, factory_kwargs={"hidden": 16})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["factory"] == {"name": "test_api_sklearn:make_mlp", "kwargs": {"hidden": 16}}
    loaded = SafeCompress.from_pretrained(folder)
    x = torch.randn(20, D, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(loaded.model_(x), fitted.model_(x))
    _same_model(loaded, fitted)
    assert loaded.get_params() == fitted.get_params() and loaded.history_ == fitted.history_
    assert (loaded.n_classes_, loaded.input_shape_) == (K, (D,))
    loaded.save_pretrained(tmp_path / "again")  # the recorded factory is reused
    _same_model(SafeCompress.from_pretrained(tmp_path / "again"), fitted)


def test_a_received_folder_runs_no_untrusted_code(fitted, tmp_path, monkeypatch):
    fitted.save_pretrained(tmp_path / "m", factory="test_api_sklearn:make_mlp")
    monkeypatch.setattr(checkpoint, "_TRUSTED_FACTORIES", set())  # as in a process that did not save it
    with pytest.raises(UntrustedCodeError, match="test_api_sklearn:make_mlp"):
        SafeCompress.from_pretrained(tmp_path / "m")
    _same_model(SafeCompress.from_pretrained(tmp_path / "m", trust_code=True), fitted)


def test_zoo_model_recorded_by_name(tmp_path):
    spec = ModelSpec("mlp", (D,), K, width=0.02)
    sc = _fit(model=build_model(spec, seed=3))
    sc.save_pretrained(tmp_path / "zoo", factory="mlp", factory_kwargs={"width": 0.02})
    config_file = tmp_path / "zoo" / "config.json"
    config = json.loads(config_file.read_text())
    assert config["factory"] == {"name": "mlp", "kwargs": {"width": 0.02}}
    _same_model(SafeCompress.from_pretrained(tmp_path / "zoo"), sc)
    # a config edited to name code beside a zoo model file: refused before anything is imported
    config["factory"]["name"] = "json:dumps"
    config_file.write_text(json.dumps(config))
    with pytest.raises(UntrustedCodeError, match="json:dumps"):
        SafeCompress.from_pretrained(tmp_path / "zoo")


def test_save_pretrained_refusals(fitted, tmp_path):
    with pytest.raises(SafeCompressError, match="not fitted yet"):
        _estimator().save_pretrained(tmp_path / "a", factory=make_mlp)
    with pytest.raises(ConfigError, match="needs factory="):
        fitted.save_pretrained(tmp_path / "a")
    with pytest.raises(ConfigError, match="top level of a module"):
        fitted.save_pretrained(tmp_path / "a", factory=lambda: make_mlp())
    with pytest.raises(ConfigError, match="does not build the fitted model: they differ at 0.weight"):
        fitted.save_pretrained(tmp_path / "a", factory=make_mlp, factory_kwargs={"hidden": 8})
    with pytest.raises(ConfigError, match="neither a zoo model"):
        fitted.save_pretrained(tmp_path / "a", factory="no-such-model")
    assert not (tmp_path / "a").exists()
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="not empty.*overwrite=True"):
        fitted.save_pretrained(folder, factory=make_mlp)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    fitted.save_pretrained(folder, factory=make_mlp, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"
    _same_model(SafeCompress.from_pretrained(folder), fitted)


def test_from_pretrained_refuses_mismatched_files(fitted, tmp_path):
    fitted.save_pretrained(tmp_path / "m", factory=make_mlp)
    model_file = tmp_path / "m" / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:-1] + b"\0")
    with pytest.raises(SafeCompressError, match="not the model config.json was saved with"):
        SafeCompress.from_pretrained(tmp_path / "m")
    with pytest.raises(SafeCompressError, match="save_pretrained"):
        SafeCompress.from_pretrained(tmp_path / "nowhere")


def test_a_failed_save_pretrained_keeps_the_previous_save(fitted, tmp_path, monkeypatch):
    folder = fitted.save_pretrained(tmp_path / "m", factory=make_mlp)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    other = _fit(probe=(range(1, N_MEMBERS + 1), OUT))
    staged = fileio._staged

    def fail_on_config(path, data):
        if path.name == "config.json":
            raise OSError(28, "No space left on device")
        return staged(path, data)

    monkeypatch.setattr(fileio, "_staged", fail_on_config)
    with pytest.raises(SafeCompressError, match="no space left"):
        other.save_pretrained(folder, factory=make_mlp, overwrite=True)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temporary files left either
    _same_model(SafeCompress.from_pretrained(folder), fitted)


def test_load_model_builds_a_pretrained_folders_model(fitted, tmp_path, monkeypatch):
    """model.safetensors of a folder opens alone (load_model, export, audit --model): the factory is called with
    the recorded factory_kwargs, and only when trusted."""
    folder = fitted.save_pretrained(tmp_path / "m", factory=make_mlp, factory_kwargs={"hidden": 16})
    monkeypatch.setattr(checkpoint, "_TRUSTED_FACTORIES", set())  # as in a process that did not save it
    with pytest.raises(UntrustedCodeError, match="test_api_sklearn:make_mlp"):
        checkpoint.load_model(folder / "model.safetensors")
    model = checkpoint.load_model(folder / "model.safetensors", trust_code=True)
    x = torch.randn(20, D, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(model(x), fitted.model_(x))
    out = checkpoint.export_model(folder / "model.safetensors", tmp_path / "m16.safetensors", "fp16", trust_code=True)
    assert torch.allclose(checkpoint.load_model(out, trust_code=True)(x), fitted.model_(x), atol=1e-2)


@pytest.mark.parametrize("key", ["seed__x", "train__epochs__x", "method__name__x"])
def test_an_override_below_a_single_value_is_a_config_error(key):
    with pytest.raises(ConfigError, match=key.rsplit("__", 1)[0] + " is a single value"):
        SafeCompress(**{key: 1})._config()
