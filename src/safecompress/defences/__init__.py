"""Privacy defences (registry ``DEFENCES``); importing this package registers every built-in one."""

from . import advreg, confidence_penalty, dp_sgd, early_stopping, hamp, label_smoothing, memguard, relaxloss  # noqa: F401
from .base import DEFENCES, Defence, Deployed, register_defence, unwrap

__all__ = ["DEFENCES", "Defence", "Deployed", "register_defence", "unwrap"]
