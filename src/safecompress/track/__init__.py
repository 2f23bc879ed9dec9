"""Experiment trackers: log a finished run folder to MLflow or TensorBoard (the optional ``track`` extra).

A tracker reads the run folder's files (:mod:`.record`), so ``safecompress run --track``, ``safecompress
audit --track`` and ``safecompress track RUN_DIR`` share one path, and an old folder logs like a new one.
Trackers register in :data:`TRACKERS`; a plugin adds one with ``@TRACKERS.register("name")`` on a
:class:`Tracker` subclass.

Nothing that computes a run's numbers imports this package (it is left out of the code hash, see
:data:`safecompress.provenance.OUTPUT_ONLY`); only the CLI does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

from ..errors import SafeCompressError
from ..plugins import import_package
from .base import DEFAULT_EXPERIMENT, INSTALL_HINT, TRACKERS, Tracker, TrackError
from .record import RunRecord, read_run

log = logging.getLogger(__name__)

# the built-in backends (one module each) register themselves; they import their libraries only when logging
import_package(__name__, __path__)


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
    "INSTALL_HINT",
    "TRACKERS",
    "RunRecord",
    "TrackError",
    "Tracker",
    "parse_trackers",
    "read_run",
    "track_run",
]
