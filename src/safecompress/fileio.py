"""Small file helpers: atomic writes (a crash never leaves a half-written file), bounded reads and
checksums.

Files are created with mode 0666 filtered by the process umask (0644 under the usual umask 022), like
any other program's output, so a run folder can be shared; a full disk or a read-only folder becomes a
:class:`~safecompress.errors.StorageError` (exit code 2) instead of a traceback.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import secrets
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import StorageError

# errors a user fixes by freeing space or choosing another folder (not bugs)
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def storage_error(path: str | os.PathLike, exc: OSError) -> StorageError:
    """The user-facing error for an OSError met while writing ``path``."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        why = "no space left on the device (or the disk quota is used up); free some space"
    elif exc.errno == errno.EROFS:
        why = "the file system is read-only; choose a writable folder"
    else:
        why = f"{exc.strerror or exc}; check the folder's permissions"
    return StorageError(f"cannot write {path}: {why}, then run the command again (a run continues with --resume)")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _staged(path: Path, data: bytes) -> Path:
    """``data`` in a new temporary file beside ``path`` (written and fsynced), not yet in its place."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_many(files: Sequence[tuple[str | os.PathLike, bytes]]) -> list[Path]:
    """Write several files so that none is replaced before every one is written: each goes to a temporary
    file in its folder first, then all are renamed into place in the given order (put last the file that
    says the others are complete, e.g. a report). A failure while writing (a full disk) replaces nothing.

    Every file gets mode 0666 & ~umask (as ``open()`` would give it); a symlink at a path is replaced,
    never written through."""
    staged: list[tuple[Path, Path]] = []
    path = Path(".")
    try:
        try:
            for name, data in files:
                path = Path(name)
                staged.append((_staged(path, data), path))
            for tmp, path in staged:
                os.replace(tmp, path)
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            raise storage_error(path, exc) from None
        raise
    return [p for _, p in staged]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename.

    The file gets mode 0666 & ~umask (as ``open()`` would give it); a symlink at ``path`` is
    replaced, never written through."""
    return atomic_write_many([(path, data)])[0]


def read_limited(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``; ValueError when it is not a regular file (a FIFO or a
    device is never opened) or holds more than ``limit`` bytes — checked before and while reading, so
    a huge or growing file is never read whole. OSError when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a regular file")
    if path.stat().st_size > limit:
        raise ValueError(f"{what} {path} is larger than {limit // 1024} KB")
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{what} {path} is larger than {limit // 1024} KB")
    return data


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_bytes(obj: Any) -> bytes:
    """``obj`` as the project writes JSON files: indented, keys in their order, a final newline."""
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_bytes(path, json_bytes(obj))


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """Arrays as the bytes of a compressed .npz (no pickled objects)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Save arrays as a compressed .npz (no pickled objects) atomically."""
    return atomic_write_bytes(path, npz_bytes(**arrays))


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load every array of an .npz file; object arrays (pickle) are refused. A file that is not a
    readable npz (truncated zip, bad CRC, forged array header) raises ValueError."""
    import zipfile
    import zlib

    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an .npz archive of named arrays")
        with z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, MemoryError, RecursionError) as exc:
        raise ValueError(f"not a readable .npz archive ({type(exc).__name__}: {str(exc)[:200]})") from None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
