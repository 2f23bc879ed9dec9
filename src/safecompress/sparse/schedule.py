"""When and how much the sparse topology changes: every ΔT steps, a decaying update fraction, until T_end."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class UpdateSchedule:
    every: int  # ΔT: optimizer steps between topology updates
    fraction: float  # initial fraction of each layer's active weights replaced per update
    stop: int  # T_end: no update at or after this step
    decay: str = "cosine"  # cosine | linear | constant

    def is_update_step(self, step: int) -> bool:
        """``step`` = optimizer steps taken so far (the update happens after that many steps)."""
        return self.every > 0 and step > 0 and step % self.every == 0 and step < self.stop

    def fraction_at(self, step: int) -> float:
        if self.stop <= 0:
            return 0.0
        progress = min(step / self.stop, 1.0)
        if self.decay == "cosine":
            return self.fraction * 0.5 * (1 + math.cos(math.pi * progress))
        if self.decay == "linear":
            return self.fraction * (1 - progress)
        return self.fraction


def gmp_density(step: int, start: int, end: int, final: float, initial: float = 1.0) -> float:
    """Gradual magnitude pruning (Zhu & Gupta 2017): cubic decay from ``initial`` to ``final`` density."""
    if step <= start:
        return initial
    if step >= end:
        return final
    progress = (step - start) / max(1, end - start)
    return final + (initial - final) * (1 - progress) ** 3
