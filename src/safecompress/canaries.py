"""Worst-case audit with canaries (after Aerni, Zhang & Tramèr, CCS 2024).

Average-case membership metrics hide the records that leak most. A canary is a record drawn from the
attacker's pool (``population``) with a *wrong* label, so a model can only fit it by memorising it.
``audit.canaries: K`` draws K canaries; a random half is inserted into the target's training data
(canary members), the other half is not (canary non-members). The canaries leave the attacker's
population and join the audit's queried records, so every reference model holds each canary IN or OUT
with exactly the same design as the average-case records. The audit reports its metrics on the
canaries alone beside the average-case numbers. The draw depends only on the split and the seed, so
every method of a benchmark is audited with the same canaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data.split import MembershipSplit
from .errors import ConfigError
from .fileio import atomic_save_npz, load_npz

FILE = "canaries.npz"


@dataclass
class Canaries:
    idx: np.ndarray  # dataset rows (drawn from population)
    labels: np.ndarray  # their wrong labels
    is_member: np.ndarray  # inserted into the target's training data?

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def members(self) -> np.ndarray:
        return self.idx[self.is_member]

    def save(self, folder: Path) -> None:
        atomic_save_npz(
            Path(folder) / FILE,
            idx=self.idx.astype(np.int64),
            labels=self.labels.astype(np.int64),
            is_member=self.is_member,
        )

    @classmethod
    def load(cls, folder: Path) -> "Canaries | None":
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        z = load_npz(path)
        return cls(z["idx"].astype(np.int64), z["labels"].astype(np.int64), z["is_member"].astype(bool))


def max_canaries(split: MembershipSplit) -> int:
    """At most half of the population may become canaries (the attacker keeps the rest)."""
    return len(split["population"]) // 2


def make_canaries(split: MembershipSplit, y: np.ndarray, n_classes: int, k: int, seed: int) -> Canaries | None:
    """Draw ``k`` mislabelled canaries from the population, half of them members (seeded by the split)."""
    if k <= 0:
        return None
    limit = max_canaries(split)
    if k > limit or k < 2:
        raise ConfigError(
            f"audit.canaries={k}: needs 2 to {limit} canaries here (half of the {len(split['population'])} "
            "population rows, the attacker keeps the rest); lower audit.canaries or enlarge "
            "data.split.population"
        )
    if n_classes < 2:
        raise ConfigError("audit.canaries needs at least 2 classes to mislabel a record")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA]))
    idx = np.sort(rng.choice(np.asarray(split["population"]), k, replace=False))
    shift = rng.integers(1, n_classes, k)  # a different class, uniformly
    labels = (np.asarray(y)[idx].astype(np.int64) + shift) % n_classes
    is_member = np.zeros(k, bool)
    is_member[rng.permutation(k)[: k // 2]] = True
    return Canaries(idx, labels, is_member)


def training_split(split: MembershipSplit, canaries: Canaries | None) -> MembershipSplit:
    """The split the target trains with: canary members join ``train``; every canary leaves ``population``."""
    if canaries is None:
        return split
    parts = dict(split.parts)
    parts["train"] = np.sort(np.concatenate([split["train"], canaries.members]))
    parts["population"] = np.setdiff1d(split["population"], canaries.idx)
    return MembershipSplit(parts, split.n_total, split.seed).check()


def relabelled(y: torch.Tensor, canaries: Canaries | None) -> torch.Tensor:
    """The dataset's labels with the canaries' wrong labels (only canary rows change)."""
    if canaries is None:
        return y
    out = y.clone()
    out[torch.as_tensor(canaries.idx)] = torch.as_tensor(canaries.labels, dtype=y.dtype)
    return out
