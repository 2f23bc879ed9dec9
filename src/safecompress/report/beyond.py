"""One-line summaries of the audit's attacks beyond membership (attribute inference, model inversion),
shared by the CLI tables, report.html and the benchmarks."""

from __future__ import annotations

from typing import Any, Mapping

from .schema import AuditReport

BEYOND = ("attribute", "inversion")


def _ci(ci) -> str:
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _audit(audit: AuditReport | Mapping[str, Any] | None) -> AuditReport | None:
    return None if audit is None else AuditReport.coerce(audit)


def attribute_line(audit: AuditReport | Mapping[str, Any] | None) -> str:
    audit = _audit(audit)
    a = audit.attribute if audit else None
    if a is None:
        return "not run"
    if a.skipped is not None:
        return "n/a: " + a.skipped.split(";")[0]
    s = a.strongest
    base = max(v for k, v in a.baselines.items() if not k.endswith("_auc"))
    return f"AUC {s.auc:.3f}{_ci(s.auc_ci)} ({s.view}); accuracy {s.accuracy:.3f} vs {base:.3f} without the model"


def inversion_line(audit: AuditReport | Mapping[str, Any] | None) -> str:
    audit = _audit(audit)
    a = audit.inversion if audit else None
    if a is None:
        return "not run"
    if a.skipped is not None:
        return "n/a: " + a.skipped
    rate = a.member_closer_rate
    return (
        f"AUC {a.auc:.3f}{_ci(a.auc_ci)}; member-closer rate {rate:.2f}"
        if rate is not None
        else f"AUC {a.auc:.3f}{_ci(a.auc_ci)}"
    )


def lines(audit: AuditReport | Mapping[str, Any] | None) -> dict[str, str]:
    audit = _audit(audit)
    return {"attribute inference": attribute_line(audit), "model inversion": inversion_line(audit)}
