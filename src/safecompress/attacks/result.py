"""What an evaluated attack returns: the same shape for every family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class AttackResult:
    """``metrics`` go to report.json under the attack's name (membership: ``audit.attacks``; other
    families: ``audit.<name>``); in the loop they hold ``auc``, ``advantage`` and ``tpr`` (None where the
    family has no membership scores). ``scores``: one membership score per query (higher = more likely a
    member) where the family has them. ``details``: what the audit adds beside the metrics (e.g. LiRA's
    mode). ``summary``: one line for logs, the CLI and report.html."""

    metrics: dict[str, Any]
    scores: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
