"""One-line summaries of the audit's attacks beyond membership, shared by the CLI tables, report.html and
the benchmarks: one line per registered attack of another family, written by the attack's own
``summarize`` from its report.json entry ("not run" when the audit has none)."""

from __future__ import annotations

from typing import Any, Mapping

from .schema import AuditReport


def lines(audit: AuditReport | Mapping[str, Any] | None) -> dict[str, str]:
    from ..attacks import ATTACKS

    entries = {} if audit is None else AuditReport.coerce(audit).model_dump(exclude_none=True)
    out: dict[str, str] = {}
    for name, cls in ATTACKS.items():
        if cls.family == "membership":
            continue
        label = cls.title or cls.family
        label = label if label not in out else f"{label} ({name})"
        entry = entries.get(name)
        out[label] = cls.summarize(entry) if isinstance(entry, dict) else "not run"
    return out
