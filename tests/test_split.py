import numpy as np
import pytest

from safecompress.config import SplitConfig
from safecompress.data.split import DISJOINT_PARTS, PARTS, MembershipSplit, make_split, resolve_sizes
from safecompress.errors import SplitError


def test_split_is_disjoint_and_members_inside_train():
    s = make_split(10_000, SplitConfig(), seed=3)
    sets = {p: set(s[p].tolist()) for p in PARTS}
    for i, a in enumerate(DISJOINT_PARTS):
        for b in DISJOINT_PARTS[i + 1 :]:
            assert not sets[a] & sets[b], (a, b)
    assert sets["probe_members"] <= sets["train"] and sets["audit_members"] <= sets["train"]
    assert not sets["probe_members"] & sets["audit_members"]
    # balanced by default: as many members as non-members for probing and auditing
    assert len(s["probe_members"]) == len(s["probe_nonmembers"]) == 1000
    assert len(s["audit_members"]) == len(s["audit_nonmembers"]) == 1000
    assert len(s["train"]) == 2500 and len(s["test"]) == 1500


def test_split_seeded():
    a = make_split(5000, SplitConfig(), seed=1)
    b = make_split(5000, SplitConfig(), seed=1)
    c = make_split(5000, SplitConfig(), seed=2)
    assert all(np.array_equal(a[p], b[p]) for p in PARTS)
    assert not np.array_equal(a["train"], c["train"])


def test_counts_and_max_samples():
    cfg = SplitConfig(
        train=100,
        val=20,
        test=30,
        population=50,
        probe_nonmembers=10,
        audit_nonmembers=10,
        probe_members=0.2,
        audit_members=15,
    )
    s = make_split(100_000, cfg, seed=0, max_samples=400)
    assert s.sizes() == {
        "train": 100,
        "probe_members": 20,
        "audit_members": 15,
        "val": 20,
        "test": 30,
        "population": 50,
        "probe_nonmembers": 10,
        "audit_nonmembers": 10,
    }
    s2 = make_split(10_000, SplitConfig(), seed=0, max_samples=1000)
    assert sum(len(s2[p]) for p in DISJOINT_PARTS) <= 1000


def test_impossible_splits_explain_themselves():
    with pytest.raises(SplitError, match="need 1200 samples .* only 1000"):
        resolve_sizes(
            SplitConfig(train=600, val=200, test=200, population=200, probe_nonmembers=0, audit_nonmembers=0), 1000
        )
    with pytest.raises(SplitError, match="must fit in train"):
        resolve_sizes(SplitConfig(train=0.1, probe_nonmembers=0.1, audit_nonmembers=0.1), 1000)
    with pytest.raises(SplitError, match="fraction"):
        resolve_sizes(SplitConfig(train=1.5), 1000)
    with pytest.raises(SplitError, match="split.test resolves to 0"):
        resolve_sizes(SplitConfig(test=0), 1000)


def test_save_load_roundtrip_and_verification(tmp_path):
    s = make_split(3000, SplitConfig(), seed=5)
    path = s.save(tmp_path / "split.npz")
    back = MembershipSplit.load(path, n_total=3000)
    assert all(np.array_equal(s[p], back[p]) for p in PARTS)
    with pytest.raises(SplitError, match="3000 samples"):
        MembershipSplit.load(path, n_total=2999)
    # a tampered split (audit member taken from outside train) is refused on load
    arrays = {p: s[p] for p in PARTS}
    arrays["audit_members"] = np.concatenate([s["audit_members"][:-1], s["test"][:1]])
    bad = MembershipSplit(arrays, 3000, 5)
    bad.save(tmp_path / "bad.npz")
    with pytest.raises(SplitError, match="subset of 'train'"):
        MembershipSplit.load(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(SplitError, match="cannot read split file"):
        MembershipSplit.load(tmp_path / "junk.npz")


def test_overlapping_nonmember_parts_refused():
    s = make_split(2000, SplitConfig(), seed=0)
    arrays = {p: s[p].copy() for p in PARTS}
    arrays["val"] = np.concatenate([arrays["val"][:-1], arrays["test"][:1]])
    with pytest.raises(SplitError, match="overlap"):
        MembershipSplit(arrays, 2000, 0).check()
