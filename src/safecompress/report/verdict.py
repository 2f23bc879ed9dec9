"""One plain sentence of what a run won and lost against its baseline, with its significance."""

from __future__ import annotations

from typing import Any, Mapping

from .headline import NOT_COMPARABLE, audited_differently
from .schema import RunReport


def won_and_lost(report: RunReport | Mapping[str, Any], baseline: RunReport | None = None) -> str | None:
    """E.g. "safecompress vs rigl: 1.2 points less accurate (0.632 vs 0.644); strongest attack AUC 0.61 vs
    0.77, a difference of −0.16 [−0.19, −0.14] (paired bootstrap): less leaky. rigl itself leaks (p=0.001)."
    None when the run has no audited baseline. Given the baseline's own report, it ends by saying so when the
    two were audited differently (other attacks or reference models)."""
    report = RunReport.coerce(report)
    base = report.baseline
    if base is None or base.comparison is None or report.audit is None:
        return None
    me, other = report.method, base.method
    acc, acc_b = report.task.accuracy, base.task.accuracy
    d = (acc - acc_b) * 100
    acc_part = (
        f"{abs(d):.1f} points {'more' if d > 0 else 'less'} accurate ({acc:.3f} vs {acc_b:.3f})"
        if abs(d) >= 0.05
        else f"equally accurate ({acc:.3f})"
    )
    st = base.comparison.strongest
    auc, auc_b = report.audit.worst.auc, base.audit_worst.auc
    lo, hi = st.delta_auc_ci
    chance = base.audit_worst.chance
    leaks = (
        ""
        if chance is None
        else f" {other} itself {'leaks' if chance.p_value < 0.05 else 'shows no detectable leak'} "
        f"(strongest of {chance.attacks} attacks vs their chance level, p={chance.p_value:.3f})."
    )
    why = audited_differently(report, baseline)
    return (
        f"{me} vs {other}: {acc_part}; strongest attack AUC {auc:.3f} vs {auc_b:.3f}, a difference of "
        f"{st.delta_auc:+.3f} [{lo:+.3f}, {hi:+.3f}] (95 % paired bootstrap over the audit records): "
        f"{st.auc_verdict}.{leaks}" + (f" Beware, {NOT_COMPARABLE} ({why})." if why else "")
    )
