"""Adversarial (min-max) regularisation against a simulated attacker (Nasr et al., "Machine Learning
with Membership Privacy using Adversarial Regularization", CCS 2018).

The attacker h maps (softmax output, ±1 label[, per-sample loss]) to a member logit. Before each
model step it takes ``k`` Adam steps maximising its gain on (training batch = members) vs
(probe non-members); the model then minimises  CE + β · mean log h(member batch)  — i.e. it *lowers*
the attacker's member score on its training data (the sign the original code got wrong). All
features are differentiable functions of the logits, so gradients reach the model through each of
them. Starts after a warm-up fraction of training.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .attacks.features import BinaryMLP
from .attacks.signals import onehot_pm1
from .train import Callback, Trainer, load_optimizer_tensors, optimizer_tensors


def attack_features(logits: torch.Tensor, y: torch.Tensor, n_classes: int, with_loss: bool) -> torch.Tensor:
    feats = [torch.softmax(logits, 1), onehot_pm1(y, n_classes)]
    if with_loss:
        feats.append(F.cross_entropy(logits, y, reduction="none")[:, None])
    return torch.cat(feats, 1)


class AdversarialRegularizer(Callback):
    def __init__(
        self,
        n_classes: int,
        nonmembers: tuple[torch.Tensor, torch.Tensor],
        *,
        beta: float = 1.0,
        k: int = 1,
        start_step: int = 0,
        with_loss: bool = False,
        seed: int = 0,
        lr: float = 1e-3,
    ):
        self.n_classes, self.beta, self.k, self.start_step, self.with_loss = n_classes, beta, k, start_step, with_loss
        self.X_out, self.y_out = nonmembers
        d = 2 * n_classes + (1 if with_loss else 0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.attacker = BinaryMLP(d)
        self.optimizer = torch.optim.Adam(self.attacker.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed + 17)
        self.history: list[float] = []
        self.seconds = 0.0  # time spent in attacker steps and the penalty (reported as overhead)

    def member_score(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.attacker(attack_features(logits, y, self.n_classes, self.with_loss))

    def _attacker_steps(self, trainer: Trainer, xb: torch.Tensor, yb: torch.Tensor, logits: torch.Tensor) -> None:
        device = logits.device
        self.attacker.to(device)
        with torch.no_grad():
            idx = torch.randint(0, len(self.y_out), (len(yb),), generator=self.generator)
            was_training = trainer.model.training
            trainer.model.eval()
            out_logits = trainer.model(self.X_out[idx].to(device))
            trainer.model.train(was_training)
        in_feats = attack_features(logits.detach(), yb, self.n_classes, self.with_loss)
        out_feats = attack_features(out_logits, self.y_out[idx].to(device), self.n_classes, self.with_loss)
        feats = torch.cat([in_feats, out_feats])
        target = torch.cat([torch.ones(len(yb)), torch.zeros(len(yb))]).to(device)
        for _ in range(self.k):
            self.optimizer.zero_grad()
            F.binary_cross_entropy_with_logits(self.attacker(feats), target).backward()
            self.optimizer.step()

    def extra_loss(self, trainer: Trainer, xb, yb, logits):
        if trainer.state.step < self.start_step:
            return None
        t0 = time.perf_counter()
        self._attacker_steps(trainer, xb, yb, logits)
        for p in self.attacker.parameters():
            p.requires_grad_(False)
        try:
            # log h(member): the model minimises it, pushing the attacker's member score down
            penalty = F.logsigmoid(self.member_score(logits, yb)).mean()
        finally:
            for p in self.attacker.parameters():
                p.requires_grad_(True)
        self.history.append(float(penalty.detach()))
        self.seconds += time.perf_counter() - t0
        return self.beta * penalty

    def get_state(self):
        tensors = {f"attacker.{k}": v for k, v in self.attacker.state_dict().items()}
        opt_tensors, param_groups = optimizer_tensors(self.optimizer)
        tensors.update(opt_tensors)
        tensors["generator"] = self.generator.get_state()
        return tensors, {"param_groups": param_groups, "history": self.history, "seconds": self.seconds}

    def set_state(self, tensors, meta):
        self.attacker.load_state_dict(
            {k[len("attacker.") :]: v for k, v in tensors.items() if k.startswith("attacker.")}
        )
        load_optimizer_tensors(self.optimizer, tensors, meta["param_groups"])
        self.generator.set_state(tensors["generator"])
        self.history = list(meta["history"])
        self.seconds = 0.0  # per process, like the report's train_s
