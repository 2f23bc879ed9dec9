"""One-line summaries of the audit's attacks beyond membership (attribute inference, model inversion),
shared by the CLI tables, report.html and the benchmarks."""

from __future__ import annotations

from typing import Any

BEYOND = ("attribute", "inversion")


def _ci(ci) -> str:
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def attribute_line(audit: dict[str, Any] | None) -> str:
    a = (audit or {}).get("attribute")
    if a is None:
        return "not run"
    if "skipped" in a:
        return "n/a: " + a["skipped"].split(";")[0]
    s, b = a["strongest"], a["baselines"]
    base = max(v for k, v in b.items() if not k.endswith("_auc"))
    return (
        f"AUC {s['auc']:.3f}{_ci(s['auc_ci'])} ({s['view']}); accuracy {s['accuracy']:.3f} vs "
        f"{base:.3f} without the model"
    )


def inversion_line(audit: dict[str, Any] | None) -> str:
    a = (audit or {}).get("inversion")
    if a is None:
        return "not run"
    if "skipped" in a:
        return "n/a: " + a["skipped"]
    rate = a.get("member_closer_rate")
    return (
        f"AUC {a['auc']:.3f}{_ci(a.get('auc_ci'))}; member-closer rate {rate:.2f}"
        if rate is not None
        else f"AUC {a['auc']:.3f}{_ci(a.get('auc_ci'))}"
    )


def lines(audit: dict[str, Any] | None) -> dict[str, str]:
    return {"attribute inference": attribute_line(audit), "model inversion": inversion_line(audit)}
