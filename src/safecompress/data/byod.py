"""Bring-your-own-data: ``npz`` (arrays ``X`` and ``y``) and ``csv`` (header row + label column).

Either may carry a sensitive attribute for attribute-inference audits: the npz array ``sensitive``
(or the array ``data.sensitive_column`` names), or the csv column ``data.sensitive_column``, which is
then held out of the features.

Both read ``data.path``. Labels that are not already ``0..K-1`` integers (gaps, other integers,
strings) are mapped to ``0..K-1`` in sorted order, and the original values become the class names.
Labels must be integers within ±2^53 (floats must be integral: 3.0, not 3.5; beyond 2^53 a float no
longer tells neighbouring integers apart) or non-empty strings, and there must be at least 2 classes.
A csv file must be UTF-8 text.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fileio import load_npz
from .base import ArrayDataset, DataContext, DatasetSource, register_dataset

log = logging.getLogger(__name__)
LABEL_LIMIT = 2**53  # integers a float64 holds exactly


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def encode_labels(y: np.ndarray, source: str) -> tuple[np.ndarray, list[str] | None]:
    """(labels as int64 in 0..K-1, class names or None when the labels already were 0..K-1)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be one value per sample, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not (y == np.round(y)).all():
            raise DataError(f"{source}: labels must be integers or strings, found non-integral numbers")
        if y.size and np.abs(y).max() >= LABEL_LIMIT:
            raise DataError(
                f"{source}: float labels reach {np.abs(y).max():.6g}, beyond ±2^53, where a float cannot "
                "tell neighbouring integers apart (classes would merge); store the labels as int64 or "
                "strings"
            )
        y = y.astype(np.int64)
    if y.dtype.kind not in "iubUS":
        raise DataError(f"{source}: unsupported label type {y.dtype}; use integers or strings")
    if y.dtype.kind in "US" and y.size and (np.char.strip(y) == (b"" if y.dtype.kind == "S" else "")).any():
        raise DataError(f"{source}: some labels are empty strings; every sample needs a class")
    classes, codes = np.unique(y, return_inverse=True)
    if y.dtype.kind in "iub" and np.array_equal(classes, np.arange(len(classes))):
        return y.astype(np.int64), None
    names = [c.decode() if isinstance(c, bytes) else str(c) for c in classes.tolist()]
    return codes.reshape(-1).astype(np.int64), names


def _require_path(ctx: DataContext, what: str) -> Path:
    if ctx.path is None:
        raise DataError(f"dataset {what!r} reads your own file: set `data.path` to the {what} file to use")
    path = Path(ctx.path).expanduser()
    if not path.is_file():
        raise DataError(f"dataset {what!r}: data.path {path} does not exist or is not a file")
    return path


def _dataset(
    name: str, X: np.ndarray, y: np.ndarray, source: Path, sensitive: np.ndarray | None = None
) -> ArrayDataset:
    y_codes, names = encode_labels(y, str(source))
    if len(y_codes) != len(X):
        raise DataError(f"{source}: {len(X)} samples but {len(y_codes)} labels")
    n_classes = int(y_codes.max()) + 1 if len(y_codes) else 0
    if 0 < n_classes < 2:
        raise DataError(
            f"{source}: every sample has the same label, so there is nothing to classify (and no "
            "membership audit); a dataset needs at least 2 classes"
        )
    s_codes = s_names = None
    if sensitive is not None:
        s_codes, s_names = encode_labels(sensitive, f"{source} (sensitive attribute)")
        if len(s_codes) != len(X):
            raise DataError(f"{source}: {len(X)} samples but {len(s_codes)} sensitive values")
        s_names = s_names or [str(v) for v in range(int(s_codes.max()) + 1 if len(s_codes) else 0)]
    log.info("loaded %s from %s: %d samples, features %s", name, source, len(X), X.shape[1:])
    return ArrayDataset(
        name=name,
        X=X,
        y=y_codes,
        n_classes=n_classes,
        kind="image" if X.ndim == 4 else "tabular",
        synthetic=False,
        source=str(source),
        class_names=names,
        sensitive=s_codes,
        sensitive_names=s_names,
    )


@register_dataset("npz")
class NpzDataset(DatasetSource):
    kind = "tabular"  # or "image", depending on the arrays
    synthetic = False
    description = "your own .npz with X (N x F table, N x C x H x W or N x H x W images) and y (data.path)"

    def locate(self, ctx: DataContext) -> Path | None:
        return Path(ctx.path) if ctx.path is not None and Path(ctx.path).is_file() else None

    def load(self, ctx: DataContext) -> ArrayDataset:
        path = _require_path(ctx, "npz")
        try:
            z = load_npz(path)
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{path}: cannot read it as an .npz of plain arrays ({str(exc)[:300]}); object arrays are not allowed"
            ) from None
        names = list(z)
        missing = [k for k in ("X", "y") if k not in z]
        if missing:
            raise DataError(f"{path}: missing array(s) {missing}; the file holds {names}, expected X and y")
        X, y = z["X"], z["y"]
        key = ctx.sensitive_column or ("sensitive" if "sensitive" in z else None)
        if key is not None and key not in z:
            raise DataError(
                f"{path}: no array {key!r} for the sensitive attribute (data.sensitive_column); the file holds {names}"
            )
        sensitive = z[key] if key is not None else None
        if X.dtype.kind not in "iubf":
            raise DataError(f"{path}: X must be numeric, got dtype {X.dtype}")
        if X.ndim == 3:
            X = X[:, None]  # N x H x W -> one channel
        if X.ndim == 4 and X.shape[1] not in (1, 3, 4) and X.shape[3] in (1, 3, 4):
            raise DataError(f"{path}: X of shape {X.shape} looks channels-last; store it as N x C x H x W")
        if X.ndim not in (2, 4):
            raise DataError(f"{path}: X must be 2-D (table), 3-D (N x H x W) or 4-D (N x C x H x W), got {X.shape}")
        if X.ndim == 4 and X.dtype == np.uint8:
            X = X.astype(np.float32) / np.float32(255.0)
        X = X.astype(np.float32)
        if X.ndim == 4 and X.size and (X.min() < 0.0 or X.max() > 1.0):
            raise DataError(f"{path}: image values span [{X.min()}, {X.max()}]; scale them to [0, 1] (or store uint8)")
        return _dataset(self.name, X, y, path, sensitive)


@register_dataset("csv")
class CsvDataset(DatasetSource):
    kind = "tabular"
    synthetic = False
    description = (
        "your own .csv: a header row, numeric feature columns and a label column (data.path, data.label_column)"
    )

    def locate(self, ctx: DataContext) -> Path | None:
        return Path(ctx.path) if ctx.path is not None and Path(ctx.path).is_file() else None

    def load(self, ctx: DataContext) -> ArrayDataset:
        path = _require_path(ctx, "csv")
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                rows, labels, sensitive_values, sensitive_at = self._read_rows(fh, path, ctx)
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}: not UTF-8 text ({exc.reason}); save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
            ) from None
        except csv.Error as exc:
            raise DataError(f"{path}: not a readable csv file ({exc})") from None
        if not rows:
            raise DataError(f"{path}: no data rows after the header")
        as_int = [_int_or_none(v) for v in labels]
        if all(v is not None for v in as_int):
            too_big = next((v for v in as_int if abs(v) >= LABEL_LIMIT), None)
            if too_big is not None:
                raise DataError(
                    f"{path}: label {too_big} in column {ctx.label_column!r} is beyond ±2^53; use smaller "
                    "integer class ids or class names"
                )
            y: np.ndarray = np.array(as_int, dtype=np.int64)
        else:
            y = np.array(labels)
        sensitive = None
        if sensitive_at is not None:
            as_int = [_int_or_none(v) for v in sensitive_values]
            if all(v is not None and abs(v) < LABEL_LIMIT for v in as_int):
                sensitive = np.array(as_int, dtype=np.int64)
            else:
                sensitive = np.array(sensitive_values)
        return _dataset(self.name, np.array(rows, dtype=np.float32).reshape(len(rows), -1), y, path, sensitive)

    @staticmethod
    def _read_rows(fh, path: Path, ctx: DataContext):
        """(feature rows, labels, sensitive values, sensitive column index) of an open csv file."""
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if ctx.label_column not in header:
            raise DataError(
                f"{path}: no label column {ctx.label_column!r} in the header {header}; "
                "set data.label_column to the column holding the class"
            )
        label_at = header.index(ctx.label_column)
        sensitive_at = None
        if ctx.sensitive_column is not None:
            if ctx.sensitive_column not in header:
                raise DataError(
                    f"{path}: no sensitive column {ctx.sensitive_column!r} in the header {header}; "
                    "set data.sensitive_column to the attribute to hold out, or leave it unset"
                )
            sensitive_at = header.index(ctx.sensitive_column)
            if sensitive_at == label_at:
                raise DataError(f"{path}: the sensitive column cannot be the label column {ctx.label_column!r}")
        feature_cols = [i for i in range(len(header)) if i not in (label_at, sensitive_at)]
        sensitive_values: list[str] = []
        rows: list[list[float]] = []
        labels: list[str] = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise DataError(f"{path}: row on line {line} has {len(row)} values, the header has {len(header)}")
            values = []
            for i in feature_cols:
                try:
                    value = float(row[i])
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise DataError(
                        f"{path}: column {header[i]!r}, line {line}: {row[i]!r} is not a number; "
                        "features must be numeric (encode categories and impute missing values first)"
                    )
                values.append(value)
            label = row[label_at].strip()
            if not label:
                raise DataError(
                    f"{path}: line {line} has an empty label in column {ctx.label_column!r}; every row "
                    "needs a class (drop unlabelled rows first)"
                )
            rows.append(values)
            labels.append(label)
            if sensitive_at is not None:
                value = row[sensitive_at].strip()
                if not value:
                    raise DataError(
                        f"{path}: line {line} has an empty value in the sensitive column "
                        f"{ctx.sensitive_column!r}; fill or drop those rows"
                    )
                sensitive_values.append(value)
        return rows, labels, sensitive_values, sensitive_at
