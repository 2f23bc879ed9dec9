"""The shared machinery of generated datasets: seeded generation, a compact on-disk cache, and
cache validation (a cache file that fails to load or does not match is regenerated, never trusted)."""

from __future__ import annotations

import logging
import time
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import DataError
from ..fileio import atomic_save_npz, load_npz
from .base import ArrayDataset, DataContext, DatasetSource

log = logging.getLogger(__name__)


class BadCache(ValueError):
    """A cache file was readable but does not hold what this recipe would generate."""


class SyntheticSource(DatasetSource):
    """A generated dataset, cached on disk in a compact form (see :meth:`encode`/:meth:`decode`).

    Subclasses set ``default_samples``, ``recipe`` (a one-line summary for ``source``) and
    ``recipe_version`` (bump it whenever the generator changes), and implement :meth:`generate`.
    """

    synthetic: ClassVar[bool] = True
    default_samples: ClassVar[int] = 0
    recipe: ClassVar[str] = ""
    recipe_version: ClassVar[int] = 1

    def generate(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(X, y)`` with X in the compact storage form (uint8) and y int64."""
        raise NotImplementedError

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Compact array stored in the cache (identity by default)."""
        return X

    def decode(self, stored: np.ndarray, n: int) -> np.ndarray:
        """Inverse of :meth:`encode`, still in storage dtype."""
        return stored

    def to_float(self, X: np.ndarray) -> np.ndarray:
        """Storage form -> float32 features as returned to users."""
        return X.astype(np.float32)

    def n_samples(self, ctx: DataContext) -> int:
        n = self.default_samples if ctx.synth_samples is None else int(ctx.synth_samples)
        minimum = int(self.n_classes or 1)
        if n < minimum:
            raise DataError(f"dataset {self.name!r}: synth_samples must be at least {minimum} (one per class), got {n}")
        return n

    def cache_path(self, ctx: DataContext) -> Path:
        n = self.n_samples(ctx)
        return Path(ctx.cache_dir) / "synthetic" / f"{self.name}-n{n}-s{ctx.synth_seed}-v{self.recipe_version}.npz"

    def locate(self, ctx: DataContext) -> Path | None:
        path = self.cache_path(ctx)
        return path if path.is_file() else None

    def _read_cache(self, path: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
        arrays = load_npz(path)
        if "X" not in arrays or "y" not in arrays:
            raise BadCache(f"arrays {sorted(arrays)} instead of X and y")
        X, y = self.decode(arrays["X"], n), arrays["y"]
        expected = (n, *(self.shape or ()))
        if X.shape != expected or X.dtype != np.uint8:
            raise BadCache(f"features {X.shape} {X.dtype}, expected {expected} uint8")
        if y.shape != (n,) or y.dtype != np.int64 or y.min() < 0 or y.max() >= int(self.n_classes or 0):
            raise BadCache(f"labels of shape {y.shape}, dtype {y.dtype} do not match")
        return X, y

    def load(self, ctx: DataContext) -> ArrayDataset:
        n, seed = self.n_samples(ctx), int(ctx.synth_seed)
        path = self.cache_path(ctx)
        data: tuple[np.ndarray, np.ndarray] | None = None
        if path.is_file():
            try:
                data = self._read_cache(path, n)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                log.warning("ignoring unusable cache file %s (%s); regenerating %s", path, exc, self.name)
        if data is None:
            start = time.perf_counter()
            data = self.generate(n, np.random.default_rng(seed))
            log.info("generated %s (n=%d, seed=%d) in %.1f s", self.name, n, seed, time.perf_counter() - start)
            try:
                atomic_save_npz(path, X=self.encode(data[0]), y=data[1])
            except OSError as exc:
                log.warning("could not cache %s at %s: %s", self.name, path, exc)
        X, y = data
        return ArrayDataset(
            name=self.name,
            X=self.to_float(X),
            y=y,
            n_classes=int(self.n_classes or 0),
            kind=self.kind,
            synthetic=True,
            source=f"generated: {self.recipe}, seed={seed} (cached at {path})",
        )
