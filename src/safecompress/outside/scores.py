"""Scores mode: audit precomputed model outputs instead of a model (like TF-Privacy's ``AttackInputData``).

The ``.npz`` holds, for ``members`` and ``nonmembers`` (and optionally ``population``, the known
non-members ``calibrated`` needs):

* ``<part>_logits`` (N × classes, the model's raw outputs) **or** ``<part>_probs`` (N × classes, softmax
  probabilities; their logarithm is used as logits, which softmax maps back to the same probabilities);
* ``<part>_y`` (N, the true class index of every record).

Only the attacks that read nothing but the queried records' outputs run (the metric attacks and
``calibrated``). They query a :class:`LogitTable`, a module answering a record's id with its stored
outputs, so they take exactly the code path they take against a model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import SafeCompressError
from ..fileio import load_npz
from .data import Pair

PARTS = ("members", "nonmembers", "population")
PROB_FLOOR = 1e-30  # probabilities of exactly 0 become this before the log, so every loss stays finite


class LogitTable(nn.Module):
    """Answers a batch of record ids (N × 1 floats) with the stored logits of those records."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("table", logits.float())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids[:, 0].long()]


def _outputs(z: dict[str, np.ndarray], part: str, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    keys = [k for k in (f"{part}_logits", f"{part}_probs") if k in z]
    if not keys and f"{part}_y" not in z:
        return None
    if len(keys) != 1 or f"{part}_y" not in z:
        raise SafeCompressError(
            f"{path}: {part} needs exactly one of {part}_logits / {part}_probs and {part}_y; the file holds {sorted(z)}"
        )
    out, y = np.asarray(z[keys[0]]), np.asarray(z[f"{part}_y"])
    if out.dtype.kind not in "fiu" or out.ndim != 2 or out.shape[1] < 2:
        raise SafeCompressError(f"{path}: {keys[0]} must be a numeric N × classes array, got {out.dtype} {out.shape}")
    if not np.isfinite(out).all():
        raise SafeCompressError(f"{path}: {keys[0]} holds NaN or infinite values")
    if y.ndim != 1 or len(y) != len(out) or y.dtype.kind not in "iuf" or not (y == np.round(y)).all():
        raise SafeCompressError(f"{path}: {part}_y must hold one integer class per row of {keys[0]} ({len(out)})")
    out = out.astype(np.float64)
    if keys[0].endswith("_probs"):
        if out.min() < 0 or np.abs(out.sum(1) - 1).max() > 1e-3:
            raise SafeCompressError(
                f"{path}: {keys[0]} rows must be probabilities summing to 1; store raw outputs as {part}_logits"
            )
        out = np.log(np.clip(out, PROB_FLOOR, None))
    return out, y.astype(np.int64)


def read_scores(path: str | Path) -> tuple[LogitTable, dict[str, Pair], int]:
    """(the table, {part: (record ids, labels)}, number of classes) of a scores file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SafeCompressError(f"--scores {path} does not exist or is not a file")
    try:
        z = load_npz(path)
    except (OSError, ValueError) as exc:
        raise SafeCompressError(f"--scores {path}: not a readable .npz of plain arrays ({str(exc)[:200]})") from None
    found = {part: got for part in PARTS if (got := _outputs(z, part, path)) is not None}
    missing = [p for p in ("members", "nonmembers") if p not in found]
    if missing:
        raise SafeCompressError(
            f"--scores {path}: no outputs for {missing}; store members_logits (or members_probs), members_y, "
            f"nonmembers_logits (or nonmembers_probs) and nonmembers_y (the file holds {sorted(z)})"
        )
    widths = {out.shape[1] for out, _ in found.values()}
    if len(widths) != 1:
        raise SafeCompressError(f"--scores {path}: the parts give different numbers of classes {sorted(widths)}")
    n_classes = widths.pop()
    table, parts, at = [], {}, 0
    for part, (out, y) in found.items():
        if len(y) == 0:
            raise SafeCompressError(f"--scores {path}: {part} holds no records")
        if y.min() < 0 or y.max() >= n_classes:
            raise SafeCompressError(
                f"--scores {path}: {part}_y holds labels outside the {n_classes} output classes (0..{n_classes - 1})"
            )
        ids = torch.arange(at, at + len(y), dtype=torch.float64)[:, None]  # exact ids far beyond 2^24 rows
        parts[part] = (ids, torch.from_numpy(y))
        table.append(torch.from_numpy(out))
        at += len(y)
    return LogitTable(torch.cat(table)).eval(), parts, n_classes
