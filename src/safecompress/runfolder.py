"""The run folder: created fresh, resumed, or replaced — never half-destroyed, never someone else's.

* ``new``: the folder must not exist (or be empty); otherwise the user must choose.
* ``resume``: continue the folder's run (its saved config must match); a missing folder starts fresh.
* ``overwrite``: the new run is built in a hidden sibling folder and only swapped in when it
  succeeds, so a failed or interrupted run leaves the old results untouched.

Safety rules (issue 14):

* A folder is a *run folder* when it holds the marker file ``.safecompress-run`` (written first by
  every run), or — for runs made before the marker existed — ``config.yaml`` together with
  ``report.json``, ``split.npz`` or a checkpoint. ``--resume`` and ``--overwrite`` refuse any other
  non-empty folder and leave it exactly as it was.
* A run, an audit or an overwrite holds an exclusive ``flock`` on ``.safecompress-lock`` inside the
  folder for its whole life; a second writer is refused at once, with the holder's PID.
* The marker records the sha256 of ``config.yaml`` and ``split.npz`` (and a text run's
  ``vocabulary.json``) as they are written, and ``report.json`` carries a ``manifest`` of
  ``config.yaml``, ``split.npz``, ``model.safetensors`` and, for text, ``vocabulary.json``;
  ``--resume`` and ``safecompress audit`` verify them and refuse a folder whose files were swapped
  or edited.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterable

from .errors import ManifestError, RunFolderError, RunFolderLockedError
from .fileio import STORAGE_ERRNOS, atomic_write_json, sha256_file, storage_error

log = logging.getLogger(__name__)
MODES = ("new", "resume", "overwrite")
MARKER = ".safecompress-run"
LOCK = ".safecompress-lock"
MARKER_FORMAT = "safecompress-run-v1"
MANIFEST_FILES = ("config.yaml", "split.npz", "model.safetensors", "vocabulary.json")  # vocabulary: text runs
_BOOKKEEPING = {MARKER, LOCK}  # what a folder may hold and still count as empty
_LEGACY_COMPANIONS = ("report.json", "split.npz", "checkpoint.safetensors")


def _entries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir()] if folder.is_dir() else []


def is_empty(folder: Path) -> bool:
    """True when ``folder`` is missing or holds nothing but a lock/marker file."""
    return not (set(_entries(folder)) - _BOOKKEEPING)


def is_run_folder(folder: str | Path) -> bool:
    """True when ``folder`` was written by ``safecompress run`` (marker, or a pre-marker run's files)."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    if (folder / MARKER).is_file():
        return True
    return (folder / "config.yaml").is_file() and any((folder / n).is_file() for n in _LEGACY_COMPANIONS)


def not_a_run_folder(folder: Path, option: str) -> RunFolderError:
    return RunFolderError(
        f"{folder} is not empty and is not a safecompress run folder (it has no {MARKER} marker and no "
        f"config.yaml + report.json), so {option} leaves it alone: choose another --out, or empty that folder "
        "yourself if it really is meant for the run"
    )


class FolderLock:
    """An exclusive, non-blocking ``flock`` on ``folder/.safecompress-lock`` holding the holder's PID.

    The lock dies with its process (kill -9 included), so a stale file never blocks a later run."""

    def __init__(self, folder: str | Path, purpose: str):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self.purpose = purpose
        self.fd: int | None = None

    def acquire(self) -> "FolderLock":
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise RunFolderError(
                    f"{self.path} is a symbolic link; remove it (safecompress never writes through "
                    "links in a run folder)"
                ) from None
            if exc.errno in STORAGE_ERRNOS:
                raise storage_error(self.path, exc) from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = self._holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunFolderLockedError(
                    f"{self.folder} is in use by another safecompress process ({holder}); wait until it ends, or "
                    "choose another --out. Two writers at once would mix the files of two runs"
                ) from None
            raise
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "purpose": self.purpose, "since": time.time()}).encode())
        except OSError:
            pass  # the PID is only for the message of a second writer
        self.fd = fd
        return self

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
            return f"PID {int(info['pid'])}, {info.get('purpose', 'a run')}"
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "PID unknown"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def read_marker(folder: Path) -> dict[str, Any]:
    """The marker's content ({} when missing or unreadable: a pre-marker run)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_marker(folder: Path, files: dict[str, str] | None = None) -> None:
    from . import __version__

    atomic_write_json(folder / MARKER, {"format": MARKER_FORMAT, "version": __version__, "files": files or {}})


def record_file(folder: Path, name: str) -> None:
    """Note the checksum of run file ``name`` in the marker (so --resume can tell it was not swapped)."""
    marker = read_marker(folder)
    files = marker.get("files") if isinstance(marker.get("files"), dict) else {}
    files[name] = sha256_file(folder / name)
    write_marker(folder, files)


def manifest(folder: Path, names: Iterable[str] = MANIFEST_FILES) -> dict[str, str]:
    """report.json's ``manifest``: sha256 of each of ``names`` that exists in ``folder``."""
    return {n: sha256_file(folder / n) for n in names if (folder / n).is_file()}


def verify_files(folder: Path, expected: Any, source: str) -> None:
    """Raise ManifestError unless every file listed in ``expected`` ({name: sha256}) is unchanged."""
    if not isinstance(expected, dict):
        raise ManifestError(
            f"{folder / source}: its manifest is not a mapping of file names to checksums; "
            "the folder was edited by hand — rerun it (--overwrite) to trust its numbers"
        )
    bad = []
    for name, digest in expected.items():
        if not isinstance(name, str) or "/" in name or name.startswith(".."):
            bad.append(f"{name!r} (not a run file)")
        elif not (folder / name).is_file():
            bad.append(f"{name} (missing)")
        elif sha256_file(folder / name) != digest:
            bad.append(f"{name} (changed)")
    if bad:
        raise ManifestError(
            f"{folder} does not hold the files its run wrote: {', '.join(bad)} differ from the checksums in {source}. "
            "Auditing or continuing it would report numbers for another model, split or configuration; restore the "
            "original files or rerun with --overwrite"
        )


MAX_REPORT_BYTES = 64 << 20


def read_report(folder: Path) -> dict[str, Any]:
    """``folder/report.json`` as a dict, after checking it is a JSON object and that its manifest (when
    it has one: runs made before the manifest have none) matches the folder's files."""
    from .fileio import read_limited

    path = Path(folder) / "report.json"
    try:
        data = json.loads(read_limited(path, MAX_REPORT_BYTES, "report").decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise RunFolderError(
            f"{path} cannot be read as a JSON report ({str(exc)[:200]}): it is truncated or corrupt. "
            "Rerun the run with --overwrite to rebuild it"
        ) from None
    if not isinstance(data, dict):
        raise RunFolderError(
            f"{path} holds a JSON {type(data).__name__}, not a report object; rerun the run with "
            "--overwrite to rebuild it"
        )
    if "manifest" in data:
        verify_files(Path(folder), data["manifest"], "report.json")
    else:
        log.warning(
            "%s has no manifest (a run made before safecompress recorded one): its files cannot be verified", path
        )
    return data


class SafeFileHandler(logging.FileHandler):
    """A log file opened without following symlinks (O_NOFOLLOW), created 0666 & ~umask; a write that
    fails (full disk) is dropped instead of printing a logging traceback."""

    def _open(self):
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.baseFilename, flags, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise RunFolderError(
                    f"{self.baseFilename} is a symbolic link; remove it (safecompress never writes "
                    "through links in a run folder)"
                ) from None
            if exc.errno in STORAGE_ERRNOS:
                raise storage_error(self.baseFilename, exc) from None
            raise
        return open(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        pass


class RunFolder:
    def __init__(self, out: str | Path, mode: str = "new"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.final = Path(out)
        self.mode = mode
        self._locks: list[FolderLock] = []
        self.work: Path | None = None
        if self.final.is_symlink() and not self.final.is_dir():
            raise RunFolderError(f"output path {self.final} is a dangling symbolic link; choose another --out")
        if self.final.exists() and not self.final.is_dir():
            raise RunFolderError(f"output path {self.final} exists and is a file; choose another --out")
        self._check_occupant()  # before touching anything: a user's folder is never written to
        existed = self.final.is_dir()
        try:
            self.final.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in STORAGE_ERRNOS:
                raise storage_error(self.final, exc) from None
            raise RunFolderError(
                f"cannot create the output folder {self.final}: {exc.strerror or exc}; choose another --out"
            ) from None
        try:
            self._locks.append(
                FolderLock(self.final, f"safecompress run --{mode}" if mode != "new" else "safecompress run").acquire()
            )
        except BaseException:
            if not existed and is_empty(self.final):
                shutil.rmtree(self.final, ignore_errors=True)
            raise
        try:
            occupied = self._check_occupant()  # again, now that no other writer can change it
            self.resuming = mode == "resume" and occupied
            if mode == "overwrite" and occupied:
                self.work = self.final.parent / f".{self.final.name}.partial-{os.getpid()}-{int(time.time())}"
                self.work.mkdir(parents=True)
                self._locks.append(FolderLock(self.work, "safecompress run --overwrite").acquire())
                self.created = True
            else:
                self.work = self.final
                self.created = not existed or is_empty(self.final)
            if self.resuming:
                self._check_recorded_files()
            if not (self.resuming and (self.work / MARKER).is_file()):
                write_marker(self.work)
        except BaseException:
            self.release()
            if self.work is not None and self.work != self.final:
                shutil.rmtree(self.work, ignore_errors=True)
            if not existed and is_empty(self.final):
                shutil.rmtree(self.final, ignore_errors=True)
            raise

    def _check_occupant(self) -> bool:
        """Whether the folder holds a run to resume/replace; raise unless the mode may use what is there."""
        occupied = not is_empty(self.final)
        if occupied and self.mode == "new":  # (a folder holding only a marker: a run killed at its start)
            raise RunFolderError(
                f"output folder {self.final} already exists and is not empty. Use --resume to continue that run, "
                "--overwrite to replace it (the old run is kept until the new one succeeds), or choose another --out"
            )
        if occupied and not is_run_folder(self.final):
            raise not_a_run_folder(self.final, f"--{self.mode}")
        return occupied

    def _check_recorded_files(self) -> None:
        """--resume: the files the killed or finished run wrote must be the ones it recorded."""
        recorded = read_marker(self.work).get("files")
        if recorded:
            verify_files(self.work, recorded, MARKER)
        if (self.work / "report.json").is_file():
            read_report(self.work)

    def path(self, name: str) -> Path:
        return self.work / name

    def record(self, name: str) -> None:
        """Note run file ``name`` (just written) in the folder's marker."""
        record_file(self.work, name)

    def commit(self) -> Path:
        """Make the work folder the run folder (overwrite mode swaps it in atomically-ish)."""
        if self.work != self.final:
            old = self.final.parent / f".{self.final.name}.old-{os.getpid()}-{int(time.time())}"
            os.replace(self.final, old)
            os.replace(self.work, self.final)
            shutil.rmtree(old, ignore_errors=True)
            self.work = self.final
        return self.final

    def abandon(self, keep: str) -> None:
        """After a failure: drop a partial overwrite folder (the old run stays untouched), and drop a
        folder this run created unless it holds ``keep`` (a checkpoint that --resume can continue)."""
        if self.work != self.final:
            shutil.rmtree(self.work, ignore_errors=True)
            log.info("the previous run in %s was left untouched", self.final)
        elif self.created and not (self.work / keep).exists():
            shutil.rmtree(self.work, ignore_errors=True)

    def release(self) -> None:
        """Drop the folder lock(s); call once the run (and its baseline) is finished or has failed."""
        for lock in reversed(self._locks):
            lock.release()
        self._locks.clear()
