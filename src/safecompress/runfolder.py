"""The run folder: created fresh, resumed, or replaced — never half-destroyed.

* ``new``: the folder must not exist (or be empty); otherwise the user must choose.
* ``resume``: continue the folder's run (its saved config must match); a missing folder starts fresh.
* ``overwrite``: the new run is built in a hidden sibling folder and only swapped in when it
  succeeds, so a failed or interrupted run leaves the old results untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from .errors import RunFolderError

log = logging.getLogger(__name__)
MODES = ("new", "resume", "overwrite")


class RunFolder:
    def __init__(self, out: str | Path, mode: str = "new"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.final = Path(out)
        self.mode = mode
        if self.final.exists() and not self.final.is_dir():
            raise RunFolderError(f"output path {self.final} exists and is a file; choose another --out")
        occupied = self.final.is_dir() and any(self.final.iterdir())
        if mode == "new" and occupied:
            raise RunFolderError(
                f"output folder {self.final} already exists and is not empty. Use --resume to continue that run, "
                "--overwrite to replace it (the old run is kept until the new one succeeds), or choose another --out"
            )
        self.resuming = mode == "resume" and occupied
        if mode == "overwrite" and occupied:
            self.work = self.final.parent / f".{self.final.name}.partial-{os.getpid()}-{int(time.time())}"
        else:
            self.work = self.final
        self.created = not self.work.exists() or not any(self.work.iterdir())
        self.work.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.work / name

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
