"""``cifar10-synth-attr``: the cifar10-synth images with a planted, known sensitive attribute.

Each image gets a binary attribute ``s`` drawn independently of its class (P(s=1) = ½, from its own
seeded stream). Images with ``s = 1`` carry a faint blue tint (+``TINT`` on the blue channel,
about 1.3 standard deviations of the per-channel colour jitter), so a model *can* pick the attribute
up without needing it for its task. Because ``s`` is independent of the label, an attribute-inference
attacker that beats 50 % from the model's outputs or embedding measures exactly what the model
reveals beyond its task — the leakage is known by construction.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .base import ArrayDataset, DataContext, register_dataset
from .synth_images import Cifar10Synth

TINT = np.float32(20 / 255)


def plant_attribute(X: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images with the tint planted where s = 1, s as int64), s ~ Bernoulli(½) from ``seed``."""
    s = (np.random.default_rng(np.random.SeedSequence([seed, 0x5E])).random(len(X)) < 0.5).astype(np.int64)
    X = X.copy()
    X[:, 2] = np.clip(X[:, 2] + TINT * s[:, None, None].astype(np.float32), 0.0, 1.0)
    return X, s


@register_dataset("cifar10-synth-attr")
class Cifar10SynthAttr(Cifar10Synth):
    description = (
        "SYNTHETIC CIFAR-10-like images with a planted binary sensitive attribute (a faint blue "
        "tint, independent of the class) for attribute-inference audits"
    )

    def load(self, ctx: DataContext) -> ArrayDataset:
        ds = super().load(ctx)
        X, s = plant_attribute(ds.X, int(ctx.synth_seed))
        return dataclasses.replace(
            ds,
            X=X,
            sensitive=s,
            sensitive_names=["no_tint", "tint"],
            source=ds.source + "; sensitive attribute: planted blue tint, P=1/2, independent of class",
        )
