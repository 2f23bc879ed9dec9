"""SafeCompress (Zhu et al., TSE 2024 / ASE 2022): test-driven sparse training, in one place.

- :mod:`.method` — the registered ``safecompress`` method (sparse training with the loop as its engine);
- :mod:`.rigl_select` — the ablation with the loop's privilege and one ordinary RigL candidate;
- :mod:`.engine` — the loop: every ΔT steps fit the simulators, make and test candidates, keep one;
- :mod:`.candidates` — making and testing one candidate (an executor task);
- :mod:`.simulate` — the simulated attackers the loop fits and measures on probe data;
- :mod:`.objectives` — the bi-objective rules that choose among candidates;
- :mod:`.attribute_adversary` — the adversarial attribute head (``safecompress.attribute_adversary``).
"""

from __future__ import annotations

from ...plugins import import_package

import_package(__name__, __path__)  # registers safecompress and rigl_select
