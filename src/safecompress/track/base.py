"""What every tracker shares: the :class:`Tracker` base class, the :data:`TRACKERS` registry and :class:`TrackError`."""

from __future__ import annotations

from typing import ClassVar

from ..errors import SafeCompressError
from ..optional import missing_modules
from ..registry import Registry
from .record import RunRecord

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
        return missing_modules(cls.requires)

    def log(self, run: RunRecord) -> str:
        """Log ``run``; returns where it went (a run id and store, a log dir) for the user."""
        raise NotImplementedError


TRACKERS: Registry[type[Tracker]] = Registry("tracker")
