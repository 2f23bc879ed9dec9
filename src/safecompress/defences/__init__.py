"""Privacy defences (registry ``DEFENCES``); importing this package registers every built-in one."""

from . import advreg, confidence_penalty, dp_sgd, early_stopping, label_smoothing, relaxloss  # noqa: F401
from .base import DEFENCES, Defence, register_defence

__all__ = ["DEFENCES", "Defence", "register_defence"]
