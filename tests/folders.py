"""What a folder holds, to check that a refused or failed command wrote nothing."""

from __future__ import annotations

from pathlib import Path

from safecompress.runfolder import LOCK


def snapshot(root: Path, ignore_lock: bool = False) -> dict[str, tuple[bytes | None, int]]:
    """Every path under ``root`` with its bytes (None for folders) and mode bits (without the content of
    the lock file when ``ignore_lock``: a lock taker writes its PID there)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if ignore_lock and p.name == LOCK:
            continue
        st = p.lstat()
        out[str(p.relative_to(root))] = (p.read_bytes() if p.is_file() and not p.is_symlink() else None, st.st_mode)
    return out
