"""Features for learned attackers: last-layer activations and closed-form per-sample gradients."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..train import eval_mode


def last_linear(module: nn.Module) -> nn.Linear:
    """The final Linear layer (the classifier head) of a model."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("white-box features need a model whose last layer is nn.Linear")
    return linears[-1]


@torch.no_grad()
def logits_and_penultimate(module: nn.Module, X: torch.Tensor, device: torch.device, batch_size: int = 512):
    """(logits, h): the model's outputs and the input of its last Linear layer, in one forward pass."""
    head = last_linear(module)
    captured: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda m, inp, out: captured.append(inp[0].detach().float().cpu()))
    try:
        with eval_mode(module):
            logits = [module(X[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(X), batch_size)]
    finally:
        handle.remove()
    return torch.cat(logits), torch.cat(captured).flatten(1)


def last_layer_gradient(logits: torch.Tensor, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample gradient of the cross-entropy w.r.t. the last layer's weight, (softmax − onehot) hᵀ.

    Shape (n, classes, hidden); equal to autograd's per-sample gradient (tested)."""
    delta = torch.softmax(logits, 1) - F.one_hot(y, logits.shape[1]).to(logits.dtype)
    return delta[:, :, None] * h[:, None, :]


class BinaryMLP(nn.Module):
    """The attack classifier used by learned attacks: features -> member logit."""

    def __init__(self, d: int, hidden: tuple[int, ...] = (64, 32)):
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


def fit_standardised(
    build,
    features: torch.Tensor,
    target: torch.Tensor,
    loss_fn,
    seed: int,
    epochs: int,
    lr: float,
    batch_size: int = 128,
):
    """Train ``build(n_features)`` on standardised ``features`` with ``loss_fn(output, target)``: seeded
    initialisation and batch order, Adam with weight decay 1e-4. Returns (network in eval mode, mean, std)."""
    mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
    Z = (features - mean) / std
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build(Z.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(Z), generator=gen)
        for i in range(0, len(Z), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            loss_fn(net(Z[idx]), target[idx]).backward()
            opt.step()
    return net.eval(), mean, std


def fit_binary_mlp(
    features: torch.Tensor,
    labels: np.ndarray,
    seed: int,
    epochs: int = 40,
    lr: float = 1e-3,
    batch_size: int = 128,
    hidden: tuple[int, ...] = (64, 32),
) -> tuple[BinaryMLP, torch.Tensor, torch.Tensor]:
    """Train a BinaryMLP on standardised features; returns (model, mean, std) for scoring."""
    return fit_standardised(
        lambda d: BinaryMLP(d, hidden),
        features,
        torch.as_tensor(labels, dtype=torch.float32),
        F.binary_cross_entropy_with_logits,
        seed,
        epochs,
        lr,
        batch_size,
    )


@torch.no_grad()
def predict_binary_mlp(fitted: tuple[BinaryMLP, torch.Tensor, torch.Tensor], features: torch.Tensor) -> np.ndarray:
    model, mean, std = fitted
    return model((features - mean) / std).double().numpy()
