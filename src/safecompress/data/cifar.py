"""``cifar10`` and ``cifar100``: the official "python version" of CIFAR (pickled batches).

Accepted forms, in each search folder: the extracted folder (``cifar-10-batches-py`` /
``cifar-100-python``), the folder itself, or the untouched archive (``cifar-10-python.tar.gz`` /
``cifar-100-python.tar.gz``, read in place without extracting). The batches are pickles, so they are
read with :class:`RestrictedUnpickler`, which only builds numpy arrays and plain containers.
"""

from __future__ import annotations

import codecs
import io
import logging
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar

import numpy as np

from ..errors import DataError
from .base import ArrayDataset, DataContext, DatasetSource, not_found, register_dataset

log = logging.getLogger(__name__)

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

# The only globals a CIFAR batch needs: numpy array reconstruction, plain containers, and
# _codecs.encode (how Python 3 protocol-2 pickles spell bytes objects).
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}
for _module in ("builtins", "__builtin__"):
    for _name, _obj in (("list", list), ("dict", dict), ("tuple", tuple), ("set", set), ("frozenset", frozenset)):
        _ALLOWED[(_module, _name)] = _obj


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals numpy arrays and builtin containers need."""

    def __init__(self, file: IO[bytes], source: str):
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.source}: refusing to load {module}.{name} from a pickle; an official CIFAR "
                "batch holds only arrays and lists, so this file is not one (re-download it)"
            ) from None


def restricted_loads(data: bytes, source: str) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; any failure is a DataError."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), source).load()
    except DataError:
        raise
    except Exception as exc:  # pickle raises many types for damaged input
        raise DataError(
            f"{source}: cannot unpickle ({type(exc).__name__}: {exc}); the file is corrupt, re-download it"
        ) from None


def _field(batch: Any, key: str, source: str) -> Any:
    """``batch[key]`` accepting both bytes keys (Python 2 pickles) and str keys."""
    if isinstance(batch, dict):
        for k in (key.encode(), key):
            if k in batch:
                return batch[k]
    raise DataError(f"{source}: not a CIFAR batch (no {key!r} entry); re-download the dataset")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_members(where: Path, top: str, names: tuple[str, ...]) -> dict[str, bytes]:
    """The bytes of each file in ``names`` that exists, from a folder or (in one pass) a .tar.gz."""
    found: dict[str, bytes] = {}
    if where.is_dir():
        for name in names:
            if (where / name).is_file():
                try:
                    found[name] = (where / name).read_bytes()
                except OSError as exc:
                    raise DataError(f"cannot read {where / name}: {exc.strerror or exc}") from None
        return found
    try:
        with tarfile.open(where, "r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if member.isfile() and len(parts) >= 2 and parts[-2] == top and parts[-1] in names:
                    fh = tar.extractfile(member)
                    if fh is not None:
                        found[parts[-1]] = fh.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{where}: cannot read the archive ({exc}); it is truncated or corrupt, re-download it"
        ) from None
    return found


class _Cifar(DatasetSource):
    """Shared reader; subclasses name the folder, archive, batches and label keys."""

    kind = "image"
    hflip = True
    shape = (3, 32, 32)
    synthetic = False

    folder_name: ClassVar[str]
    archive_name: ClassVar[str]
    batches: ClassVar[tuple[str, ...]]
    label_key: ClassVar[str]
    meta_name: ClassVar[str]
    names_key: ClassVar[str]
    system_dirs: ClassVar[tuple[str, ...]] = ()

    def _dirs(self, ctx: DataContext) -> list[Path]:
        return ctx.search_dirs(self.name, system=tuple(self.system_dirs))

    def _is_complete(self, folder: Path) -> bool:
        return all((folder / b).is_file() for b in self.batches)

    def locate(self, ctx: DataContext) -> Path | None:
        for d in self._dirs(ctx):
            for candidate in (d / self.folder_name, d):
                if candidate.is_dir() and self._is_complete(candidate):
                    return candidate
            if (d / self.archive_name).is_file():
                return d / self.archive_name
        return None

    def load(self, ctx: DataContext) -> ArrayDataset:
        where = self.locate(ctx)
        if where is None:
            raise not_found(
                self.name,
                f"no {self.folder_name}/ folder or {self.archive_name}",
                self._dirs(ctx),
                f"Download {self.archive_name} (the CIFAR 'python version') from "
                "https://www.cs.toronto.edu/~kriz/cifar.html and pass its folder with --data-dir",
            )
        files = read_members(where, self.folder_name, (*self.batches, self.meta_name))
        images, labels = [], []
        for batch_name in self.batches:
            source = f"{where}/{batch_name}" if where.is_dir() else f"{where}:{self.folder_name}/{batch_name}"
            if batch_name not in files:
                raise DataError(f"{source} is missing; re-download {self.archive_name}")
            batch = restricted_loads(files[batch_name], source)
            data = np.asarray(_field(batch, "data", source))
            y = np.asarray(_field(batch, self.label_key, source), dtype=np.int64)
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(y) != len(data):
                raise DataError(
                    f"{source}: expected N x 3072 uint8 pixels and N labels, got {data.dtype} {data.shape} "
                    f"and {len(y)} labels; re-download the dataset"
                )
            images.append(data.reshape(-1, 3, 32, 32))  # each row holds the R, G and B planes in turn
            labels.append(y)
        class_names = None
        if self.meta_name in files:
            meta = restricted_loads(files[self.meta_name], f"{where}/{self.meta_name}")
            class_names = [_text(n) for n in _field(meta, self.names_key, self.meta_name)]
        else:
            log.warning("%s: %s is missing, classes will be unnamed", where, self.meta_name)
        X = np.concatenate(images).astype(np.float32) / np.float32(255.0)
        log.info("loaded %s from %s: %d images", self.name, where, len(X))
        return ArrayDataset(
            name=self.name,
            X=X,
            y=np.concatenate(labels),
            n_classes=int(self.n_classes or 0),
            kind=self.kind,
            synthetic=False,
            source=str(where),
            class_names=class_names,
        )


@register_dataset("cifar10")
class Cifar10(_Cifar):
    n_classes = 10
    description = "CIFAR-10, 60000 colour 32x32 images, 10 classes (python version; pass with --data-dir)"
    folder_name = "cifar-10-batches-py"
    archive_name = "cifar-10-python.tar.gz"
    batches = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
    label_key = "labels"
    meta_name = "batches.meta"
    names_key = "label_names"


@register_dataset("cifar100")
class Cifar100(_Cifar):
    n_classes = 100
    description = "CIFAR-100, 60000 colour 32x32 images, 100 fine classes (python version; pass with --data-dir)"
    folder_name = "cifar-100-python"
    archive_name = "cifar-100-python.tar.gz"
    batches = ("train", "test")
    label_key = "fine_labels"
    meta_name = "meta"
    names_key = "fine_label_names"
