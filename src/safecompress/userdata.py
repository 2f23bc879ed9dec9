"""What the Python facade (:class:`~safecompress.api.SafeCompress`) accepts as data, as the tensors a method
trains on.

``train``, ``val`` and the probe's non-members may each be

* a pair ``(X, y)`` of tensors or arrays: one row per sample, ``y`` integer class labels;
* a :class:`torch.utils.data.Dataset` whose items are pairs ``(x, y)``: a map-style one is read as
  ``ds[0], ..., ds[len(ds) - 1]``, an iterable one in the order it yields;
* a :class:`torch.utils.data.DataLoader` of ``(x_batch, y_batch)``: the samples its sampler draws, read in
  index order through the loader's ``collate_fn`` (its shuffling and workers are ignored, so the tensors do
  not depend on them). A ``SubsetRandomSampler(idx)`` (or any sampler that yields the same indices each
  epoch) reads the dataset's rows ``sorted(set(idx))``; a sequential or random sampler without replacement
  reads the whole dataset. Samplers that draw a different set each epoch (with replacement, weighted, fewer
  than all samples) and custom batch samplers are refused: pass ``Subset(dataset, indices)`` instead. A loader
  over an iterable dataset is read in the order it yields.

Memory: everything is read once, into memory, as float32 inputs and int64 labels — n x (values per sample)
x 4 bytes for X, as if the tensors had been passed — because the method indexes the data by sample. A
Dataset's random transforms are therefore applied once, not per epoch (``augment=True`` crops and flips
training batches).

The probe's members are training samples: indices into ``train`` (a 1-D sequence of ints: a list, range,
array or tensor), or samples of it in any of the forms above, found in ``train`` by value. Its non-members
must be records the model never trains on: one equal (by value) to a training row is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

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
        _refuse_trained_nonmembers(parts[2][0], parts[0][0])
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
        X, y = _join(_loader_batches(data, what), what, batched=data.batch_sampler is not None)
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


def _loader_batches(loader: DataLoader, what: str) -> Iterable[Any]:
    """The loader's data in a fixed order: the samples its sampler draws, in index order, batched and collated
    as they would be."""
    if isinstance(loader.dataset, IterableDataset):
        return loader
    batched = loader.batch_sampler is not None
    if batched and not (type(loader.batch_sampler) is BatchSampler and loader.batch_sampler.sampler is loader.sampler):
        raise ConfigError(
            f"{what}: the DataLoader has a custom batch_sampler ({type(loader.batch_sampler).__name__}), whose samples "
            "cannot be read in a fixed order; pass Subset(dataset, indices) of the samples it draws (or its dataset)"
        )
    dataset = loader.dataset
    indices = _sampler_indices(loader.sampler, len(dataset), what)  # type: ignore[arg-type]
    if indices is not None:
        dataset = Subset(dataset, indices)
    return DataLoader(
        dataset,
        batch_size=(loader.batch_size or 256) if batched else None,
        shuffle=False,
        num_workers=0,
        collate_fn=loader.collate_fn,
    )


def _sampler_indices(sampler: Any, n: int, what: str) -> list[int] | None:
    """The sorted distinct dataset indices ``sampler`` draws (None: all ``n``, read in index order); ConfigError
    for a sampler whose set of samples is not the same every epoch."""
    instead = "pass Subset(dataset, indices) of the samples to use (or the dataset itself) instead"
    if isinstance(sampler, SequentialSampler) and len(sampler) == n:
        return None
    if isinstance(sampler, RandomSampler):
        if sampler.replacement or sampler.num_samples != n or len(sampler.data_source) != n:  # type: ignore[arg-type]
            raise ConfigError(
                f"{what}: the DataLoader's RandomSampler draws {sampler.num_samples} of {n} samples"
                f"{' with replacement' if sampler.replacement else ''}, a different set each epoch; {instead}"
            )
        return None
    if isinstance(sampler, WeightedRandomSampler):
        raise ConfigError(
            f"{what}: the DataLoader's WeightedRandomSampler draws a different set of samples each epoch; {instead}"
        )
    if isinstance(sampler, SubsetRandomSampler):
        drawn = [list(sampler.indices)]
    else:  # any other sampler: read twice, it must draw the same samples both times
        drawn = [list(sampler), list(sampler)]
    sets = []
    for seq in drawn:
        if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in seq) and not all(
            isinstance(i, torch.Tensor) and i.dim() == 0 and not i.is_floating_point() for i in seq
        ):
            raise ConfigError(
                f"{what}: the DataLoader's sampler ({type(sampler).__name__}) does not yield dataset indices; {instead}"
            )
        sets.append({int(i) for i in seq})
    if any(s != sets[0] for s in sets):
        raise ConfigError(
            f"{what}: the DataLoader's sampler ({type(sampler).__name__}) draws a different set of samples each "
            f"epoch; {instead}"
        )
    out = sorted(sets[0])
    if not out:
        raise ConfigError(f"{what}: the DataLoader's sampler draws no samples")
    if out[0] < 0 or out[-1] >= n:
        bad = out[0] if out[0] < 0 else out[-1]
        raise ConfigError(f"{what}: the DataLoader's sampler draws index {bad}, but its dataset has {n} samples")
    return None if out == list(range(n)) else out


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


def _row_key(row: np.ndarray) -> bytes:
    return hashlib.blake2b((row + np.float32(0)).tobytes(), digest_size=16).digest()  # + 0: -0.0 is 0.0


def _row_lookup(train: torch.Tensor) -> tuple[np.ndarray, dict[bytes, int]]:
    """(train's rows flattened, a hash of each row's values -> its first position in train)."""
    flat = np.ascontiguousarray(train.detach().cpu().flatten(1).numpy(), dtype=np.float32)
    lookup: dict[bytes, int] = {}
    for i, row in enumerate(flat):
        lookup.setdefault(_row_key(row), i)
    return flat, lookup


def _find_rows(rows: torch.Tensor, train: torch.Tensor) -> list[int | None]:
    """For each of ``rows``, the position in ``train`` of a row with the same values (None: there is none)."""
    flat, lookup = _row_lookup(train)
    found: list[int | None] = []
    for row in np.ascontiguousarray(rows.detach().cpu().flatten(1).numpy(), dtype=np.float32):
        i = lookup.get(_row_key(row))
        found.append(i if i is not None and np.array_equal(flat[i], row) else None)
    return found


def _locate_members(members: torch.Tensor, train: torch.Tensor) -> np.ndarray:
    """Indices in ``train`` of the probe members (they must be training samples)."""
    idx = _find_rows(members, train)
    if any(i is None for i in idx):
        raise ConfigError(
            "probe members must be samples of the training set (a member the model never trains on "
            "is a non-member); pass a subset of train as the first probe pair, or its indices in train"
        )
    return np.asarray(idx)


def _refuse_trained_nonmembers(nonmembers: torch.Tensor, train: torch.Tensor) -> None:
    """ConfigError when a probe non-member equals a training row: the model trains on it, so it is a member."""
    hits = [(j, i) for j, i in enumerate(_find_rows(nonmembers, train)) if i is not None]
    if hits:
        j, i = hits[0]
        raise ConfigError(
            f"probe non-members must be records the model never trains on, but {len(hits)} of them equal a training "
            f"row (non-member {j} is train[{i}]); take the non-members from data held out of train (e.g. disjoint "
            "index sets of one dataset) and drop rows that duplicate training records"
        )


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"
