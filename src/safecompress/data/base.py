"""The dataset contract: what a registered dataset plugin provides and what it returns.

A plugin is a subclass of :class:`DatasetSource` registered in :data:`DATASETS`. It knows where its
files may live (:meth:`DatasetSource.locate`) and how to read them into an :class:`ArrayDataset`
(:meth:`DatasetSource.load`). Loaders return *all* samples of the dataset (official train and test
parts pooled); the membership split (``split.py``) decides every sample's role.

Arrays: ``X`` is float32 — images are NCHW in [0, 1], tables are one row per record, text is one
row of token ids per document — and ``y`` is int64 in ``[0, n_classes)``.

Learned features (a text vocabulary) must not see the training records: such a dataset is returned
*unfitted* — ``X`` holds the raw documents and ``featurizer`` the object that learns from them — and the
run calls :meth:`ArrayDataset.fitted` with the population part of the membership split once the split
is known (``data/text.py``).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import DataError, DatasetNotFoundError
from ..registry import Registry

DATA_ENV = "SAFECOMPRESS_DATA"
CACHE_ENV = "SAFECOMPRESS_CACHE"


def default_cache_dir() -> Path:
    """Where generated/downloaded datasets are cached: $SAFECOMPRESS_CACHE or ~/.cache/safecompress."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "safecompress"


@dataclass
class DataContext:
    """What a loader may use to find or build its data (filled from the ``data`` config section)."""

    data_dir: Path | None = None  # --data-dir; $SAFECOMPRESS_DATA is consulted as well
    cache_dir: Path = field(default_factory=default_cache_dir)
    download: bool = False  # allowed to fetch from the dataset's canonical location
    path: Path | None = None  # file or folder for bring-your-own data (npz, csv, ...)
    label_column: str = "label"  # csv: the column holding the class label
    sensitive_column: str | None = None  # attribute inference: the column (csv, income) or array (npz) held out
    synth_samples: int | None = None  # synthetic generators: number of records (None = default)
    synth_seed: int = 0  # synthetic generators: seed of the generated dataset
    image_size: int = 32  # folder-of-images datasets are resized to this square size

    def search_dirs(self, name: str, system: tuple[str, ...] = ()) -> list[Path]:
        """Folders to look in, in order: --data-dir, $SAFECOMPRESS_DATA, the cache, system paths.

        Each user folder is tried both as ``DIR/<name>`` and as ``DIR`` itself.
        """
        roots: list[Path] = []
        if self.data_dir is not None:
            roots.append(Path(self.data_dir).expanduser())
        env = os.environ.get(DATA_ENV)
        if env:
            roots.append(Path(env).expanduser())
        dirs: list[Path] = []
        for root in roots:
            dirs += [root / name, root]
        dirs.append(Path(self.cache_dir) / name)
        dirs += [Path(p) for p in system]
        seen: set[Path] = set()
        unique = []
        for d in dirs:
            if d not in seen:
                seen.add(d)
                unique.append(d)
        return unique


@dataclass
class ArrayDataset:
    """A whole dataset in memory."""

    name: str
    X: np.ndarray
    y: np.ndarray
    n_classes: int
    kind: str  # "image", "tabular" or "text"
    synthetic: bool
    source: str  # where it came from (a path, or "generated: ...")
    class_names: list[str] | None = None
    hflip: bool = True  # images: is a horizontal flip label-preserving (False for digits and text)
    sensitive: np.ndarray | None = None  # attribute-inference datasets: the sensitive attribute's codes
    sensitive_names: list[str] | None = None
    # text: the token ids in X lie in [0, vocab_size) (the models' embedding tables have this many rows)
    vocab_size: int | None = None
    # learned features (text): X holds the raw documents until ``fitted`` replaces them (see the module doc)
    featurizer: Any = None
    # after ``fitted``: what the featurizer learned (``featurizer.state()``, e.g. the vocabulary), or None
    feature_state: dict | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.needs_fit:
            raise DataError(
                f"dataset {self.name!r} is not featurised yet: call fitted(population rows) after the membership split"
            )
        return tuple(int(s) for s in self.X.shape[1:])

    @property
    def needs_fit(self) -> bool:
        return self.featurizer is not None

    def fitted(self, rows: np.ndarray) -> "ArrayDataset":
        """The dataset with its learned features fitted on ``rows`` only (the population part of the membership
        split, never its members) and applied to every record. Datasets with fixed features return themselves."""
        if not self.needs_fit:
            return self
        rows = np.asarray(rows, dtype=np.int64)
        feat = copy.deepcopy(self.featurizer).fit(self.X[rows].tolist())  # the loader's featurizer stays unfitted
        X = feat.transform(self.X.tolist())
        state = feat.state() if hasattr(feat, "state") else None
        return replace(self, X=X, featurizer=None, vocab_size=feat.vocab_size, feature_state=state).validate()

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def validate(self) -> "ArrayDataset":
        """Check the contract; raise DataError naming the dataset and the problem."""
        where = f"dataset {self.name!r} ({self.source})"
        if self.needs_fit:
            if self.X.ndim != 1 or self.X.dtype != object or len(self.X) != len(self.y):
                raise DataError(f"{where}: an unfitted text dataset holds one document (str) per label in a 1-D array")
            if len(self.X) == 0:
                raise DataError(f"{where}: the dataset is empty")
            if self.y.min() < 0 or self.y.max() >= self.n_classes:
                raise DataError(
                    f"{where}: labels must lie in [0, {self.n_classes}), found [{self.y.min()}, {self.y.max()}]"
                )
            self.y = self.y.astype(np.int64)
            return self
        if self.X.ndim < 2:
            raise DataError(
                f"{where}: features must have a sample axis and at least one feature axis, got shape {self.X.shape}"
            )
        if self.y.ndim != 1 or self.y.shape[0] != self.X.shape[0]:
            raise DataError(f"{where}: {self.X.shape[0]} samples but labels of shape {self.y.shape}")
        if self.X.shape[0] == 0:
            raise DataError(f"{where}: the dataset is empty")
        if self.kind not in ("image", "tabular", "text"):
            raise DataError(f"{where}: kind must be 'image', 'tabular' or 'text', got {self.kind!r}")
        if self.kind == "image" and self.X.ndim != 4:
            raise DataError(f"{where}: images must be N x C x H x W, got shape {self.X.shape}")
        if self.y.min() < 0 or self.y.max() >= self.n_classes:
            raise DataError(
                f"{where}: labels must lie in [0, {self.n_classes}), found range [{self.y.min()}, {self.y.max()}]"
            )
        if self.X.dtype != np.float32:
            self.X = self.X.astype(np.float32)
        if self.y.dtype != np.int64:
            self.y = self.y.astype(np.int64)
        if not np.isfinite(self.X).all():
            raise DataError(f"{where}: features contain NaN or infinite values; clean or impute them first")
        if self.kind == "text":
            v = self.vocab_size
            ids = self.X
            if ids.ndim != 2 or not v or (ids < 0).any() or (ids >= v).any() or (ids != np.round(ids)).any():
                raise DataError(f"{where}: text must be rows of integral token ids in [0, vocab_size={v})")
        if self.sensitive is not None:
            if (
                self.sensitive.shape != self.y.shape
                or self.sensitive.dtype != np.int64
                or (len(self.sensitive) and self.sensitive.min() < 0)
            ):
                raise DataError(f"{where}: the sensitive attribute must be one non-negative int64 code per sample")
        return self

    @property
    def has_sensitive(self) -> bool:
        return self.sensitive is not None


class DatasetSource:
    """Base class of dataset plugins. Subclasses set the class attributes and implement load/locate."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "tabular"  # "image", "tabular" or "text"
    shape: ClassVar[tuple[int, ...] | None] = None  # per-sample shape; None = depends on the files
    n_classes: ClassVar[int | None] = None  # None = depends on the files
    synthetic: ClassVar[bool] = False
    description: ClassVar[str] = ""
    # where real data comes from (who collected it, the package that ships it, its licence, how to fetch
    # it); shown under ``safecompress list datasets``. Empty for generated data and bring-your-own.
    provenance: ClassVar[str] = ""
    # images: whether a horizontal flip is known to preserve labels, without loading the data (the loaded
    # ArrayDataset's ``hflip`` says it too). None: not declared — a reference trained from a recipe (outside
    # audit) then never flips, since the audited model may never have seen a mirrored record
    hflip: ClassVar[bool | None] = None

    def locate(self, ctx: DataContext) -> Path | None:
        """Where the dataset's files were found, or None when they are not on this machine.

        Synthetic datasets return their cache file if it exists (they are generated on demand).
        """
        raise NotImplementedError

    def availability(self, ctx: DataContext) -> tuple[bool, str]:
        """(usable now, human-readable location) for ``safecompress list datasets``."""
        where = self.locate(ctx)
        if where is not None:
            return True, str(where)
        if self.synthetic:
            return True, "generated on first use"
        return False, "not found"

    def load(self, ctx: DataContext) -> ArrayDataset:
        raise NotImplementedError


DATASETS: Registry[type[DatasetSource]] = Registry("dataset")
register_dataset = DATASETS.register  # class decorator: @register_dataset("name")


def not_found(name: str, wanted: str, looked: list[Path], how: str) -> DatasetNotFoundError:
    """The error for missing files: what was wanted, every folder searched, and how to get the data."""
    listing = "\n".join(f"  - {d}" for d in looked)
    return DatasetNotFoundError(f"dataset {name!r} not found: {wanted} in none of these folders:\n{listing}\n{how}")
