"""An adversarial attribute head against attribute inference (after Edwards & Storkey, ICLR 2016, and
Ganin et al.'s gradient reversal, JMLR 2016).

A small head reads the network's penultimate embedding and learns to predict the sensitive attribute
of training records (``k`` Adam steps per model step, on the detached embedding). The network itself
is trained to make the head's prediction *uninformative*: it adds β · CE(prior, head(h)) — the head's
output is pulled towards the population prior of the attribute, which removes the attribute from the
embedding without the instability of maximising the head's loss (plain gradient reversal can just
flip the head's answers). The head's batches are drawn, with a seeded generator, from the training
records whose attribute the trainer knows; they cost one extra forward/backward per step.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...attacks.features import last_linear
from ...train import Callback, Trainer, load_optimizer_tensors, optimizer_tensors


class AttributeAdversary(Callback):
    def __init__(
        self,
        X: torch.Tensor,
        s: np.ndarray,
        beta: float,
        seed: int,
        k: int = 1,
        lr: float = 1e-3,
        batch_size: int = 128,
    ):
        self.X, self.s = X, torch.as_tensor(np.asarray(s), dtype=torch.long)
        self.n_values = int(self.s.max()) + 1
        counts = torch.bincount(self.s, minlength=self.n_values).float()
        self.prior = counts / counts.sum()
        self.beta, self.k, self.lr, self.batch_size = beta, k, lr, batch_size
        self.generator = torch.Generator().manual_seed(seed + 0xAD)
        self.seed = seed
        self.head: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._restored: tuple[dict, dict] | None = None  # checkpointed head, loaded once the device is known
        self.seconds = 0.0
        self.head_accuracy: list[float] = []

    def _embed(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        handle = last_linear(model).register_forward_hook(lambda m, inp, out: captured.append(inp[0]))
        try:
            model(x)
        finally:
            handle.remove()
        return captured[0].flatten(1)

    def _make_head(self, d: int, device) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + 0xAE)
            self.head = nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, self.n_values)).to(device)
        self.optimizer = torch.optim.Adam(self.head.parameters(), lr=self.lr)

    def get_state(self):
        tensors = {"generator": self.generator.get_state()}
        meta = {"head_accuracy": self.head_accuracy[-50:], "param_groups": None}
        if self.head is None and self._restored is not None:  # checkpointed again before the first step
            return self._restored
        if self.head is not None:
            tensors.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
            opt_tensors, meta["param_groups"] = optimizer_tensors(self.optimizer)
            tensors.update(opt_tensors)
        return tensors, meta

    def set_state(self, tensors, meta):
        self.generator.set_state(tensors["generator"])
        self.head_accuracy = list(meta["head_accuracy"])
        self.head, self.optimizer = None, None
        self._restored = (tensors, meta) if "head.0.weight" in tensors else None
        self.seconds = 0.0

    def extra_loss(self, trainer: Trainer, xb, yb, logits):
        t0 = time.perf_counter()
        device = logits.device
        idx = torch.randint(0, len(self.s), (min(self.batch_size, len(self.s)),), generator=self.generator)
        h = self._embed(trainer.model, self.X[idx].to(device))
        s = self.s[idx].to(device)
        if self.head is None:
            self._make_head(h.shape[1], device)
            if self._restored is not None:
                tensors, meta = self._restored
                self.head.load_state_dict(
                    {k[len("head.") :]: v.to(device) for k, v in tensors.items() if k.startswith("head.")}
                )
                load_optimizer_tensors(self.optimizer, tensors, meta["param_groups"], device)
                self._restored = None
        for _ in range(self.k):
            self.optimizer.zero_grad()
            out = self.head(h.detach())
            F.cross_entropy(out, s).backward()
            self.optimizer.step()
        self.head_accuracy.append(float((out.argmax(1) == s).float().mean()))
        confusion = -(self.prior.to(device) * F.log_softmax(self.head(h), 1)).sum(1).mean()
        self.seconds += time.perf_counter() - t0
        return self.beta * confusion
