"""A rich progress bar as a training callback (used by the CLI; library code never draws)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .train import Callback, Trainer


class RichProgress(Callback):
    def __init__(self, console: Console, description: str = "training"):
        self.console = console
        self.description = description
        self._progress: Progress | None = None
        self._task = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            self.description, total=trainer.total_steps, completed=trainer.state.step, info=""
        )

    def on_step_end(self, trainer: Trainer) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=trainer.state.step)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if self._progress is not None:
            info = f"epoch {trainer.state.epoch}/{trainer.epochs} loss {metrics['loss']:.3f}"
            extra = [cb.progress_info() for cb in trainer.callbacks if hasattr(cb, "progress_info")]
            info = " · ".join([info, *(e for e in extra if e)])
            self._progress.update(self._task, info=info)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
