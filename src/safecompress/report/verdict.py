"""One plain sentence of what a run won and lost against its baseline, with its significance."""

from __future__ import annotations

from typing import Any


def won_and_lost(report: dict[str, Any]) -> str | None:
    """E.g. "safecompress vs rigl: 1.2 points less accurate (0.632 vs 0.644); strongest attack AUC 0.61 vs
    0.77, a difference of −0.16 [−0.19, −0.14] (paired bootstrap): less leaky. rigl itself leaks (p=0.001)."
    None when the run has no audited baseline."""
    base = report.get("baseline")
    if not isinstance(base, dict) or "comparison" not in base or "audit" not in report:
        return None
    me, other = report["method"], base["method"]
    acc, acc_b = report["task"]["accuracy"], base["task"]["accuracy"]
    d = (acc - acc_b) * 100
    acc_part = (
        f"{abs(d):.1f} points {'more' if d > 0 else 'less'} accurate ({acc:.3f} vs {acc_b:.3f})"
        if abs(d) >= 0.05
        else f"equally accurate ({acc:.3f})"
    )
    st = base["comparison"]["strongest"]
    auc, auc_b = report["audit"]["worst"]["auc"], base["audit_worst"]["auc"]
    lo, hi = st["delta_auc_ci"]
    chance = (base.get("audit_worst") or {}).get("chance") or {}
    p = chance.get("p_value")
    leaks = (
        ""
        if p is None
        else f" {other} itself {'leaks' if p < 0.05 else 'shows no detectable leak'} "
        f"(strongest of {chance['attacks']} attacks vs their chance level, p={p:.3f})."
    )
    return (
        f"{me} vs {other}: {acc_part}; strongest attack AUC {auc:.3f} vs {auc_b:.3f}, a difference of "
        f"{st['delta_auc']:+.3f} [{lo:+.3f}, {hi:+.3f}] (95 % paired bootstrap over the audit records): "
        f"{st['auc_verdict']}.{leaks}"
    )
