"""Synthetic stand-ins for the binary tabular datasets Purchase-100 and Texas-100.

Both are clearly labelled synthetic and generated on demand from ``ctx.synth_seed`` with
``np.random.default_rng`` only; the result is cached (bit-packed) under
``<cache_dir>/synthetic/``. A cache file that fails to load or does not match is regenerated.

Records are drawn the same way for both: each record mixes a few sparse *propensity profiles*
(rows of rates over the binary features), is scaled by a personal activity level, and every
feature is an independent Bernoulli draw with probability ``1 - exp(-activity * mix @ rates)``.

* ``purchase100-synth`` follows the original Purchase-100 recipe (Shokri et al. 2017): shoppers
  buy from 600 items according to a few latent tastes; labels are k-means clusters (100).
* ``texas100-synth`` imitates Texas-100: 6169 sparse binary patient attributes/procedures and 100
  main-procedure labels. Each procedure has its own profile inside a clinical area that shares a
  broad profile; records also carry evidence of sibling procedures, so the label is only partly
  predictable (a standard MLP reaches roughly 50-65% test accuracy while fitting its training set).
"""

from __future__ import annotations

import numpy as np

from .base import register_dataset
from .synthetic import BadCache, SyntheticSource


class _BinaryTableSource(SyntheticSource):
    """Binary tables are stored bit-packed (8 features per byte)."""

    def encode(self, X: np.ndarray) -> np.ndarray:
        return np.packbits(X, axis=1)

    def decode(self, stored: np.ndarray, n: int) -> np.ndarray:
        d = int(self.shape[0]) if self.shape else 0
        if stored.dtype != np.uint8 or stored.ndim != 2 or stored.shape[0] != n or stored.shape[1] != (d + 7) // 8:
            raise BadCache(f"packed features of shape {stored.shape}, dtype {stored.dtype}")
        return np.unpackbits(stored, axis=1, count=d)


# --------------------------------------------------------------------------- shared steps


def _profiles(rng: np.random.Generator, k: int, d: int, active: int, a: float, b: float) -> np.ndarray:
    """``k`` sparse rate profiles over ``d`` features: ``active`` random features each, rates ~ Beta(a, b)."""
    rates = np.zeros((k, d), dtype=np.float32)
    for row in rates:
        idx = rng.choice(d, size=active, replace=False)
        row[idx] = rng.beta(a, b, size=active)
    return rates


def _sample_records(
    rng: np.random.Generator, mix: np.ndarray, rates: np.ndarray, activity: np.ndarray, chunk: int = 2048
) -> np.ndarray:
    """Binary records: feature j of record i is 1 with probability ``1 - exp(-activity_i * (mix @ rates)_ij)``."""
    n, d = mix.shape[0], rates.shape[1]
    out = np.empty((n, d), dtype=np.uint8)
    for s in range(0, n, chunk):
        lam = (mix[s : s + chunk] @ rates) * activity[s : s + chunk, None]
        out[s : s + chunk] = rng.random(lam.shape, dtype=np.float32) < -np.expm1(-lam)
    return out


# --------------------------------------------------------------------------- Purchase-100

PURCHASE_ITEMS = 600
PURCHASE_TASTES = 40  # latent taste profiles
PURCHASE_TASTE_ITEMS = 150  # items a taste cares about
PURCHASE_TASTES_PER_SHOPPER = 2


def generate_purchase(n: int, rng: np.random.Generator, n_classes: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Shoppers mixing a few latent tastes buy from 600 items; labels = k-means clusters."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    tastes = _profiles(rng, PURCHASE_TASTES, PURCHASE_ITEMS, PURCHASE_TASTE_ITEMS, 1.0, 1.5)
    background = np.full((1, PURCHASE_ITEMS), 0.02, dtype=np.float32)  # impulse buys
    rates = np.vstack([tastes, background])
    mix = np.zeros((n, PURCHASE_TASTES + 1), dtype=np.float32)
    picks = np.argsort(rng.random((n, PURCHASE_TASTES)), axis=1)[:, :PURCHASE_TASTES_PER_SHOPPER]
    weights = rng.dirichlet(np.ones(PURCHASE_TASTES_PER_SHOPPER), size=n).astype(np.float32)
    np.put_along_axis(mix, picks, weights, axis=1)
    mix[:, -1] = 1.0
    activity = rng.lognormal(0.0, 0.2, size=n).astype(np.float32)
    X = _sample_records(rng, mix, rates, activity)
    km = KMeans(n_clusters=n_classes, n_init=1, max_iter=100, random_state=int(rng.integers(2**31 - 1)))
    with threadpool_limits(limits=1):  # one thread: float sums in a fixed order, so labels are reproducible
        y = km.fit_predict(X.astype(np.float32)).astype(np.int64)
    return X, y


@register_dataset("purchase100-synth")
class Purchase100Synth(_BinaryTableSource):
    kind = "tabular"
    shape = (PURCHASE_ITEMS,)
    n_classes = 100
    default_samples = 20000
    recipe_version = 1
    recipe = (
        f"{PURCHASE_ITEMS} binary purchase indicators of shoppers mixing {PURCHASE_TASTES_PER_SHOPPER} of "
        f"{PURCHASE_TASTES} latent tastes, labels = k-means(100) clusters"
    )
    description = (
        "SYNTHETIC stand-in for Purchase-100 rebuilt by its recipe: 600 binary purchase indicators, "
        "100 k-means classes (not the real Acquire Valued Shoppers data)"
    )

    def generate(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return generate_purchase(n, rng, int(self.n_classes or 100))


# --------------------------------------------------------------------------- Texas-100

TEXAS_FEATURES = 6169
TEXAS_AREAS = 20  # clinical areas; the procedures of one area share a broad profile
TEXAS_AREA_FEATURES = 300
TEXAS_PROC_FEATURES = 40
TEXAS_OWN_WEIGHT = 0.5  # share of a record's procedure evidence that points to its own label


def generate_texas(n: int, rng: np.random.Generator, n_classes: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Patients with a main procedure inside a clinical area; features mix background, area and procedures."""
    area_of = np.arange(n_classes) % TEXAS_AREAS
    freq = 1.0 / (np.arange(n_classes) + 15.0) ** 0.8  # a few frequent procedures, a long tail
    y = rng.choice(n_classes, size=n, p=freq / freq.sum()).astype(np.int64)

    background = (rng.beta(0.4, 30.0, size=(1, TEXAS_FEATURES))).astype(np.float32)
    areas = _profiles(rng, TEXAS_AREAS, TEXAS_FEATURES, TEXAS_AREA_FEATURES, 0.8, 4.0)
    procs = _profiles(rng, n_classes, TEXAS_FEATURES, TEXAS_PROC_FEATURES, 1.5, 3.0)
    rates = np.vstack([background, areas, procs])

    mix = np.zeros((n, rates.shape[0]), dtype=np.float32)
    rows = np.arange(n)
    mix[:, 0] = 1.0
    mix[rows, 1 + area_of[y]] = 1.0
    # Procedure evidence: part own label, the rest spread over random procedures of the same area.
    siblings = (area_of[y][:, None] + TEXAS_AREAS * rng.integers(0, n_classes // TEXAS_AREAS, size=(n, 2))) % n_classes
    share = rng.dirichlet(np.ones(2), size=n).astype(np.float32) * (1.0 - TEXAS_OWN_WEIGHT)
    for j in range(2):
        np.add.at(mix, (rows, 1 + TEXAS_AREAS + siblings[:, j]), share[:, j])
    mix[rows, 1 + TEXAS_AREAS + y] += TEXAS_OWN_WEIGHT
    activity = rng.lognormal(0.0, 0.4, size=n).astype(np.float32)
    return _sample_records(rng, mix, rates, activity), y


@register_dataset("texas100-synth")
class Texas100Synth(_BinaryTableSource):
    kind = "tabular"
    shape = (TEXAS_FEATURES,)
    n_classes = 100
    default_samples = 20000
    recipe_version = 1
    recipe = (
        f"{TEXAS_FEATURES} sparse binary patient features from background, {TEXAS_AREAS} clinical-area and "
        "100 procedure profiles with sibling-procedure confusion, labels = main procedure"
    )
    description = (
        "SYNTHETIC stand-in for Texas-100: 6169 binary patient attributes/procedures, 100 main-procedure "
        "classes, only partly predictable (not the real Texas hospital discharge data)"
    )

    def generate(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return generate_texas(n, rng, int(self.n_classes or 100))
