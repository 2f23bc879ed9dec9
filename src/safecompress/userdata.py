"""What the Python facade (:class:`~safecompress.api.SafeCompress`) accepts as data, as the tensors a method
trains on.

``train``, ``val`` and the probe's non-members may each be

* a pair ``(X, y)`` of tensors or arrays: one row per sample, ``y`` integer class labels;
* a :class:`torch.utils.data.Dataset` whose items are pairs ``(x, y)``: a map-style one is read as
  ``ds[0], ..., ds[len(ds) - 1]``, an iterable one in the order it yields;
* a :class:`torch.utils.data.DataLoader` of ``(x_batch, y_batch)``: its dataset is read in index order
  through the loader's ``collate_fn`` (its shuffling, sampler and workers are ignored, so the tensors do not
  depend on them); a loader over an iterable dataset is read in the order it yields.

Memory: everything is read once, into memory, as float32 inputs and int64 labels — n x (values per sample)
x 4 bytes for X, as if the tensors had been passed — because the method indexes the data by sample. A
Dataset's random transforms are therefore applied once, not per epoch (``augment=True`` crops and flips
training batches).

The probe's members are training samples: indices into ``train`` (a 1-D sequence of ints: a list, range,
array or tensor), or samples of it in any of the forms above, found in ``train`` by value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from .errors import ConfigError

_FORMS = "a pair (X, y) of tensors or arrays, a torch Dataset of (x, y) pairs, or a DataLoader of them"


@dataclass(frozen=True)
class UserData:
    """The facade's data in one tensor pair: train, val, then the probe's non-members, and their split."""

    X: torch.Tensor  # float32
    y: torch.Tensor  # int64
    split: dict[str, np.ndarray]
    n_classes: int


def gather(train: Any, val: Any, probe: Any = None, n_classes: int | None = None) -> UserData:
    """Check and join the facade's inputs (forms in the module docstring); ConfigError says what to change."""
    parts = [as_pair(train, "train"), as_pair(val, "val")]
    names = ["train", "val"]
    if probe is not None:
        if not (isinstance(probe, (tuple, list)) and len(probe) == 2):
            raise ConfigError(
                f"probe must be (members, non-members): members as indices into train or samples of it, "
                f"non-members as {_FORMS}; got {_describe(probe)}"
            )
        members, nonmembers = probe
        parts.append(as_pair(nonmembers, "probe non-members"))
        names.append("probe non-members")
    shape = tuple(parts[0][0].shape[1:])
    for (X, _), name in zip(parts[1:], names[1:]):
        if tuple(X.shape[1:]) != shape:
            raise ConfigError(
                f"{name} samples have shape {tuple(X.shape[1:])} but train's have {shape}; every part needs the "
                "same input shape"
            )
    X = torch.cat([p[0] for p in parts])
    y = torch.cat([p[1] for p in parts])
    n_train, n_val = len(parts[0][1]), len(parts[1][1])
    split = {"train": np.arange(n_train), "val": np.arange(n_train, n_train + n_val)}
    if probe is not None:
        split["probe_members"] = member_indices(members, parts[0][0])
        split["probe_nonmembers"] = np.arange(n_train + n_val, len(y))
    needed = int(y.max()) + 1
    if n_classes is None:
        n_classes = needed
    elif isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < needed:
        raise ConfigError(
            f"n_classes={n_classes!r}, but the labels go up to {needed - 1}: pass an integer >= {needed}, or leave "
            "it out to use the largest label + 1"
        )
    return UserData(X, y, split, int(n_classes))


def as_pair(data: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(X float32, y int64) of a pair, a Dataset or a DataLoader, checked."""
    if isinstance(data, DataLoader):
        X, y = _join(_loader_batches(data), what, batched=data.batch_sampler is not None)
    elif isinstance(data, Dataset):
        X, y = _join(_dataset_items(data, what), what, batched=False)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = _tensor(data[0], what, "X"), _tensor(data[1], what, "y")
    else:
        raise ConfigError(f"{what} must be {_FORMS}; got {_describe(data)}")
    return _checked(X, y, what)


def _dataset_items(ds: Dataset, what: str) -> Iterable[Any]:
    if isinstance(ds, IterableDataset):
        yield from ds
        return
    try:
        n = len(ds)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"{what}: the Dataset has no len(); give it __len__, or make it an IterableDataset") from None
    for i in range(n):
        yield ds[i]


def _loader_batches(loader: DataLoader) -> Iterable[Any]:
    """The loader's data in a fixed order: its dataset in index order, batched and collated as it would be."""
    if isinstance(loader.dataset, IterableDataset):
        return loader
    batched = loader.batch_sampler is not None
    return DataLoader(
        loader.dataset,
        batch_size=(loader.batch_size or 256) if batched else None,
        shuffle=False,
        num_workers=0,
        collate_fn=loader.collate_fn,
    )


def _join(chunks: Iterable[Any], what: str, batched: bool) -> tuple[torch.Tensor, torch.Tensor]:
    kind = "batch" if batched else "item"
    xs, ys = [], []
    for i, chunk in enumerate(chunks):
        if not (isinstance(chunk, (tuple, list)) and len(chunk) == 2):
            raise ConfigError(
                f"{what}: {kind} {i} is {_describe(chunk)}, not a pair (x, y); make the Dataset's items "
                "(input, label) pairs"
            )
        xs.append(_tensor(chunk[0], what, f"x of {kind} {i}"))
        ys.append(_tensor(chunk[1], what, f"y of {kind} {i}"))
    if not xs:
        raise ConfigError(f"{what} holds no samples")
    try:
        return (torch.cat(xs), torch.cat(ys)) if batched else (torch.stack(xs), torch.stack(ys))
    except RuntimeError as exc:
        raise ConfigError(
            f"{what}: its samples cannot be stacked into one tensor ({exc}); give every x one shape"
        ) from None


def _tensor(value: Any, what: str, name: str) -> torch.Tensor:
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{what}: {name} ({_describe(value)}) is not a tensor or array ({exc})") from None


def _checked(X: torch.Tensor, y: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if X.dim() < 2:
        raise ConfigError(f"{what}: X has shape {tuple(X.shape)}; it needs one row per sample (e.g. X.reshape(-1, 1))")
    if y.dim() != 1:
        raise ConfigError(f"{what}: y has shape {tuple(y.shape)}; it needs one class label per sample, shape (n,)")
    if len(X) != len(y):
        raise ConfigError(f"{what}: X has {len(X)} samples but y has {len(y)} labels; give one label per sample")
    if not len(y):
        raise ConfigError(f"{what} holds no samples")
    if y.is_complex() or (y.is_floating_point() and not torch.equal(y, y.round())):
        raise ConfigError(f"{what}: y must hold integer class labels (0, 1, ...), not {y.dtype} values")
    y = y.long()
    if int(y.min()) < 0:
        raise ConfigError(f"{what}: y holds the label {int(y.min())}; class labels are 0, 1, ..., n_classes - 1")
    X = X.float()
    if not bool(torch.isfinite(X).all()):
        raise ConfigError(f"{what}: X holds NaN or infinite values; clean or impute them first")
    return X, y


def member_indices(members: Any, train_X: torch.Tensor) -> np.ndarray:
    """Positions in train of the probe members: given as indices, or as samples of train found by value."""
    if not _is_indices(members):
        return _locate_members(as_pair(members, "probe members")[0], train_X)
    idx = members.detach().cpu().numpy() if isinstance(members, torch.Tensor) else np.asarray(members)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise ConfigError(
            f"probe member indices must be a 1-D sequence of integer positions in train, got dtype {idx.dtype} and "
            f"shape {idx.shape} (for a boolean mask pass mask.nonzero()[0])"
        )
    n = len(train_X)
    if not idx.size:
        raise ConfigError("probe members: the index list is empty; give at least one training sample")
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise ConfigError(f"probe member index {int(bad[0])} is out of range: train has {n} samples (0 to {n - 1})")
    values, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        raise ConfigError(f"probe member index {int(values[counts > 1][0])} is given twice; give each sample once")
    return idx.astype(np.int64)


def _is_indices(members: Any) -> bool:
    if isinstance(members, range):
        return True
    if isinstance(members, (torch.Tensor, np.ndarray)):
        return members.ndim == 1
    return isinstance(members, (list, tuple)) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in members
    )


def _locate_members(members: torch.Tensor, train: torch.Tensor) -> np.ndarray:
    """Indices in ``train`` of the probe members (they must be training samples)."""
    flat = train.flatten(1)
    lookup = {tuple(row.tolist()): i for i, row in enumerate(flat)}
    idx = []
    for row in members.flatten(1):
        i = lookup.get(tuple(row.tolist()))
        if i is None:
            raise ConfigError(
                "probe members must be samples of the training set (a member the model never trains on "
                "is a non-member); pass a subset of train as the first probe pair, or its indices in train"
            )
        idx.append(i)
    return np.asarray(idx)


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"
