"""Experiment trackers: log a finished run folder to MLflow or TensorBoard (the optional ``track`` extra).

A tracker reads the run folder's files (:mod:`.record`), so ``safecompress run --track``, ``safecompress
audit --track`` and ``safecompress track RUN_DIR`` share one path, and an old folder logs like a new one.
Trackers register in :data:`TRACKERS`; a plugin adds one with ``@TRACKERS.register("name")`` on a
:class:`Tracker` subclass.

Nothing that computes a run's numbers imports this package (it is left out of the code hash, see
:data:`safecompress.provenance.OUTPUT_ONLY`); only the CLI does.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import ClassVar, Iterable

from ..errors import SafeCompressError
from ..registry import Registry
from .record import RunRecord, read_run

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "safecompress"
INSTALL_HINT = "pip install 'safecompress[track]'"


class TrackError(SafeCompressError):
    """A tracker cannot be used (its package is missing) or failed to log a run."""


class Tracker:
    """Logs one finished run folder to an experiment-tracking backend.

    ``requires`` names the importable modules the backend needs (checked before any training starts);
    ``default_uri`` says where it logs without ``--track-uri`` (for ``--help``)."""

    name: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    default_uri: ClassVar[str] = ""

    def __init__(self, uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT):
        self.uri = uri
        self.experiment = experiment or DEFAULT_EXPERIMENT

    @classmethod
    def missing(cls) -> list[str]:
        """The required modules that cannot be imported here."""
        return [m for m in cls.requires if importlib.util.find_spec(m) is None]

    def log(self, run: RunRecord) -> str:
        """Log ``run``; returns where it went (a run id and store, a log dir) for the user."""
        raise NotImplementedError


TRACKERS: Registry[type[Tracker]] = Registry("tracker")

# the built-in backends register themselves; they import their libraries only when logging
from . import mlflow as _mlflow  # noqa: E402,F401
from . import tensorboard as _tensorboard  # noqa: E402,F401


def parse_trackers(values: Iterable[str] | str | None) -> list[str]:
    """Tracker names from repeated and/or comma-separated options (``mlflow,tensorboard``), in order and
    without repeats; an unknown name raises UnknownNameError (with a did-you-mean), a tracker whose
    package is missing raises TrackError naming the extra to install. Nothing is logged or written."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    names: list[str] = []
    for value in values:
        for name in (part.strip().lower() for part in value.split(",")):
            if name and name not in names:
                names.append(name)
    for name in names:
        cls = TRACKERS.get(name)
        missing = cls.missing()
        if missing:
            raise TrackError(
                f"tracking with {name} needs the optional package(s) {', '.join(missing)}, which are not "
                f"installed; install them with: {INSTALL_HINT} (or drop --track {name})"
            )
    return names


def track_run(
    run_dir: str | Path, names: Iterable[str], uri: str | None = None, experiment: str | None = None
) -> list[str]:
    """Log the finished run folder ``run_dir`` to each tracker in ``names``; returns one line per tracker
    saying where it went. The folder is only read. A backend failure is logged and raised as TrackError."""
    names = list(names)
    run = read_run(run_dir)
    done = []
    for name in names:
        tracker = TRACKERS.get(name)(uri, experiment or DEFAULT_EXPERIMENT)
        try:
            where = tracker.log(run)
        except SafeCompressError:
            raise
        except Exception as exc:  # any backend error (server down, store unwritable, bad value)
            log.error("logging %s to %s failed: %s: %s", run.path, name, type(exc).__name__, exc)
            raise TrackError(f"logging {run.path} to {name} failed ({type(exc).__name__}: {exc})") from exc
        log.info("logged %s to %s: %s", run.path, name, where)
        done.append(f"{name}: {where}")
    return done


__all__ = [
    "DEFAULT_EXPERIMENT",
    "TRACKERS",
    "RunRecord",
    "TrackError",
    "Tracker",
    "parse_trackers",
    "read_run",
    "track_run",
]
