"""``purchase100``: Shokri et al.'s Purchase-100 (197324 shoppers, 600 binary features, 100 classes).

The file ``dataset_purchase`` has no header; each line is ``label,f1,...,f600`` with the label in
1..100. Also holds :func:`read_numeric_table`, the fast comma-separated reader shared with texas100.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ArrayDataset, DataContext, DatasetSource, not_found, register_dataset

log = logging.getLogger(__name__)

N_FEATURES = 600
FILE_NAMES = ("dataset_purchase", "dataset_purchase.csv")


def _first_bad_line(path: Path, n_columns: int, binary_from: int, first_range: tuple[int, int] | None) -> str | None:
    """Slow line-by-line scan that describes the first malformed line (used only after a failure)."""
    rows = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            rows += 1
            cells = line.strip().split(",")
            if len(cells) != n_columns:
                return f"line {lineno} has {len(cells)} comma-separated values, expected {n_columns}"
            for col, cell in enumerate(cells):
                try:
                    value = float(cell)
                except ValueError:
                    return f"line {lineno}, column {col + 1}: {cell.strip()!r} is not a number"
                if col >= binary_from and value not in (0.0, 1.0):
                    return f"line {lineno}, column {col + 1}: feature value {cell.strip()!r} is not 0 or 1"
                if (
                    col == 0
                    and first_range is not None
                    and not (value.is_integer() and first_range[0] <= value <= first_range[1])
                ):
                    return (
                        f"line {lineno}: label {cell.strip()!r} is not an integer in {first_range[0]}..{first_range[1]}"
                    )
    return None if rows else "it holds no data rows"


def read_numeric_table(
    path: Path, n_columns: int, *, binary_from: int = 0, first_range: tuple[int, int] | None = None
) -> np.ndarray:
    """Read a header-less comma-separated table of numbers as float32 (rows x ``n_columns``).

    Columns from ``binary_from`` on must be 0/1; ``first_range`` bounds the (integer) first column.
    Any problem raises DataError naming the file and the first bad line.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file warns; it is reported below
            table = np.loadtxt(path, delimiter=",", dtype=np.float32, comments=None, ndmin=2)
        ok = table.shape[0] > 0 and table.shape[1] == n_columns
        ok = ok and bool(np.isin(table[:, binary_from:], (0.0, 1.0)).all())
        if ok and first_range is not None:
            first = table[:, 0]
            ok = bool(((first == np.round(first)) & (first >= first_range[0]) & (first <= first_range[1])).all())
    except (ValueError, OSError) as exc:
        if isinstance(exc, OSError) and not Path(path).is_file():
            raise DataError(f"cannot read {path}: {exc}") from None
        ok = False
    if ok:
        return table
    problem = _first_bad_line(Path(path), n_columns, binary_from, first_range)
    problem = problem or f"it cannot be read as {n_columns} comma-separated numbers per line"
    raise DataError(f"{path}: {problem}; the file is damaged or not the expected dataset file (re-download it)")


def find_file(folders: list[Path], names: tuple[str, ...]) -> Path | None:
    """The first ``folder/name`` that is a file."""
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


@register_dataset("purchase100")
class Purchase100(DatasetSource):
    kind = "tabular"
    shape = (N_FEATURES,)
    n_classes = 100
    synthetic = False
    description = (
        "Purchase-100 (Shokri et al.), 197324 shoppers x 600 binary features, 100 classes (file dataset_purchase)"
    )

    def _dirs(self, ctx: DataContext) -> list[Path]:
        dirs = ctx.search_dirs("purchase100")
        if ctx.path is not None and Path(ctx.path).is_dir():
            dirs.insert(0, Path(ctx.path))
        return dirs

    def locate(self, ctx: DataContext) -> Path | None:
        if ctx.path is not None and Path(ctx.path).is_file():
            return Path(ctx.path)
        return find_file(self._dirs(ctx), FILE_NAMES)

    def load(self, ctx: DataContext) -> ArrayDataset:
        path = self.locate(ctx)
        if path is None:
            raise not_found(
                self.name,
                "a file named dataset_purchase",
                self._dirs(ctx),
                "Get dataset_purchase (Shokri et al., 'Membership Inference Attacks against Machine "
                "Learning Models') and pass its folder with --data-dir or the file with data.path",
            )
        table = read_numeric_table(path, N_FEATURES + 1, binary_from=1, first_range=(1, 100))
        log.info("loaded purchase100 from %s: %d records", path, len(table))
        return ArrayDataset(
            name=self.name,
            X=np.ascontiguousarray(table[:, 1:]),
            y=table[:, 0].astype(np.int64) - 1,
            n_classes=self.n_classes,
            kind=self.kind,
            synthetic=False,
            source=str(path),
        )
