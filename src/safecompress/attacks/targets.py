"""What an attack queries: a target view. Black-box attacks get logits only (the module is hidden in a
closure); white-box attacks also get the network's weights — under any inference-time output defence,
which the weights bypass — and ``served``, the model as a query would reach it."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..train import predict_logits
from .memo import LogitsMemo


class BlackBoxTarget:
    """Query access to a model: logits for inputs, nothing else; with ``memo``, a model that does not change
    answers a tensor it was asked before from memory (the audit)."""

    def __init__(self, model: nn.Module, device: torch.device, batch_size: int = 1024, memo: LogitsMemo | None = None):
        def compute(X: torch.Tensor) -> torch.Tensor:
            return predict_logits(model, X, device, batch_size)

        def query(X: torch.Tensor) -> torch.Tensor:
            return compute(X) if memo is None else memo.logits(model, X, compute)

        self.logits: Callable[[torch.Tensor], torch.Tensor] = query

    def probs(self, X: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(X), dim=1)


class WhiteBoxTarget(BlackBoxTarget):
    """Query access to the network plus the network itself (weights, activations, gradients); ``served``
    answers queries as the deployed model does (the network itself unless one is given)."""

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        batch_size: int = 1024,
        served: nn.Module | None = None,
        memo: LogitsMemo | None = None,
    ):
        super().__init__(model, device, batch_size, memo)
        self.module = model
        self.device = device
        self.served = self if served is None else BlackBoxTarget(served, device, batch_size, memo)


def target_view(
    served: nn.Module,
    device: torch.device,
    white_box: bool,
    network: nn.Module | None = None,
    memo: LogitsMemo | None = None,
) -> BlackBoxTarget:
    """The view of a served model an attack with the ``white_box`` capability gets; ``network`` is the
    model under the inference-time defence (default: ``served`` unwrapped); ``memo``: see :class:`BlackBoxTarget`."""
    if not white_box:
        return BlackBoxTarget(served, device, memo=memo)
    from ..defences.base import unwrap

    return WhiteBoxTarget(unwrap(served) if network is None else network, device, served=served, memo=memo)
