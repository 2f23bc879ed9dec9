"""A small facade for users who arrive with their own ``nn.Module`` and tensors (in the spirit of Opacus).

    from safecompress import SafeCompress
    sc = SafeCompress(density=0.05, simulate=["nn"], epochs=30)
    compressed = sc.fit(model, train=(X, y), val=(Xv, yv), probe=((Xm, ym), (Xn, yn)))
    sc.history_    # one dict per round: every candidate's accuracy, attack scores, score, choice
    sc.masks_      # the final masks (parameter name -> bool tensor)

Any model made of Linear/Conv layers works; it is trained from its current weights with the
test-driven loop and returned sparse (masks applied). ``probe`` members must be a subset of ``train``.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .config import build_config
from .errors import ConfigError
from .methods import METHODS, MethodContext, needed_parts
from .models import ModelSpec
from .train import resolve_device


class SafeCompress:
    def __init__(
        self,
        density: float = 0.05,
        simulate: Sequence[str] = ("nn",),
        *,
        method: str = "safecompress",
        epochs: int = 30,
        batch_size: int = 128,
        optimizer: str = "adam",
        lr: float = 1e-3,
        update_every: int = 100,
        seed: int = 0,
        device: str = "auto",
        augment: bool = False,
        **overrides: Any,
    ):
        """``overrides`` are dotted config keys with ``__`` for dots, e.g. ``safecompress__privacy_weight=2``."""
        raw: dict[str, Any] = {
            "seed": seed,
            "method": {"name": method},
            "sparse": {"density": density, "update_every": update_every},
            "safecompress": {"simulate": list(simulate)},
            "train": {
                "epochs": epochs,
                "batch_size": batch_size,
                "optimizer": optimizer,
                "lr": lr,
                "weight_decay": 0.0 if optimizer == "adam" else 5e-4,
                "device": device,
                "augment": augment,
            },
            "audit": {"enabled": False},
        }
        for key, value in overrides.items():
            node = raw
            parts = key.split("__")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        self.cfg = build_config(raw)
        self.history_: list[dict[str, Any]] = []
        self.masks_: dict[str, torch.Tensor] | None = None

    def fit(self, model: nn.Module, train, val, probe=None, n_classes: int | None = None) -> nn.Module:
        """Compress ``model``; returns the compressed model (a new module; ``model`` is untouched)."""
        Xt, yt = (torch.as_tensor(a) for a in train)
        Xv, yv = (torch.as_tensor(a) for a in val)
        parts = [(Xt.float(), yt.long()), (Xv.float(), yv.long())]
        if probe is not None:
            (Xm, ym), (Xn, yn) = probe
            parts.append((torch.as_tensor(Xn).float(), torch.as_tensor(yn).long()))
        elif set(needed_parts(self.cfg)) & {"probe_members", "probe_nonmembers"}:
            raise ConfigError(
                "SafeCompress needs probe=((X_members, y_members), (X_nonmembers, y_nonmembers)): "
                "members from the training set and non-members it never trains on"
            )
        X = torch.cat([p[0] for p in parts])
        y = torch.cat([p[1] for p in parts])
        n_train, n_val = len(yt), len(yv)
        split = {"train": np.arange(n_train), "val": np.arange(n_train, n_train + n_val)}
        if probe is not None:
            member_idx = _locate_members(torch.as_tensor(Xm).float(), parts[0][0])
            split["probe_members"] = member_idx
            split["probe_nonmembers"] = np.arange(n_train + n_val, len(y))
        n_classes = n_classes or int(y.max()) + 1
        spec = ModelSpec("user", tuple(Xt.shape[1:]), n_classes, 1.0, "auto")
        device = resolve_device(self.cfg.train.device)
        with tempfile.TemporaryDirectory() as tmp:
            ctx = _UserContext(
                cfg=self.cfg,
                spec=spec,
                X=X,
                y=y,
                split=split,
                device=device,
                augment=bool(self.cfg.train.augment is True),
                flip=True,
                run_dir=Path(tmp),
            )
            ctx.template = model
            result = METHODS.get(self.cfg.method.name)().train(ctx)
            rounds = Path(tmp) / "rounds.jsonl"
            self.history_ = [json.loads(line) for line in rounds.read_text().splitlines()] if rounds.exists() else []
        self.masks_ = result.masks
        self.report_ = result.report
        return result.model.eval()


class _UserContext(MethodContext):
    template: nn.Module

    def new_model(self) -> nn.Module:
        return copy.deepcopy(self.template)


def _locate_members(members: torch.Tensor, train: torch.Tensor) -> np.ndarray:
    """Indices in ``train`` of the probe members (they must be training samples)."""
    flat = train.flatten(1)
    lookup = {tuple(row.tolist()): i for i, row in enumerate(flat)}
    idx = []
    for row in members.flatten(1):
        i = lookup.get(tuple(row.tolist()))
        if i is None:
            raise ConfigError(
                "probe members must be samples of the training set (a member the model never trains on "
                "is a non-member); pass a subset of train as the first probe pair"
            )
        idx.append(i)
    return np.asarray(idx)
