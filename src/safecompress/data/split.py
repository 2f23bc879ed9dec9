"""The membership split (docs/design.md §2): one seeded split of one dataset into every role.

==================  ===========================================================
part                used by
==================  ===========================================================
train               the target model's training set (members)
probe_members       ⊂ train; the in-loop simulated attacks only
probe_nonmembers    the in-loop simulated attacks only
audit_members       ⊂ train, disjoint from probe_members; the final audit only
audit_nonmembers    the final audit only
population          the attacker's own data (shadow and reference models)
val                 model selection inside every method
test                final task accuracy only
==================  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SplitError
from ..fileio import atomic_save_npz, load_npz

if TYPE_CHECKING:
    from ..config import SplitConfig

DISJOINT_PARTS = ("train", "val", "test", "population", "probe_nonmembers", "audit_nonmembers")
MEMBER_PARTS = ("probe_members", "audit_members")
PARTS = DISJOINT_PARTS[:1] + MEMBER_PARTS + DISJOINT_PARTS[1:]
_MATCHING_NONMEMBERS = {"probe_members": "probe_nonmembers", "audit_members": "audit_nonmembers"}


def _count(size: int | float, whole: int, name: str, of: str) -> int:
    if isinstance(size, bool):
        raise SplitError(f"split.{name} must be a count (int) or a fraction (float), got {size!r}")
    if isinstance(size, int):
        if size < 0:
            raise SplitError(f"split.{name} = {size} is negative; use a count >= 0")
        return size
    if not 0 <= size <= 1:
        raise SplitError(f"split.{name} = {size} is a fraction of {of} and must lie in [0, 1]; use an int for a count")
    return int(size * whole)  # floor: fractions summing to 1 never exceed the dataset


def resolve_sizes(cfg: "SplitConfig", n_total: int) -> dict[str, int]:
    """Turn the configured sizes into sample counts, or explain why the split is impossible."""
    sizes = {p: _count(getattr(cfg, p), n_total, p, "the dataset") for p in DISJOINT_PARTS}
    problems = []
    used = sum(sizes.values())
    if used > n_total:
        listing = ", ".join(f"{p}={sizes[p]}" for p in DISJOINT_PARTS)
        problems.append(
            f"the disjoint parts need {used} samples ({listing}) but the dataset has only {n_total}; "
            "shrink some parts (fractions must sum to at most 1) or use a larger dataset"
        )
    for part in ("train", "val", "test"):
        if sizes[part] == 0:
            problems.append(f"split.{part} resolves to 0 samples; give it at least one")
    for part in MEMBER_PARTS:
        value = getattr(cfg, part)
        counterpart = _MATCHING_NONMEMBERS[part]
        sizes[part] = sizes[counterpart] if value is None else _count(value, sizes["train"], part, "train")
    if sizes["probe_members"] + sizes["audit_members"] > sizes["train"]:
        problems.append(
            f"probe_members ({sizes['probe_members']}) + audit_members ({sizes['audit_members']}) must fit in "
            f"train ({sizes['train']}) without overlap; enlarge train or shrink the probe/audit parts"
        )
    if problems:
        raise SplitError("impossible membership split: " + "; ".join(problems))
    return sizes


@dataclass
class MembershipSplit:
    """Index arrays (into the dataset) for every part, plus what produced them."""

    parts: dict[str, np.ndarray]
    n_total: int
    seed: int

    def __getitem__(self, part: str) -> np.ndarray:
        return self.parts[part]

    def sizes(self) -> dict[str, int]:
        return {p: int(len(self.parts[p])) for p in PARTS}

    def check(self) -> "MembershipSplit":
        """Verify the split's invariants; raise SplitError on any violation."""
        missing = [p for p in PARTS if p not in self.parts]
        if missing:
            raise SplitError(f"split is missing parts: {', '.join(missing)}")
        for p in PARTS:
            idx = self.parts[p]
            if idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= self.n_total)):
                raise SplitError(f"split part {p!r} holds indices outside [0, {self.n_total})")
            if len(np.unique(idx)) != len(idx):
                raise SplitError(f"split part {p!r} lists a sample twice")
        sets = {p: set(self.parts[p].tolist()) for p in PARTS}
        for i, a in enumerate(DISJOINT_PARTS):
            for b in DISJOINT_PARTS[i + 1 :]:
                if sets[a] & sets[b]:
                    raise SplitError(f"split parts {a!r} and {b!r} overlap ({len(sets[a] & sets[b])} samples)")
        for p in MEMBER_PARTS:
            if not sets[p] <= sets["train"]:
                raise SplitError(f"split part {p!r} must be a subset of 'train'")
        if sets["probe_members"] & sets["audit_members"]:
            raise SplitError(
                "split parts 'probe_members' and 'audit_members' overlap; the audit must not reuse probe data"
            )
        return self

    def save(self, path: str | Path) -> Path:
        arrays = {p: self.parts[p].astype(np.int64) for p in PARTS}
        return atomic_save_npz(path, n_total=np.int64(self.n_total), seed=np.int64(self.seed), **arrays)

    @classmethod
    def load(cls, path: str | Path, n_total: int | None = None) -> "MembershipSplit":
        """Load a saved split and verify it (and that it belongs to a dataset of ``n_total`` samples)."""
        try:
            z = load_npz(path)
            split = cls({p: z[p].astype(np.int64) for p in PARTS}, int(z["n_total"]), int(z["seed"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SplitError(f"cannot read split file {path}: {exc}; delete it to make a new split") from None
        if n_total is not None and split.n_total != n_total:
            raise SplitError(
                f"split file {path} was made for a dataset of {split.n_total} samples, but this dataset has {n_total}"
            )
        return split.check()


def make_split(n_total: int, cfg: "SplitConfig", seed: int, max_samples: int | None = None) -> MembershipSplit:
    """Draw a seeded membership split; with ``max_samples`` only a random subset of that size is used."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5C]))
    pool = rng.permutation(n_total)
    if max_samples is not None:
        pool = pool[:max_samples]
    sizes = resolve_sizes(cfg, len(pool))
    parts: dict[str, np.ndarray] = {}
    start = 0
    for p in DISJOINT_PARTS:
        parts[p] = np.sort(pool[start : start + sizes[p]])
        start += sizes[p]
    members = rng.permutation(parts["train"])
    parts["probe_members"] = np.sort(members[: sizes["probe_members"]])
    parts["audit_members"] = np.sort(members[sizes["probe_members"] : sizes["probe_members"] + sizes["audit_members"]])
    return MembershipSplit(parts, n_total, seed).check()
