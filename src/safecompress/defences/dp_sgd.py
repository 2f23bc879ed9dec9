"""DP-SGD (Abadi et al., CCS 2016) through Opacus: per-sample gradients, clipped and noised, with the
privacy spent (ε at the configured δ) from Opacus' RDP accountant reported in report.json.

Per-sample gradients come from Opacus' ``GradSampleModule`` hooks on the model's layers. With a
sparse method the masks are applied to every per-sample gradient *before* clipping, so pruned
weights neither use clipping budget nor receive noise that the next mask re-application would have
to undo. Batches are shuffled fixed-size batches; ε is accounted with sampling rate batch/n (the usual
approximation to Poisson sampling). BatchNorm mixes samples and is refused: use ``model.norm=group``.
Gradient-based growth (RigL) then sees only the private, masked gradient — it never peeks at the
non-private dense gradient — so with DP-SGD prefer ``sparse.grow=random`` or a static mask.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import ConfigError
from ..params import NonNegative, Params
from ..sparse.engine import find_engine
from ..train import Callback
from .base import Defence, register_defence


def _engine_masks(trainer) -> dict[str, torch.Tensor]:
    engine = find_engine(trainer)
    return engine.masks if engine is not None else {}


class _DPSGD(Callback):
    def __init__(self, sigma: float, clip: float, delta: float, n_train: int, seed: int, report: dict[str, Any]):
        self.sigma, self.clip, self.delta, self.n_train, self.report = sigma, clip, delta, n_train, report
        self.generator = torch.Generator().manual_seed(seed)
        self.gsm = None
        self.sample_rate = 0.0

    def on_fit_start(self, trainer):
        from opacus.grad_sample import GradSampleModule
        from opacus.validators import ModuleValidator

        errors = ModuleValidator.validate(trainer.model, strict=False)
        if errors:
            raise ConfigError(f"DP-SGD cannot train this model: {errors[0]}; use model.norm=group (or none)")
        for module in trainer.model.modules():  # in-place activations break Opacus' backward hooks
            if getattr(module, "inplace", False):
                module.inplace = False
        # hooks on the model's own layers fill p.grad_sample; trainer.model itself stays unwrapped
        self.gsm = GradSampleModule(trainer.model, batch_first=True, loss_reduction="mean")
        self.sample_rate = min(1.0, trainer.cfg.batch_size / self.n_train)

    def before_step(self, trainer):
        masks = _engine_masks(trainer)
        named = [(n, p) for n, p in trainer.model.named_parameters() if p.requires_grad]
        grads = []
        for name, p in named:
            g = p.grad_sample
            if name in masks:
                g = g * masks[name].to(g.dtype)
            grads.append(g)
        batch = grads[0].shape[0]
        norms = torch.sqrt(sum(g.reshape(batch, -1).pow(2).sum(1) for g in grads))
        factor = (self.clip / (norms + 1e-6)).clamp(max=1.0)
        for (name, p), g in zip(named, grads):
            summed = torch.einsum("b,b...->...", factor, g)
            noise = torch.normal(0.0, self.sigma * self.clip, size=summed.shape, generator=self.generator).to(
                summed.device
            )
            if name in masks:
                noise = noise * masks[name].to(noise.dtype)
            p.grad = (summed + noise) / batch
            p.grad_sample = None

    def on_fit_end(self, trainer):
        from opacus.accountants import RDPAccountant

        acc = RDPAccountant()
        acc.history = [(self.sigma, self.sample_rate, trainer.state.step)]
        eps = acc.get_epsilon(self.delta) if self.sigma > 0 and trainer.state.step else math.inf
        self.report.update(
            {
                "epsilon": eps if math.isfinite(eps) else None,
                "delta": self.delta,
                "steps": trainer.state.step,
                "sample_rate": self.sample_rate,
            }
        )
        if self.gsm is not None:
            self.gsm._close()  # remove the hooks; the model is a plain module again

    def get_state(self):
        return {"generator": self.generator.get_state()}, {}

    def set_state(self, tensors, meta):
        self.generator.set_state(tensors["generator"])


@register_defence("dp_sgd")
class DPSGD(Defence):
    description = "DP-SGD through Opacus: per-sample clipping + Gaussian noise; reports ε at δ"

    class Params(Params):
        noise_multiplier: NonNegative = 1.0
        max_grad_norm: NonNegative = 1.0
        delta: NonNegative = 1e-05

    def check(self):
        if self.params["max_grad_norm"] <= 0:
            raise ConfigError("defence 'dp_sgd': max_grad_norm must be > 0")
        if not 0 < self.params["delta"] < 1:
            raise ConfigError("defence 'dp_sgd': delta must be in (0, 1)")

    def callbacks(self, ctx):
        p = self.params
        return [
            _DPSGD(
                float(p["noise_multiplier"]),
                float(p["max_grad_norm"]),
                float(p["delta"]),
                len(ctx.split["train"]),
                ctx.cfg.seed + 211,
                ctx.defence_report,
            )
        ]
