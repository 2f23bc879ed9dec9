"""download_file and the fashion-mnist download path, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import gzip
import hashlib
import socket
import struct
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from safecompress.data import DATASETS, DataContext, load_dataset
from safecompress.data.download import download_file
from safecompress.errors import DataError

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(folder served, base URL) of an HTTP server on 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFECOMPRESS_DATA", raising=False)
    monkeypatch.delenv("SAFECOMPRESS_FASHION_MNIST_URL", raising=False)
    for var in ("http_proxy", "https_proxy", "all_proxy"):  # talk to 127.0.0.1 directly
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- download_file


def test_download_verifies_file(server: tuple[Path, str], tmp_path: Path) -> None:
    root, url = server
    blob = b"hello world" * 100
    (root / "f.bin").write_bytes(blob)
    dest = tmp_path / "out" / "sub" / "f.bin"
    assert download_file(url + "f.bin", dest, sha(blob), timeout=10) == dest
    assert dest.read_bytes() == blob
    assert [p.name for p in dest.parent.iterdir()] == ["f.bin"]  # no temporary left behind


def test_download_payload_checksum(server: tuple[Path, str], tmp_path: Path) -> None:
    root, url = server
    payload = bytes(range(256)) * 10
    gz = gzip.compress(payload, mtime=0)
    (root / "p.gz").write_bytes(gz)
    dest = tmp_path / "p.gz"
    download_file(url + "p.gz", dest, sha(payload), timeout=10, checksum_of="payload")
    assert dest.read_bytes() == gz  # stored as served, still compressed
    with pytest.raises(DataError, match="decompressed content"):
        download_file(url + "p.gz", tmp_path / "q.gz", sha(gz), timeout=10, checksum_of="payload")
    assert not (tmp_path / "q.gz").exists()


def test_download_mismatch_leaves_nothing(server: tuple[Path, str], tmp_path: Path) -> None:
    root, url = server
    (root / "f.bin").write_bytes(b"tampered")
    dest = tmp_path / "cache" / "f.bin"
    with pytest.raises(DataError) as err:
        download_file(url + "f.bin", dest, sha(b"original"), timeout=10)
    msg = str(err.value)
    assert sha(b"tampered") in msg and sha(b"original") in msg and "--data-dir" in msg
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_download_keeps_existing_file_on_failure(server: tuple[Path, str], tmp_path: Path) -> None:
    root, url = server
    (root / "f.bin").write_bytes(b"new")
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    with pytest.raises(DataError):
        download_file(url + "f.bin", dest, sha(b"other"), timeout=10)
    assert dest.read_bytes() == b"old"


def test_download_http_error_and_unreachable(server: tuple[Path, str], tmp_path: Path) -> None:
    _, url = server
    with pytest.raises(DataError, match=r"HTTP 404.*--data-dir"):
        download_file(url + "absent.gz", tmp_path / "a.gz", sha(b""), timeout=10)
    with pytest.raises(DataError, match=r"failed .*--data-dir"):
        download_file(f"http://127.0.0.1:{closed_port()}/x", tmp_path / "x", sha(b""), timeout=10)
    with pytest.raises(DataError, match="only http and https"):
        download_file("file:///etc/hostname", tmp_path / "y", sha(b""), timeout=10)
    assert list(tmp_path.iterdir()) == [tmp_path / "www"]


# ---------------------------------------------------------------- fashion-mnist download


def idx_gz(arr: np.ndarray) -> tuple[bytes, str]:
    """(gzip file bytes, SHA-256 of the uncompressed IDX payload) for a uint8 array."""
    payload = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    return gzip.compress(payload), sha(payload)


@pytest.fixture
def fashion_server(server: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, str], np.ndarray]:
    """Serves tiny fashion-mnist .gz files; points the loader (URL, checksums, no system dir) at them."""
    root, url = server
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([2, 4, 6, 8, 9], dtype=np.uint8)
    arrays = dict(zip(STEMS, (images[:3], labels[:3], images[3:], labels[3:])))
    sums = {}
    for stem, arr in arrays.items():
        blob, sums[stem] = idx_gz(arr)
        (root / f"{stem}.gz").write_bytes(blob)
    cls = DATASETS.get("fashion-mnist")
    monkeypatch.setattr(cls, "base_url", url)
    monkeypatch.setattr(cls, "sha256", sums)
    monkeypatch.setattr(cls, "system_dirs", ())
    return url, sums, images


def test_fashion_mnist_download(fashion_server, tmp_path: Path) -> None:
    _, _, images = fashion_server
    (tmp_path / "empty").mkdir()
    ctx = DataContext(cache_dir=tmp_path / "cache", download=True, data_dir=tmp_path / "empty")
    ds = load_dataset("fashion-mnist", ctx)
    assert ds.X.shape == (5, 1, 28, 28) and ds.y.tolist() == [2, 4, 6, 8, 9]
    np.testing.assert_allclose(ds.X[:, 0], images / 255.0, rtol=0, atol=1e-7)
    folder = tmp_path / "cache" / "fashion-mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.gz" for s in STEMS)
    assert ds.source == str(folder)
    # found in the cache afterwards, without downloading
    offline = DataContext(cache_dir=tmp_path / "cache", download=False, data_dir=tmp_path / "empty")
    assert DATASETS.get("fashion-mnist")().locate(offline) == folder


def test_fashion_mnist_download_url_from_env(fashion_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, _, _ = fashion_server
    monkeypatch.setattr(DATASETS.get("fashion-mnist"), "base_url", f"http://127.0.0.1:{closed_port()}/")
    monkeypatch.setenv("SAFECOMPRESS_FASHION_MNIST_URL", url.rstrip("/"))
    ds = load_dataset("fashion-mnist", DataContext(cache_dir=tmp_path / "cache", download=True))
    assert len(ds) == 5


def test_fashion_mnist_download_bad_checksum(fashion_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, sums, _ = fashion_server
    monkeypatch.setattr(DATASETS.get("fashion-mnist"), "sha256", {**sums, "t10k-images-idx3-ubyte": "0" * 64})
    ctx = DataContext(cache_dir=tmp_path / "cache", download=True, data_dir=tmp_path / "empty")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz") as err:
        load_dataset("fashion-mnist", ctx)
    assert "--data-dir" in str(err.value)
    folder = tmp_path / "cache" / "fashion-mnist"
    assert not (folder / "t10k-images-idx3-ubyte.gz").exists()
    assert not any(p.name.endswith(".tmp") for p in folder.iterdir())
