"""The smallest report.json the typed schema (``safecompress.report.schema.RunReport``) accepts: the fields every
report names, with small made-up numbers, plus the sections a test adds."""

from __future__ import annotations

from typing import Any


def minimal_report(**sections: Any) -> dict[str, Any]:
    return {
        "method": "rigl",
        "dataset": "income",
        "seed": 0,
        "version": "0.1.0",
        "model": {"name": "mlp", "parameters": 1},
        "task": {"accuracy": 0.7, "train_accuracy": 0.9},
        "compression": {"density": 0.05, "file_bytes": 10},
        "timing": {"train_s": 1.0, "total_s": 2.0},
        **sections,
    }
