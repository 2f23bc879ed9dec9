"""The records of an outside audit: members, non-members and the optional population, each an ``(X, y)`` pair
read from an ``.npz`` (arrays ``X`` and ``y``) or a ``.csv`` (header row, numeric features, a ``label``
column) with the readers of the ``npz`` and ``csv`` datasets, so the same files and the same checks apply.

Labels are the model's output indices. The dataset readers renumber labels that are not ``0..K-1`` (a file of
members may well lack some classes); here the original integers are restored, and names that are not
integers are refused, since they say nothing about which output of the model they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import ArrayDataset
from ..data.base import DataContext
from ..errors import DataError, SafeCompressError

Pair = tuple[torch.Tensor, torch.Tensor]


def read_records(path: str | Path, role: str, label_column: str = "label") -> Pair:
    """``(X float32, y int64)`` of an npz or csv file; ``role`` names the option in messages."""
    from ..data.byod import CsvDataset, NpzDataset

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{role} {path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise DataError(
            f"{role} {path}: give an .npz (arrays X and y) or a .csv (header row, a {label_column!r} column)"
        )
    source = NpzDataset() if suffix == ".npz" else CsvDataset()
    ds = source.load(DataContext(path=path, label_column=label_column))
    return torch.from_numpy(ds.X), torch.from_numpy(_original_labels(ds, path, role))


def _original_labels(ds: ArrayDataset, path: Path, role: str) -> np.ndarray:
    if ds.class_names is None:
        return ds.y
    try:
        values = np.array([int(name) for name in ds.class_names], dtype=np.int64)
    except ValueError:
        raise DataError(
            f"{role} {path}: labels must be the model's class indices (integers 0..K-1), found names such as "
            f"{ds.class_names[:3]}; map them to the indices the model was trained with"
        ) from None
    return values[ds.y]


def as_pair(value: Any, role: str) -> Pair:
    """A file path (npz/csv) or an ``(X, y)`` pair of arrays/tensors, as float32 features and int64 labels."""
    if isinstance(value, (str, Path)):
        return read_records(value, role)
    try:
        X, y = value
    except (TypeError, ValueError):
        raise SafeCompressError(f"{role}: give an (X, y) pair or the path of an .npz/.csv file") from None
    X = X if isinstance(X, torch.Tensor) else np.asarray(X)
    y = y if isinstance(y, torch.Tensor) else np.asarray(y)
    if isinstance(X, np.ndarray) and X.dtype.kind not in "iubf":
        raise SafeCompressError(f"{role}: X must be numeric, got {X.dtype}")
    if isinstance(y, np.ndarray) and y.dtype.kind not in "iubf":
        raise SafeCompressError(f"{role}: y must hold integer class indices, got {y.dtype}")
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1 or len(y) != len(X):
        raise SafeCompressError(
            f"{role}: y must hold one label per row of X ({len(X)} rows), got shape {tuple(y.shape)}"
        )
    if y.is_floating_point() and not bool(torch.all(y == y.round())):
        raise SafeCompressError(f"{role}: labels must be integer class indices")
    return X.float(), y.long()


def records_kind(X: torch.Tensor) -> str:
    """The dataset kind of records: ``image`` (N × C × H × W) or ``tabular``."""
    return "image" if X.dim() == 4 else "tabular"


def check_records(
    pairs: dict[str, Pair], input_shape: tuple[int | None, ...] | None, n_classes: int | None, source: str
) -> None:
    """Every part's records have one shape, which matches the model's input (when known), and every label is
    one of its ``n_classes`` outputs (when given)."""
    problems = []
    first = None  # (part, shape) of the first part whose records the model takes
    for role, (X, y) in pairs.items():
        if len(X) == 0:
            problems.append(f"{role} holds no records")
            continue
        shape = tuple(X.shape[1:])
        if input_shape is not None and (
            len(shape) != len(input_shape) or any(w is not None and w != d for w, d in zip(input_shape, shape))
        ):
            want = "×".join("?" if d is None else str(d) for d in input_shape)
            problems.append(
                f"{role}: records have shape {'×'.join(map(str, shape))} but the model takes {want} per record; "
                "give the features the model was trained on, in the same order and layout"
            )
        elif first is None:
            first = role, shape
        elif shape != first[1]:
            problems.append(
                f"{role}: records have shape {'×'.join(map(str, shape))} but the {first[0]}' records have "
                f"{'×'.join(map(str, first[1]))}; every part holds the same features, in the same order and layout"
            )
        if n_classes is not None and len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
            bad = sorted({int(v) for v in y.tolist() if v < 0 or v >= n_classes})[:5]
            problems.append(
                f"{role}: labels {bad} are outside the model's {n_classes} output classes (0..{n_classes - 1}); "
                "use the class indices the model was trained with"
            )
    if problems:
        raise SafeCompressError(f"the audit data does not fit {source}:\n" + "\n".join(f"  - {p}" for p in problems))


def probe_classes(
    loaded: Any,
    X: torch.Tensor,
    device: torch.device,
    who: str | None = None,
    fix: str = "give the features the model was trained on",
    error: type[SafeCompressError] = SafeCompressError,
) -> int:
    """The number of outputs of ``loaded`` (a :class:`~.formats.LoadedModel`, or a bare module when ``who``
    names it), from its answer to two records; a model that rejects the records (a shape it cannot take) or
    answers them with anything but one finite row of class logits per record is refused with ``error``,
    naming ``who`` (default: the model and its format) and saying what to do (``fix``)."""
    from ..train import predict_logits

    module = getattr(loaded, "module", loaded)
    who = who or f"the model ({loaded.format})"
    try:
        out = predict_logits(module, X[:2], device)
    except Exception as exc:  # noqa: BLE001  (whatever a foreign runtime or a user's layers raise on a bad input)
        raise error(
            f"{who} rejects the audit's records of shape {'×'.join(map(str, X.shape[1:]))}: "
            f"{type(exc).__name__}: {str(exc).strip()[:300]}; {fix}"
        ) from None
    if out.dim() != 2 or out.shape[0] != min(2, len(X)) or out.shape[1] < 2:
        raise error(
            f"{who} answers 2 records with an output of shape {tuple(out.shape)}; an audited model returns one "
            "row of class logits (at least 2) per record"
        )
    if not torch.isfinite(out).all():
        raise error(f"{who} returns NaN or infinite logits")
    return int(out.shape[1])


def _row_keys(X: torch.Tensor) -> list[bytes]:
    """Each record's features as bytes (float32, -0.0 read as 0.0): equal keys, equal records."""
    rows = np.ascontiguousarray(X.detach().cpu().numpy().reshape(len(X), -1), dtype=np.float32) + np.float32(0.0)
    return [row.tobytes() for row in rows]


def check_overlap(pairs: dict[str, Pair], uses: str) -> dict[str, int]:
    """How many population records are also members / non-members, compared by value on the features alone
    (the label is not compared: a population row with an audited record's features is that record as far
    as any model trained or calibrated on it is concerned, whatever its label). Any overlap is refused:
    ``uses`` says what the population is used for (reference models trained on it, an attack calibrated on
    it as known non-members), which overlap would skew while the report claims otherwise. Returns the
    (zero) counts, for the report."""
    if "population" not in pairs:
        return {"members": 0, "nonmembers": 0}
    pop_keys = _row_keys(pairs["population"][0])
    population = set(pop_keys)
    parts = {part: set(_row_keys(pairs[part][0])) for part in ("members", "nonmembers")}
    counts = {part: len(keys & population) for part, keys in parts.items()}
    if any(counts.values()):
        audited = parts["members"] | parts["nonmembers"]
        rows = sum(key in audited for key in pop_keys)
        raise SafeCompressError(
            f"--population: {rows} of its {len(pop_keys)} rows are audited records (the features of "
            f"{counts['members']} --members and {counts['nonmembers']} --nonmembers records), but the population "
            f"must hold only records the audited model never saw: {uses}. Remove those rows from the population "
            "(or draw it apart from the members and non-members) and rerun"
        )
    return counts
