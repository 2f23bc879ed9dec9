"""Layer-wise density allocation: how many weights each layer keeps at a global target density.

``uniform``: every layer at the target density. ``erk`` (Erdős–Rényi-Kernel, Evci et al. 2020):
layer density proportional to sum(shape) / prod(shape), so small layers stay denser; layers that
would exceed density 1 are made dense and the rest rescaled until none does. Counts are integers
that sum to exactly round(density × total) (no Bernoulli drift).
"""

from __future__ import annotations

import math

from ..errors import ConfigError
from ..registry import Registry

Shapes = dict[str, tuple[int, ...]]
ALLOCATIONS: Registry = Registry("density distribution")


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


@ALLOCATIONS.register("uniform")
def uniform_raw(shapes: Shapes) -> dict[str, float]:
    return {n: 1.0 for n in shapes}


@ALLOCATIONS.register("erk")
def erk_raw(shapes: Shapes) -> dict[str, float]:
    return {n: sum(s) / _numel(s) for n, s in shapes.items()}


def layer_counts(
    shapes: Shapes,
    density: float,
    distribution: str = "erk",
    dense_layers: tuple[str, ...] = (),
) -> dict[str, int]:
    """Active-weight count per layer; ``dense_layers`` are kept fully dense (they count toward the total)."""
    if not 0 < density <= 1:
        raise ConfigError(f"sparse.density must lie in (0, 1], got {density}")
    raw = ALLOCATIONS.get(distribution)(shapes)
    sizes = {n: _numel(s) for n, s in shapes.items()}
    total = sum(sizes.values())
    budget = round(density * total)
    dense = set(dense_layers)
    if sum(sizes[n] for n in dense) > budget:
        raise ConfigError(
            f"keeping {sorted(dense)} dense needs {sum(sizes[n] for n in dense)} weights, more than the "
            f"{budget} allowed at density {density}; raise sparse.density or set sparse.dense_first_last=false"
        )
    # find the scale eps with density_l = eps * raw_l, making layers dense while they would exceed 1
    while True:
        free = [n for n in shapes if n not in dense]
        remaining = budget - sum(sizes[n] for n in dense)
        weight = sum(raw[n] * sizes[n] for n in free)
        eps = remaining / weight if weight > 0 else 0.0
        over = [n for n in free if eps * raw[n] >= 1.0]
        if not over:
            break
        dense.update(over)
    exact = {n: float(sizes[n]) if n in dense else eps * raw[n] * sizes[n] for n in shapes}
    counts = {n: min(sizes[n], int(math.floor(v))) for n, v in exact.items()}
    short = budget - sum(counts.values())
    # hand out the rounding remainder to the largest fractional parts that still have room
    order = sorted(shapes, key=lambda n: exact[n] - math.floor(exact[n]), reverse=True)
    while short > 0:
        progressed = False
        for n in order:
            if short and counts[n] < sizes[n]:
                counts[n] += 1
                short -= 1
                progressed = True
        if not progressed:
            break
    return counts
