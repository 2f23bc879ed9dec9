"""Synthetic datasets: contract, determinism, caching, and recovery from a bad cache."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from safecompress.data import DATASETS, DataContext, load_dataset
from safecompress.errors import DataError
from safecompress.fileio import atomic_save_npz

N = 2000
# name -> (kind, per-sample shape, n_classes)
SPECS = {
    "purchase100-synth": ("tabular", (600,), 100),
    "texas100-synth": ("tabular", (6169,), 100),
    "cifar10-synth": ("image", (3, 32, 32), 10),
    "cifar100-synth": ("image", (3, 32, 32), 100),
}
NAMES = list(SPECS)


def ctx_for(tmp: Path, seed: int = 0, n: int = N) -> DataContext:
    return DataContext(cache_dir=tmp, synth_samples=n, synth_seed=seed)


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_labelled_synthetic(name: str, tmp_path: Path) -> None:
    cls = DATASETS.get(name)
    kind, shape, k = SPECS[name]
    assert cls.synthetic is True and cls.description.startswith("SYNTHETIC")
    assert (cls.kind, cls.shape, cls.n_classes) == (kind, shape, k)
    assert cls().availability(ctx_for(tmp_path)) == (True, "generated on first use")


@pytest.mark.parametrize("name", NAMES)
def test_contract_and_cache(name: str, tmp_path: Path) -> None:
    kind, shape, k = SPECS[name]
    ctx = ctx_for(tmp_path, seed=3)
    source = DATASETS.get(name)()
    assert source.locate(ctx) is None

    ds = load_dataset(name, ctx)
    assert ds.X.shape == (N, *shape) and ds.X.dtype == np.float32
    assert ds.y.shape == (N,) and ds.y.dtype == np.int64
    assert ds.y.min() >= 0 and ds.y.max() < k and ds.n_classes == k
    assert ds.kind == kind and ds.synthetic is True
    if kind == "tabular":
        assert set(np.unique(ds.X).tolist()) == {0.0, 1.0}
    else:
        assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0 and ds.X.std() > 0.05
    if name != "texas100-synth":  # k-means clusters and balanced image labels cover every class
        assert len(np.unique(ds.y)) == k

    path = source.locate(ctx)
    assert path is not None and path.is_file()
    assert path == tmp_path / "synthetic" / f"{name}-n{N}-s3-v{source.recipe_version}.npz"
    assert ds.source.startswith("generated: ") and "seed=3" in ds.source and str(path) in ds.source

    # The second load must come from the cache: generating again is forbidden.
    def no_generation(*args: object) -> None:
        raise AssertionError("regenerated although a valid cache exists")

    source.generate = no_generation  # type: ignore[method-assign]
    again = source.load(ctx).validate()
    np.testing.assert_array_equal(again.X, ds.X)
    np.testing.assert_array_equal(again.y, ds.y)


@pytest.mark.parametrize("name", NAMES)
def test_seed_determinism(name: str, tmp_path: Path) -> None:
    n = 300
    a = load_dataset(name, ctx_for(tmp_path / "a", seed=7, n=n))
    b = load_dataset(name, ctx_for(tmp_path / "b", seed=7, n=n))
    c = load_dataset(name, ctx_for(tmp_path / "c", seed=8, n=n))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


def _cache_file(name: str, ctx: DataContext) -> Path:
    return DATASETS.get(name)().cache_path(ctx)


@pytest.mark.parametrize("name", ["texas100-synth", "cifar10-synth"])
def test_corrupt_cache_is_regenerated(name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ctx = ctx_for(tmp_path, n=500)
    fresh = load_dataset(name, ctx)
    path = _cache_file(name, ctx)
    path.write_bytes(b"\x00garbage, not an npz file" * 10)
    with caplog.at_level(logging.WARNING):
        again = load_dataset(name, ctx)
    assert "regenerating" in caplog.text
    np.testing.assert_array_equal(again.X, fresh.X)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_dataset(name, ctx)  # the regenerated file was written back and now loads cleanly
    assert "regenerating" not in caplog.text


def test_cache_with_wrong_shapes_is_regenerated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    name = "cifar100-synth"
    ctx = ctx_for(tmp_path, n=500)
    atomic_save_npz(_cache_file(name, ctx), X=np.zeros((500, 3, 16, 16), np.uint8), y=np.zeros(500, np.int64))
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(name, ctx)
    assert "regenerating" in caplog.text
    assert ds.X.shape == (500, 3, 32, 32) and ds.X.std() > 0.05


def test_too_few_samples_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="synth_samples"):
        load_dataset("purchase100-synth", ctx_for(tmp_path, n=50))


def test_default_size() -> None:
    assert DATASETS.get("purchase100-synth").default_samples == 20000
    assert DATASETS.get("texas100-synth").default_samples == 20000
    assert DATASETS.get("cifar10-synth").default_samples == 12000
    assert DATASETS.get("cifar100-synth").default_samples == 20000
    path = DATASETS.get("cifar10-synth")().cache_path(DataContext(cache_dir=Path("/c")))
    assert path == Path("/c/synthetic/cifar10-synth-n12000-s0-v1.npz")
