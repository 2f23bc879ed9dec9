"""Real-dataset loaders, fed with tiny fixture files written in the official formats."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from safecompress.data import DATASETS, DataContext, load_dataset
from safecompress.data.cifar import restricted_loads
from safecompress.data.idx import read_idx
from safecompress.errors import DataError, DatasetNotFoundError

RNG = np.random.default_rng(0)
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFECOMPRESS_DATA", raising=False)
    monkeypatch.delenv("SAFECOMPRESS_FASHION_MNIST_URL", raising=False)


def ctx(tmp_path: Path, **kw) -> DataContext:
    return DataContext(cache_dir=tmp_path / "cache", **kw)


# ---------------------------------------------------------------- digits


def test_digits(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    ds = load_dataset("digits", ctx(tmp_path))
    assert ds.X.shape == (1797, 1, 8, 8) and ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0 and ds.n_classes == 10
    np.testing.assert_array_equal(ds.X[5, 0], load_digits().images[5] / 16.0)
    assert DATASETS.get("digits")().locate(ctx(tmp_path)).name == "digits.csv.gz"


# ---------------------------------------------------------------- IDX


def idx_bytes(arr: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, IDX_CODES[arr.dtype], arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_idx_roundtrip_gz_and_plain(tmp_path: Path) -> None:
    images = RNG.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.gz", images)), images)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a", images, gz=False)), images)
    ints = np.array([1, -2, 70000], dtype=">i4")
    out = read_idx(write_idx(tmp_path / "i.gz", ints))
    assert out.tolist() == [1, -2, 70000] and out.dtype.isnative


@pytest.mark.parametrize(
    "damage, expect",
    [
        (lambda b: b[:-1], "need 64 bytes, found 63"),
        (lambda b: b + b"\0", "found 65"),
        (lambda b: b"\x08\x00" + b[2:], "bad magic"),
        (lambda b: b[:2] + b"\x07" + b[3:], "dtype code 0x07"),
        (lambda b: b[:6], "header cut short"),
    ],
)
def test_idx_corrupt(tmp_path: Path, damage, expect: str) -> None:
    data = idx_bytes(np.zeros((3, 4, 4), np.uint8))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(damage(data))
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert expect in str(err.value) and str(path) in str(err.value) and "re-download" in str(err.value)


def test_idx_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    blob = gzip.compress(idx_bytes(RNG.integers(0, 256, size=5000, dtype=np.uint8)))
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="re-download") as err:
        read_idx(path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- fashion-mnist


def write_fashion(folder: Path, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Official file names; 3 training and 2 test images. Returns the pooled (images, labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    images = RNG.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([9, 0, 3, 7, 1], dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", images[:3], gz)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", labels[:3], gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", images[3:], gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", labels[3:], gz)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gz: bool) -> None:
    monkeypatch.setattr(DATASETS.get("fashion-mnist"), "system_dirs", ())
    images, labels = write_fashion(tmp_path / "data" / "fashion-mnist", gz)
    ds = load_dataset("fashion-mnist", ctx(tmp_path, data_dir=tmp_path / "data"))
    assert ds.X.shape == (5, 1, 28, 28) and ds.X.dtype == np.float32 and ds.n_classes == 10
    assert ds.y.tolist() == [9, 0, 3, 7, 1] and ds.y.dtype == np.int64
    assert ds.X[4, 0, 27, 3] == np.float32(images[4, 27, 3]) / np.float32(255)
    np.testing.assert_allclose(ds.X[:, 0], images / 255.0, rtol=0, atol=1e-7)
    assert ds.class_names[9] == "Ankle boot" and ds.source == str(tmp_path / "data" / "fashion-mnist")


def test_fashion_mnist_mismatched_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DATASETS.get("fashion-mnist"), "system_dirs", ())
    write_fashion(tmp_path / "d")
    write_idx(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="t10k-labels"):
        load_dataset("fashion-mnist", ctx(tmp_path, data_dir=tmp_path / "d"))


def test_fashion_mnist_missing_lists_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "usr-share"
    monkeypatch.setattr(DATASETS.get("fashion-mnist"), "system_dirs", (str(system),))
    (tmp_path / "empty").mkdir()
    c = ctx(tmp_path, data_dir=tmp_path / "empty")
    assert DATASETS.get("fashion-mnist")().locate(c) is None
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion-mnist", c)
    msg = str(err.value)
    for folder in (
        tmp_path / "empty" / "fashion-mnist",
        tmp_path / "empty",
        tmp_path / "cache" / "fashion-mnist",
        system,
    ):
        assert f"- {folder}\n" in msg + "\n"
    assert "apt-get install dataset-fashion-mnist" in msg and "--data-dir" in msg and "data.download: true" in msg


def test_fashion_mnist_debian_package(tmp_path: Path) -> None:
    system = Path("/usr/share/datasets/fashion-mnist")
    if not (system / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian package dataset-fashion-mnist is not installed (/usr/share/datasets/fashion-mnist)")
    ds = load_dataset("fashion-mnist", ctx(tmp_path))
    assert ds.source == str(system)
    assert len(ds) == 70000 and ds.n_classes == 10 and ds.input_shape == (1, 28, 28)
    assert np.bincount(ds.y).tolist() == [7000] * 10
    assert 0.0 == ds.X.min() and ds.X.max() == 1.0


# ---------------------------------------------------------------- CIFAR


def cifar_pickle(obj: dict, legacy_numpy: bool = True) -> bytes:
    """Protocol-2 pickle with bytes keys; legacy_numpy spells the array global as in the official files."""
    data = pickle.dumps(obj, protocol=2)
    return data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray") if legacy_numpy else data


def write_cifar10(root: Path, per_batch: int = 2) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    n = per_batch * 6
    data = RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = np.arange(n) % 10
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    for b, name in enumerate(names):
        part = slice(b * per_batch, (b + 1) * per_batch)
        batch = {
            b"batch_label": f"batch {b}".encode(),
            b"labels": [int(v) for v in labels[part]],
            b"data": data[part],
            b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)],
        }
        (folder / name).write_bytes(cifar_pickle(batch, legacy_numpy=b % 2 == 0))
    meta = {
        b"label_names": [f"class{i}".encode() for i in range(10)],
        b"num_cases_per_batch": per_batch,
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(cifar_pickle(meta))
    return data, labels


def check_cifar_pixels(X: np.ndarray, data: np.ndarray) -> None:
    assert X.dtype == np.float32 and X.shape == (len(data), 3, 32, 32)
    assert X[1, 0, 0, 0] == np.float32(data[1, 0]) / np.float32(255)  # R plane first
    assert X[1, 1, 0, 0] == np.float32(data[1, 1024]) / np.float32(255)  # then G
    assert X[1, 2, 0, 0] == np.float32(data[1, 2048]) / np.float32(255)  # then B
    assert X[2, 2, 31, 31] == np.float32(data[2, 3071]) / np.float32(255)
    assert X[0, 0, 1, 0] == np.float32(data[0, 32]) / np.float32(255)  # rows of 32 pixels
    np.testing.assert_allclose(X, data.reshape(-1, 3, 32, 32) / 255.0, rtol=0, atol=1e-7)


def test_cifar10_folder(tmp_path: Path) -> None:
    data, labels = write_cifar10(tmp_path / "data")
    ds = load_dataset("cifar10", ctx(tmp_path, data_dir=tmp_path / "data"))
    check_cifar_pixels(ds.X, data)
    assert ds.y.tolist() == labels.tolist() and ds.y.dtype == np.int64 and ds.n_classes == 10
    assert ds.class_names == [f"class{i}" for i in range(10)]
    assert ds.source == str(tmp_path / "data" / "cifar-10-batches-py")


def test_cifar10_archive(tmp_path: Path) -> None:
    data, labels = write_cifar10(tmp_path / "src")
    (tmp_path / "data" / "cifar10").mkdir(parents=True)
    archive = tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    ds = load_dataset("cifar10", ctx(tmp_path, data_dir=tmp_path / "data"))
    assert ds.source == str(archive)
    check_cifar_pixels(ds.X, data)
    assert ds.y.tolist() == labels.tolist()


def test_cifar10_truncated_archive(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "src", per_batch=50)
    archive = tmp_path / "data" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match="re-download"):
        load_dataset("cifar10", ctx(tmp_path, data_dir=tmp_path / "data"))


def test_cifar100_folder_str_keys(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "cifar-100-python"
    folder.mkdir(parents=True)
    data = RNG.integers(0, 256, size=(5, 3072), dtype=np.uint8)
    fine, coarse = [99, 0, 42], [19, 0, 7]
    train = {b"filenames": [b"a", b"b", b"c"], b"batch_label": b"training batch 1 of 1",
             b"fine_labels": fine, b"coarse_labels": coarse, b"data": data[:3]}  # fmt: skip
    test = {"fine_labels": [5, 6], "coarse_labels": [1, 1], "data": data[3:]}  # str keys are accepted too
    (folder / "train").write_bytes(cifar_pickle(train))
    (folder / "test").write_bytes(cifar_pickle(test, legacy_numpy=False))
    meta = {b"fine_label_names": [f"f{i}".encode() for i in range(100)], b"coarse_label_names": [b"c"] * 20}
    (folder / "meta").write_bytes(cifar_pickle(meta))
    ds = load_dataset("cifar100", ctx(tmp_path, data_dir=tmp_path / "data"))
    check_cifar_pixels(ds.X, data)
    assert ds.y.tolist() == [99, 0, 42, 5, 6] and ds.n_classes == 100 and ds.class_names[42] == "f42"


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_pickle_forbidden_global_refused(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data")
    marker = tmp_path / "pwned"
    evil = {b"data": _Evil(marker), b"labels": [0]}
    (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(DataError, match=r"refusing to load (posix|nt|os)\.system") as err:
        load_dataset("cifar10", ctx(tmp_path, data_dir=tmp_path / "data"))
    assert "data_batch_3" in str(err.value)
    assert not marker.exists()
    with pytest.raises(DataError, match=r"(__builtin__|builtins)\.eval"):
        restricted_loads(pickle.dumps(_EvalPayload(), protocol=2), "x")


class _EvalPayload:
    def __reduce__(self):
        return (eval, ("1+1",))


def test_cifar_corrupt_pickle(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data")
    batch = tmp_path / "data" / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(DataError, match="test_batch.*re-download"):
        load_dataset("cifar10", ctx(tmp_path, data_dir=tmp_path / "data"))


def test_cifar_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="cifar-100-python.tar.gz") as err:
        load_dataset("cifar100", ctx(tmp_path, data_dir=tmp_path / "nothing"))
    assert str(tmp_path / "nothing" / "cifar100") in str(err.value)


# ---------------------------------------------------------------- purchase100 / texas100


def write_purchase(path: Path, labels: list[int], n: int = 600) -> np.ndarray:
    feats = RNG.integers(0, 2, size=(len(labels), n))
    path.write_text("".join(",".join(str(v) for v in [lab, *row]) + "\n" for lab, row in zip(labels, feats)))
    return feats


def test_purchase100(tmp_path: Path) -> None:
    (tmp_path / "data" / "purchase100").mkdir(parents=True)
    feats = write_purchase(tmp_path / "data" / "purchase100" / "dataset_purchase", [1, 100, 50, 2])
    ds = load_dataset("purchase100", ctx(tmp_path, data_dir=tmp_path / "data"))
    assert ds.X.shape == (4, 600) and ds.X.dtype == np.float32 and ds.kind == "tabular"
    assert ds.y.tolist() == [0, 99, 49, 1] and ds.n_classes == 100
    np.testing.assert_array_equal(ds.X, feats)
    # also accepted as data.path
    ds2 = load_dataset("purchase100", ctx(tmp_path, path=tmp_path / "data" / "purchase100" / "dataset_purchase"))
    np.testing.assert_array_equal(ds2.X, ds.X)


@pytest.mark.parametrize(
    "corrupt, expect",
    [
        (
            lambda lines: lines.__setitem__(2, lines[2].rsplit(",", 1)[0]),
            "line 3 has 600 comma-separated values, expected 601",
        ),
        (
            lambda lines: lines.__setitem__(1, lines[1][:-1] + "2"),
            "line 2, column 601: feature value '2' is not 0 or 1",
        ),
        (lambda lines: lines.__setitem__(3, "x" + lines[3][1:]), "line 4, column 1: 'x"),
        (lambda lines: lines.__setitem__(0, "101" + lines[0][1:]), "line 1: label '101' is not an integer in 1..100"),
    ],
)
def test_purchase100_corrupt(tmp_path: Path, corrupt, expect: str) -> None:
    path = tmp_path / "dataset_purchase"
    write_purchase(path, [1, 2, 3, 4])
    lines = path.read_text().splitlines()
    corrupt(lines)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_dataset("purchase100", ctx(tmp_path, path=path))
    assert expect in str(err.value) and str(path) in str(err.value)


def write_texas(folder: Path, labels: list[int], rows: int | None = None) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    feats = RNG.integers(0, 2, size=(rows if rows is not None else len(labels), 6169))
    (folder / "feats").write_text("".join(",".join(map(str, r)) + "\n" for r in feats))
    (folder / "labels").write_text("".join(f"{v}\n" for v in labels))
    return feats


@pytest.mark.parametrize("labels, expect", [([1, 100, 7], [0, 99, 6]), ([0, 99, 7], [0, 99, 7])])
def test_texas100(tmp_path: Path, labels: list[int], expect: list[int]) -> None:
    feats = write_texas(tmp_path / "data" / "texas" / "100", labels)
    ds = load_dataset("texas100", ctx(tmp_path, data_dir=tmp_path / "data"))
    assert ds.X.shape == (3, 6169) and ds.y.tolist() == expect and ds.n_classes == 100
    np.testing.assert_array_equal(ds.X, feats)


def test_texas100_mismatched_rows(tmp_path: Path) -> None:
    write_texas(tmp_path / "t", [1, 2, 3, 4], rows=3)
    with pytest.raises(DataError, match="'feats' has 3 rows but 'labels' has 4"):
        load_dataset("texas100", ctx(tmp_path, path=tmp_path / "t"))


def test_texas100_bad_labels(tmp_path: Path) -> None:
    write_texas(tmp_path / "t", [1, 2, 3])
    (tmp_path / "t" / "labels").write_text("1\nseven\n3\n")
    with pytest.raises(DataError, match="line 2, column 1: 'seven'"):
        load_dataset("texas100", ctx(tmp_path, path=tmp_path / "t"))


# ---------------------------------------------------------------- imagenet100 (folder of images)


def _image(path: Path, size: tuple[int, int], color: tuple[int, int, int]) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_imagenet100_train_val(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "data" / "imagenet100"
    _image(root / "train" / "n01" / "a.png", (20, 20), (255, 0, 0))
    _image(root / "train" / "n01" / "b.PNG", (10, 10), (0, 0, 255))
    _image(root / "train" / "n02" / "a.png", (12, 12), (0, 255, 0))
    wide = Image.new("RGB", (30, 10), (255, 0, 0))  # red | green | red: the centre crop is green
    wide.paste((0, 255, 0), (10, 0, 20, 10))
    (root / "val" / "n02").mkdir(parents=True)
    wide.save(root / "val" / "n02" / "wide.png")
    _image(root / "val" / "n01" / "x.JPEG", (16, 16), (10, 20, 30))
    ds = load_dataset("imagenet100", ctx(tmp_path, data_dir=tmp_path / "data", image_size=8))
    assert ds.X.shape == (5, 3, 8, 8) and ds.X.dtype == np.float32 and ds.n_classes == 2
    assert ds.class_names == ["n01", "n02"] and ds.y.tolist() == [0, 0, 1, 0, 1]
    assert (ds.X[0, 0] == 1).all() and (ds.X[0, 1:] == 0).all()  # red
    assert (ds.X[1, 2] == 1).all() and (ds.X[1, :2] == 0).all()  # blue
    assert (ds.X[4, 1] == 1).all() and (ds.X[4, [0, 2]] == 0).all()  # centre-cropped wide image is all green
    np.testing.assert_allclose(ds.X[3, :, 4, 4], np.array([10, 20, 30]) / 255, atol=3 / 255)  # lossy JPEG


def test_imagenet100_unreadable_image(tmp_path: Path) -> None:
    _image(tmp_path / "imgs" / "cat" / "a.png", (8, 8), (1, 2, 3))
    bad = tmp_path / "imgs" / "dog" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"not really a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        load_dataset("imagenet100", ctx(tmp_path, path=tmp_path / "imgs"))


def test_imagenet100_without_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    (tmp_path / "imgs" / "cat" / "a.png").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(DataError, match=r"pip install safecompress\[images\]"):
        load_dataset("imagenet100", ctx(tmp_path, path=tmp_path / "imgs"))


# ---------------------------------------------------------------- bring your own data


def test_npz_tabular_with_arbitrary_labels(tmp_path: Path) -> None:
    X = RNG.normal(size=(4, 3))
    np.savez(tmp_path / "d.npz", X=X, y=np.array([10, 30, 10, 20]))
    ds = load_dataset("npz", ctx(tmp_path, path=tmp_path / "d.npz"))
    assert ds.kind == "tabular" and ds.X.dtype == np.float32 and ds.input_shape == (3,)
    assert ds.y.tolist() == [0, 2, 0, 1] and ds.class_names == ["10", "20", "30"] and ds.n_classes == 3
    np.testing.assert_allclose(ds.X, X, rtol=1e-6)


def test_npz_images(tmp_path: Path) -> None:
    X = RNG.integers(0, 256, size=(3, 3, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "img.npz", X=X, y=np.array(["cat", "dog", "cat"]))
    ds = load_dataset("npz", ctx(tmp_path, path=tmp_path / "img.npz"))
    assert (
        ds.kind == "image"
        and ds.X.shape == (3, 3, 4, 4)
        and ds.X[2, 1, 3, 0] == np.float32(X[2, 1, 3, 0]) / np.float32(255)
    )
    assert ds.y.tolist() == [0, 1, 0] and ds.class_names == ["cat", "dog"]
    np.savez(tmp_path / "grey.npz", X=np.full((2, 5, 6), 0.5), y=np.array([1, 0]))
    grey = load_dataset("npz", ctx(tmp_path, path=tmp_path / "grey.npz"))
    assert (
        grey.X.shape == (2, 1, 5, 6) and grey.kind == "image" and grey.class_names is None and grey.y.tolist() == [1, 0]
    )


def test_npz_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data.path"):
        load_dataset("npz", ctx(tmp_path))
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match="object arrays"):
        load_dataset("npz", ctx(tmp_path, path=tmp_path / "obj.npz"))
    np.savez(tmp_path / "noy.npz", X=np.zeros((2, 2)))
    with pytest.raises(DataError, match="missing array"):
        load_dataset("npz", ctx(tmp_path, path=tmp_path / "noy.npz"))


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("age,label,income\n31,yes,1.5\n45,no,-2\n\n22,yes,3e2\n")
    ds = load_dataset("csv", ctx(tmp_path, path=path))
    assert ds.X.tolist() == [[31, 1.5], [45, -2], [22, 300]] and ds.X.dtype == np.float32
    assert ds.y.tolist() == [1, 0, 1] and ds.class_names == ["no", "yes"] and ds.kind == "tabular"
    path.write_text("a,b,target\n1,2,3\n4,5,7\n")
    ds = load_dataset("csv", ctx(tmp_path, path=path, label_column="target"))
    assert ds.y.tolist() == [0, 1] and ds.class_names == ["3", "7"]


def test_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(DataError, match="column 'b', line 3: 'oops' is not a number"):
        load_dataset("csv", ctx(tmp_path, path=path))
    with pytest.raises(DataError, match="no label column 'cls'"):
        load_dataset("csv", ctx(tmp_path, path=path, label_column="cls"))
    path.write_text("a,label\n1,0\n2\n")
    with pytest.raises(DataError, match="line 3 has 1 values"):
        load_dataset("csv", ctx(tmp_path, path=path))
    with pytest.raises(DataError, match="data.path"):
        load_dataset("csv", ctx(tmp_path, path=tmp_path / "absent.csv"))
