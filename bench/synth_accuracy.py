"""Benchmark: how hard are the synthetic datasets for their reference models?

Generates each synthetic dataset (fresh, in a temporary cache), trains the reference model with
plain torch on CPU and prints a markdown table. Used to tune the generators in
``safecompress.data.synth_shoppers`` / ``synth_images``.

    PYTHONPATH=src python bench/synth_accuracy.py [--datasets purchase100-synth ...] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from safecompress.data import DataContext, load_dataset


@dataclass
class Plan:
    n_train: int
    n_test: int
    epochs: int
    batch: int = 128
    lr: float = 1e-3


PLANS = {
    "purchase100-synth": Plan(10000, 5000, 20),
    "texas100-synth": Plan(10000, 5000, 20),
    "cifar10-synth": Plan(5000, 5000, 15, batch=64),
    "cifar100-synth": Plan(5000, 5000, 15, batch=64),
}


def tabular_mlp(d: int, k: int) -> nn.Module:
    """The Purchase/Texas reference MLP: d-1024-512-256-128-k with Tanh."""
    widths = [d, 1024, 512, 256, 128]
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], k))


def small_cnn(k: int) -> nn.Module:
    """Three conv blocks + two linear layers (~120k parameters for 10 classes)."""

    def block(a: int, b: int) -> list[nn.Module]:
        return [nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(3, 32),
        *block(32, 64),
        *block(64, 64),
        nn.Flatten(),
        nn.Linear(64 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, k),
    )


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(X[i : i + 1000]).argmax(1) for i in range(0, len(X), 1000)])
    return float((pred == y).float().mean())


def run(name: str, seed: int, epochs: int | None) -> dict[str, object]:
    plan = PLANS[name]
    epochs = epochs or plan.epochs
    with tempfile.TemporaryDirectory() as tmp:
        ctx = DataContext(cache_dir=Path(tmp), synth_seed=seed)
        start = time.perf_counter()
        ds = load_dataset(name, ctx)
        gen_s = time.perf_counter() - start
    order = np.random.default_rng(seed).permutation(len(ds))
    tr, te = order[: plan.n_train], order[plan.n_train : plan.n_train + plan.n_test]
    Xtr, ytr = torch.from_numpy(ds.X[tr]), torch.from_numpy(ds.y[tr])
    Xte, yte = torch.from_numpy(ds.X[te]), torch.from_numpy(ds.y[te])

    torch.manual_seed(seed)
    model = small_cnn(ds.n_classes) if ds.kind == "image" else tabular_mlp(ds.input_shape[0], ds.n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=plan.lr)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(Xtr))
        for i in range(0, len(Xtr), plan.batch):
            idx = perm[i : i + plan.batch]
            opt.zero_grad()
            loss_fn(model(Xtr[idx]), ytr[idx]).backward()
            opt.step()
    train_s = time.perf_counter() - start
    return {
        "dataset": name,
        "n_train": len(tr),
        "n_test": len(te),
        "epochs": epochs,
        "train acc": f"{accuracy(model, Xtr, ytr):.3f}",
        "test acc": f"{accuracy(model, Xte, yte):.3f}",
        "gen s": f"{gen_s:.1f}",
        "train s": f"{train_s:.1f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(PLANS), choices=list(PLANS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="override every plan's epoch count")
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    for name in args.datasets:
        rows.append(run(name, args.seed, args.epochs))
        print(f"done: {rows[-1]}", flush=True)
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
