"""Synthetic stand-ins for CIFAR-10 and CIFAR-100 (3x32x32 colour images, NCHW in [0, 1]).

Every class has a shape type and colour; each of its *modes* (prototypes) puts that shape, at its
own place, size and angle, on its own smooth random background. A sample is a prototype shifted by
up to a few pixels, maybe mirrored, faded into a class-free random background by a random
visibility, colour-jittered per channel, overlaid with a smooth texture and pixel noise, and
quantised to 8 bits like real CIFAR. Shape types are shared between classes and faint samples are
ambiguous, so a small CNN learns the classes well but not perfectly and overfits a few thousand
training images (membership leakage). CIFAR-10 has many modes per class (varied classes, much
data each), CIFAR-100 few (little data per class).

Generation is seeded by ``ctx.synth_seed`` (``np.random.default_rng`` only); results are cached
as uint8 under ``<cache_dir>/synthetic/`` by :class:`~.synth_shoppers.SyntheticSource`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .base import register_dataset
from .synthetic import SyntheticSource

SIZE = 32
MAX_SHIFT = 3  # pixels, each direction
SHAPES = ("disc", "ring", "square", "stripes", "edge")
TEXTURE_FREQS = 8  # per-sample texture uses cosines up to this frequency
TEXTURE_AMP = 0.12
NOISE_STD = 0.06
GAIN_STD = 0.15  # per-channel multiplicative colour jitter (log scale)
OFFSET_STD = 0.06  # per-channel additive colour jitter
VISIBILITY = (0.55, 1.0)  # weight of the prototype against a class-free random background, per sample
CHUNK = 2000


def _cosine_basis(freqs: int, size: int = SIZE) -> np.ndarray:
    """(freqs, size) matrix of 1-D DCT-II cosines."""
    x = (np.arange(size) + 0.5) / size
    return np.cos(np.pi * np.arange(freqs)[:, None] * x[None, :]).astype(np.float32)


def _smooth_fields(rng: np.random.Generator, n: int, freqs: int, amp: float) -> np.ndarray:
    """``n`` random smooth 3-channel fields (n, 3, SIZE, SIZE) with 1/f-decaying cosine coefficients."""
    basis = _cosine_basis(freqs)
    f = np.arange(freqs)
    decay = (1.0 / (1.0 + f[:, None] + f[None, :])).astype(np.float32)
    coef = rng.standard_normal((n, 3, freqs, freqs), dtype=np.float32) * decay * amp
    return np.einsum("ncuv,ux,vy->ncxy", coef, basis, basis, optimize=True)


def _shape_mask(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A soft (SIZE, SIZE) mask in [0, 1] of one shape with random position, size and angle."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    cy, cx = rng.uniform(0.3, 0.7, size=2)
    r = rng.uniform(0.15, 0.3)
    angle = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    dist = np.sqrt(u**2 + v**2)
    if kind == "disc":
        signed = r - dist
    elif kind == "ring":
        signed = 0.06 - np.abs(dist - r)
    elif kind == "square":
        signed = r - np.maximum(np.abs(u), np.abs(v))
    elif kind == "stripes":
        signed = np.sin(u * rng.uniform(12, 24)) * 0.05
    else:  # edge: a half-plane
        signed = u
    return 1.0 / (1.0 + np.exp(-signed * 40.0))


def _prototypes(rng: np.random.Generator, n_classes: int, modes: int) -> np.ndarray:
    """(n_classes * modes, 3, SIZE, SIZE) prototype images in [0, 1]."""
    protos = 0.5 + _smooth_fields(rng, n_classes * modes, 4, 0.3)
    for c in range(n_classes):
        kind = SHAPES[rng.integers(len(SHAPES))]
        colour = rng.uniform(0, 1, size=(3, 1, 1)).astype(np.float32)
        for m in range(modes):
            mask = _shape_mask(rng, kind)
            p = protos[c * modes + m]
            p[:] = p * (1 - 0.85 * mask) + 0.85 * mask * colour
    return np.clip(protos, 0.0, 1.0)


def _place(protos: np.ndarray, which: np.ndarray, dy: np.ndarray, dx: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Crop every chosen prototype (edge-padded) at offset (dy, dx), mirrored where ``flip``."""
    pad = np.pad(protos, ((0, 0), (0, 0), (MAX_SHIFT, MAX_SHIFT), (MAX_SHIFT, MAX_SHIFT)), mode="edge")
    ar = np.arange(SIZE)
    rows = dy[:, None] + ar
    cols = np.where(flip[:, None], dx[:, None] + SIZE - 1 - ar, dx[:, None] + ar)
    return pad[
        which[:, None, None, None], np.arange(3)[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]
    ]


def generate_images(n: int, rng: np.random.Generator, n_classes: int, modes: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images (n, 3, SIZE, SIZE), balanced labels over ``n_classes`` with ``modes`` prototypes each."""
    protos = _prototypes(rng, n_classes, modes)
    y = rng.permutation(np.arange(n) % n_classes).astype(np.int64)
    X = np.empty((n, 3, SIZE, SIZE), dtype=np.uint8)
    for s in range(0, n, CHUNK):
        yc = y[s : s + CHUNK]
        k = len(yc)
        which = yc * modes + rng.integers(modes, size=k)
        dy, dx = rng.integers(0, 2 * MAX_SHIFT + 1, size=(2, k))
        img = _place(protos, which, dy, dx, rng.random(k) < 0.5)
        vis = rng.uniform(*VISIBILITY, size=(k, 1, 1, 1)).astype(np.float32)
        img = vis * img + (1.0 - vis) * (0.5 + _smooth_fields(rng, k, 4, 0.3))
        gain = np.exp(rng.normal(0.0, GAIN_STD, size=(k, 3, 1, 1))).astype(np.float32)
        offset = rng.normal(0.0, OFFSET_STD, size=(k, 3, 1, 1)).astype(np.float32)
        img = img * gain + offset + _smooth_fields(rng, k, TEXTURE_FREQS, TEXTURE_AMP)
        img += rng.normal(0.0, NOISE_STD, size=img.shape).astype(np.float32)
        X[s : s + CHUNK] = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    return X, y


class _SynthImages(SyntheticSource):
    """CIFAR-like generated images, cached as uint8."""

    kind = "image"
    hflip = True
    shape = (3, SIZE, SIZE)
    recipe_version = 1
    modes: ClassVar[int] = 1  # prototypes per class

    def generate(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return generate_images(n, rng, int(self.n_classes or 0), self.modes)

    def to_float(self, X: np.ndarray) -> np.ndarray:
        return X.astype(np.float32) / np.float32(255.0)


def _recipe(k: int, modes: int) -> str:
    return (
        f"3x32x32 images of {k} classes x {modes} prototypes (shape on smooth background) with "
        f"shift<={MAX_SHIFT}px, flips, colour jitter, texture and noise"
    )


@register_dataset("cifar10-synth")
class Cifar10Synth(_SynthImages):
    n_classes = 10
    default_samples = 12000
    modes = 10  # much data per class: more varied classes
    recipe = _recipe(10, 10)
    description = "SYNTHETIC CIFAR-10-like images: 3x32x32, 10 classes of generated shapes (not real photos)"


@register_dataset("cifar100-synth")
class Cifar100Synth(_SynthImages):
    n_classes = 100
    default_samples = 20000
    modes = 2
    recipe = _recipe(100, 2)
    description = "SYNTHETIC CIFAR-100-like images: 3x32x32, 100 classes of generated shapes (not real photos)"
