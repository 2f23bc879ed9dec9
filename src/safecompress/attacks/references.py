"""Reference (shadow) models shared by every attack of a run, trained once and cached.

Each of the N models is trained *with the target's own recipe* — same architecture, training
schedule, compression method and density — on a random half of the attacker's data pool
(population, plus the queried candidates for online LiRA). Every pool point is a member of exactly
half of the models (N even), so each query has N/2 "out" and N/2 "in" references.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..errors import SafeCompressError
from ..executor import resources_for
from ..fileio import atomic_write_text, sha256_file
from .memo import LogitsMemo

log = logging.getLogger(__name__)
TrainFn = Callable[[torch.Tensor, torch.Tensor, int], tuple[nn.Module, dict | None]]


def membership_matrix(n_models: int, n_points: int, seed: int) -> np.ndarray:
    """(n_models, n_points) bool: each point is in exactly floor(n/2) models (random half if n == 1)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xEF]))
    if n_models == 1:
        return (rng.permutation(n_points) < n_points // 2)[None, :]
    order = np.argsort(rng.random((n_models, n_points)), axis=0)
    return order < n_models // 2


def _checksum_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _verify(path: Path) -> None:
    """A cached model is trusted only if its checksum file exists and matches (a crash or a bit flip
    never yields a model the audit silently uses)."""
    sums = _checksum_file(path)
    if not sums.is_file():
        raise SafeCompressError("no checksum file (written by an interrupted or older run)")
    if sums.read_text().strip() != sha256_file(path):
        raise SafeCompressError("checksum mismatch: the file is corrupt")


def train_reference(task):
    """One reference model (an executor task): the caller's thread count, so results match everywhere.
    ``out`` (the reference's OUT rows, for recipes that need held-out parts) is passed only when set."""
    train_fn, X, y, seed, threads, sensitive, out = task
    torch.set_num_threads(threads)
    kwargs = {} if sensitive is None else {"sensitive": sensitive}
    if out is not None:
        kwargs["out"] = out
    model, masks = train_fn(X, y, seed, **kwargs)
    return model.cpu(), masks


class ReferencePool:
    def __init__(
        self,
        train_fn: TrainFn,
        X_pop: torch.Tensor,
        y_pop: torch.Tensor,
        n_models: int,
        seed: int,
        device: torch.device,
        cache_dir: Path | None = None,
        save_fn=None,
        load_fn=None,
        X_cand: torch.Tensor | None = None,
        y_cand: torch.Tensor | None = None,
        progress=None,
        executor=None,
        sensitive: np.ndarray | None = None,
        serve_fn=None,
    ):
        from ..executor import LocalExecutor

        self.train_fn, self.save_fn, self.load_fn = train_fn, save_fn, load_fn
        self.executor = executor or LocalExecutor()
        self.n_pop = len(y_pop)
        self.X_cand = X_cand
        self.X = X_pop if X_cand is None else torch.cat([X_pop, X_cand])
        self.y = y_pop if y_cand is None else torch.cat([y_pop, y_cand])
        # the sensitive attribute of every row of self.X (passed on to recipes that use it), or None
        if sensitive is not None and len(sensitive) != len(self.y):
            raise SafeCompressError(f"reference pool: {len(sensitive)} sensitive values for {len(self.y)} records")
        self.sensitive = sensitive
        # serve_fn(model, members, nonmembers, seed) -> the reference as served (an inference-time defence
        # such as MemGuard, fitted on the reference's own IN rows vs some of its OUT rows), or None
        self.serve_fn = serve_fn
        self.n_models, self.seed, self.device = max(1, n_models), seed, device
        self.in_masks = membership_matrix(self.n_models, len(self.y), seed)
        self.cache_dir = cache_dir
        self.models: list[nn.Module] = []
        self.progress = progress
        self._memo = LogitsMemo()
        self._key = hashlib.sha256(
            json.dumps([int(self.n_models), int(seed), int(len(self.y)), float(self.y.float().sum())]).encode()
        ).hexdigest()[:16]

    def population_membership(self, k: int) -> np.ndarray:
        return self.in_masks[k, : self.n_pop]

    def query_membership(self, X: torch.Tensor) -> np.ndarray:
        """(n_models, len(X)) membership of queried points in the references: the candidates' rows when
        ``X`` is the candidate tensor the pool was built with (online), otherwise all out (offline)."""
        if self.X_cand is not None and X is self.X_cand:
            return self.in_masks[:, self.n_pop :]
        return np.zeros((self.n_models, len(X)), dtype=bool)

    def _cache_file(self, k: int) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"ref-{self._key}-{k}.safetensors"

    def ensure(self, count: int) -> None:
        """Make sure the first ``count`` reference models exist (train or load them)."""
        if count > self.n_models:
            raise SafeCompressError(
                f"an attack needs {count} reference models but audit.refs is {self.n_models}; raise --refs"
            )
        have: dict[int, nn.Module] = {}
        missing = []
        for k in range(len(self.models), count):
            path = self._cache_file(k)
            if path is not None and path.exists() and self.load_fn is not None:
                try:
                    _verify(path)
                    have[k] = self.load_fn(path).to(self.device)
                    log.info("loaded reference model %d from %s", k, path)
                    continue
                except SafeCompressError as exc:
                    log.warning("cached reference model %s is unusable (%s); retraining it", path, exc)
            missing.append(k)
        if missing:
            log.info("training reference models %s of %d", [k + 1 for k in missing], self.n_models)
            tasks = []
            for k in missing:
                idx = torch.from_numpy(np.flatnonzero(self.in_masks[k]))
                s = None if self.sensitive is None else self.sensitive[idx.numpy()]
                out = None
                if getattr(self.train_fn, "uses_out_rows", False):  # held-out parts of the recipe: OUT rows only
                    o = torch.from_numpy(np.flatnonzero(~self.in_masks[k]))
                    out = (self.X[o], self.y[o], None if self.sensitive is None else self.sensitive[o.numpy()])
                tasks.append(
                    (self.train_fn, self.X[idx], self.y[idx], self.seed * 1000 + k + 1, torch.get_num_threads(), s, out)
                )
            for k, (model, masks) in zip(
                missing, self.executor.map(train_reference, tasks, resources=resources_for(self.device))
            ):
                path = self._cache_file(k)
                if path is not None and self.save_fn is not None:
                    self.save_fn(model, masks, path)
                    atomic_write_text(_checksum_file(path), sha256_file(path) + "\n")
                have[k] = model.to(self.device)
        for k in range(len(self.models), count):
            self.models.append(self._served(k, have[k].eval()))
            if self.progress is not None:
                self.progress(k + 1, self.n_models)

    def _served(self, k: int, model: nn.Module) -> nn.Module:
        if self.serve_fn is None:
            return model
        ins, outs = np.flatnonzero(self.in_masks[k]), np.flatnonzero(~self.in_masks[k])
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, k, 0x5E]))
        outs = np.sort(rng.permutation(outs)[: max(10, len(outs) // 2)])
        i, o = torch.from_numpy(ins), torch.from_numpy(outs)
        return self.serve_fn(model, (self.X[i], self.y[i]), (self.X[o], self.y[o]), self.seed * 1000 + k + 1)

    def logits(self, k: int, X: torch.Tensor) -> torch.Tensor:
        """Logits of reference model ``k`` on ``X`` (memoised per tensor)."""
        self.ensure(k + 1)
        model = self.models[k]

        @torch.no_grad()
        def compute(X: torch.Tensor) -> torch.Tensor:
            return torch.cat([model(X[i : i + 1024].to(self.device)).float().cpu() for i in range(0, len(X), 1024)])

        return self._memo.logits(model, X, compute)
