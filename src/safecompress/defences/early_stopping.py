"""Early stopping on validation loss: stop after ``patience`` epochs without improvement and keep the
best epoch's weights. Overfitting drives membership leakage, so stopping at the validation optimum is
the simplest defence (and the baseline every other defence must beat)."""

from __future__ import annotations

import torch

from ..params import NonNegative, Params
from ..sparse.engine import find_engine
from ..train import Callback, evaluate
from .base import Defence, register_defence


class _EarlyStop(Callback):
    def __init__(self, val: tuple[torch.Tensor, torch.Tensor], patience: int, min_delta: float):
        self.val, self.patience, self.min_delta = val, patience, min_delta
        self.best_loss, self.best_epoch, self.best_state, self.stopped = float("inf"), 0, None, False
        self.best_masks: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, trainer):
        if self.stopped:  # resumed after stopping: do not train on
            trainer.epochs = trainer.state.epoch

    def on_epoch_end(self, trainer, metrics):
        loss = evaluate(trainer.model, *self.val, trainer.device)["loss"]
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch = loss, trainer.state.epoch
            self.best_state = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
            engine = find_engine(trainer)  # its masks must follow the restored weights
            self.best_masks = None if engine is None else {k: v.clone() for k, v in engine.masks.items()}
        elif trainer.state.epoch - self.best_epoch >= self.patience:
            self.stopped = True
            trainer.epochs = trainer.state.epoch  # the trainer's loop ends after this epoch

    def on_fit_end(self, trainer):
        if self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)
            engine = find_engine(trainer)
            if engine is not None and self.best_masks is not None:
                engine.set_masks(self.best_masks)  # the weights and the topology of the same epoch

    def get_state(self):
        tensors = {} if self.best_state is None else {f"best.{k}": v for k, v in self.best_state.items()}
        if self.best_masks is not None:
            tensors.update({f"mask.{k}": v.cpu() for k, v in self.best_masks.items()})
        return tensors, {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "stopped": self.stopped}

    def set_state(self, tensors, meta):
        self.best_loss, self.best_epoch, self.stopped = (
            float(meta["best_loss"]),
            int(meta["best_epoch"]),
            bool(meta["stopped"]),
        )
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        self.best_state = best or None
        masks = {k[5:]: v for k, v in tensors.items() if k.startswith("mask.")}
        self.best_masks = masks or None


@register_defence("early_stopping")
class EarlyStopping(Defence):
    description = "stop when val loss stops improving; keep the best epoch's weights"

    class Params(Params):
        patience: NonNegative = 3
        min_delta: NonNegative = 0.0

    needs_parts = ("train", "val")

    def callbacks(self, ctx):
        idx = torch.as_tensor(ctx.split["val"])
        return [
            _EarlyStop((ctx.X[idx], ctx.y[idx]), max(1, int(self.params["patience"])), float(self.params["min_delta"]))
        ]
