"""Memoised logits: a model that does not change, queried again on the same records, answers from memory.

In the audit every black-box attack queries the same target on the same query records, and the metric attacks
calibrate on the same reference model and population; each (model, records) pair is computed once. An entry is
keyed by the identity of the model and of the records' tensor (held weakly: it goes when the tensor does, so a
new tensor at a freed one's address never finds it) and is used only while neither the tensor nor the model's
parameters and buffers have been modified in place since (their version counters). A query's answer is
deterministic, so a memoised one equals the recomputed one bit for bit.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary


def _state(model: nn.Module) -> tuple[int, ...]:
    """Version counters of the model's parameters and buffers: they move on any in-place update."""
    return tuple(t._version for t in (*model.parameters(), *model.buffers()))


class LogitsMemo:
    """``logits(model, X, compute)``: ``compute(X)`` for ``model`` on ``X``, computed once while both stand."""

    def __init__(self) -> None:
        self._tables: dict[int, tuple[nn.Module, WeakIdKeyDictionary]] = {}

    def logits(
        self, model: nn.Module, X: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        entry = self._tables.get(id(model))
        if entry is None or entry[0] is not model:
            entry = self._tables[id(model)] = (model, WeakIdKeyDictionary())
        table = entry[1]
        key = (X._version, tuple(X.shape), _state(model))
        hit = table.get(X)
        if hit is None or hit[0] != key:
            hit = table[X] = (key, compute(X))
        return hit[1].clone()  # a caller may change its answer in place; the memory must not change with it
