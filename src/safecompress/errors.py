"""User-facing errors.

Every problem a user can fix (bad config, missing data, impossible split, occupied output folder)
raises a subclass of :class:`SafeCompressError`. The CLI turns these into a readable message and
exit code 2; programming errors keep their tracebacks.
"""

from __future__ import annotations


class SafeCompressError(Exception):
    """Base class of errors caused by user input; the message says what is wrong and how to fix it."""


class ConfigError(SafeCompressError):
    """The configuration (YAML file, preset or --set override) is invalid."""

    def __init__(self, problems: list[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        if len(self.problems) == 1:
            msg = f"invalid configuration: {self.problems[0]}"
        else:
            msg = f"invalid configuration ({len(self.problems)} problems):\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(msg)


class UnknownNameError(ConfigError):
    """A registry lookup failed (unknown dataset, model, method, ...)."""


class DataError(SafeCompressError):
    """A dataset could not be found, read or validated."""


class DatasetNotFoundError(DataError):
    """The files of a dataset are not on this machine."""


class SplitError(SafeCompressError):
    """The membership split is impossible or a saved split is inconsistent."""


class RunFolderError(SafeCompressError):
    """The output folder cannot be used as asked (exists, or belongs to another config)."""


class TrainingDivergedError(SafeCompressError):
    """The loss became NaN or infinite."""


class RunFolderLockedError(RunFolderError):
    """Another safecompress process is writing the run folder (holds its lock)."""


class ManifestError(RunFolderError):
    """A run folder's files are not the ones its run wrote (manifest checksum mismatch)."""


class AuditMergeError(RunFolderError):
    """A re-audit of some attacks cannot be merged into the run's earlier audit: the two would not be
    comparable (other reference models, other records) or the earlier audit's scores are missing."""


class UntrustedCodeError(SafeCompressError):
    """A file asks to import and run code (a model factory) and the caller did not trust it."""


class StorageError(SafeCompressError):
    """A file could not be written: the disk is full, or the folder is not writable."""


class PluginError(SafeCompressError):
    """A third-party plugin (entry point or ``SAFECOMPRESS_PLUGINS`` entry) could not be loaded."""


class PackedDataError(SafeCompressError, ValueError):
    """A packed sparse tensor's data (its coded mask, values or scale) is corrupt, truncated or inconsistent."""
