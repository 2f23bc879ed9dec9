"""The headline of a run: one list of rows read from ``report.json``, rendered by the CLI summary table and
by ``report.html`` alike (so the two never disagree about what a run's numbers are).

A row has a label, the figure as plain text, an optional note (secondary detail: the attack that reached
it, a p-value, a verdict) and, for a figure the data cannot resolve (a TPR at an FPR below 10 / the number
of non-members), the reason instead of the figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import beyond


@dataclass(frozen=True)
class Row:
    label: str
    text: str
    note: str = ""
    unresolved: str | None = None  # why the figure is not shown (the text is then "not resolved")

    def plain(self) -> str:
        """One line for a terminal."""
        if self.unresolved is not None:
            return "not resolved (too few non-members; report.html says why)"
        return f"{self.text} ({self.note})" if self.note else self.text


def _ci(value: float, ci: list[float] | None) -> str:
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def headline(rep: dict[str, Any]) -> list[Row]:
    """The headline rows of one run's report, in display order."""
    comp = rep["compression"]
    rows = [
        Row("test accuracy", f"{rep['task']['accuracy']:.4f}"),
        Row("train accuracy", f"{rep['task']['train_accuracy']:.4f}"),
        Row("density", f"{comp['density']:.4f}"),
        Row("file size", f"{comp['file_bytes'] / 1024:,.0f} KB", f"{comp['ratio']:.1f}× smaller than dense"),
    ]
    audit = rep.get("audit")
    if audit:
        rows += _audit_rows(rep, audit)
    else:
        rows.append(Row("privacy audit", "not run", "audit.enabled=false"))
    timing = rep["timing"]
    rows.append(Row("train time", f"{timing['train_s']:.1f} s"))
    if "overhead_x" in timing:
        rows.append(Row("method overhead vs plain sparse training", f"{timing['overhead_x']:.2f}×"))
    base = rep.get("baseline")
    base_train = ((base or {}).get("timing") or {}).get("train_s") if isinstance(base, dict) else None
    if base_train:  # measured against the baseline run itself, not only the method's own bookkeeping
        rows.append(
            Row(
                f"train time vs {base['method']}",
                f"{timing['train_s'] / base_train:.2f}×",
                f"{timing['train_s']:.1f} s vs {base_train:.1f} s, same recipe",
            )
        )
    if "audit_s" in timing:
        rows.append(Row("audit time", f"{timing['audit_s']:.0f} s"))
    return rows


def _audit_rows(rep: dict[str, Any], audit: dict[str, Any]) -> list[Row]:
    worst = audit["worst"]
    strongest = audit["attacks"][worst["attack"]]
    rows = [
        Row("strongest attack", worst["attack"]),
        Row("its AUC [95% CI]", _ci(strongest["auc"], strongest.get("auc_ci"))),
        Row("its advantage [95% CI]", _ci(strongest["advantage"], strongest.get("advantage_ci"))),
        Row("its p-value (AUC > 0.5)", f"{strongest['auc_p']:.2g}" if "auc_p" in strongest else "—"),
    ]
    chance = worst.get("chance")
    if chance:
        rows.append(
            Row(
                "leaks at all? (vs chance of max over attacks)",
                "yes" if chance["p_value"] < 0.05 else "not detectably",
                f"max AUC {chance['observed_max_auc']:.3f} vs chance {chance['chance_max_auc']:.3f} of "
                f"{chance['attacks']} attacks, the 95th pct. under permuted labels; p={chance['p_value']:.3f}",
            )
        )
    notes = audit.get("resolution", {})
    for fpr in ("0.01", "0.001"):
        value = worst["max_tpr_at_fpr"][fpr]
        label = f"best TPR @ {float(fpr):.1%} FPR"
        if value is None:
            rows.append(Row(label, "not resolved", unresolved=notes.get(fpr) or "too few non-members"))
        else:
            rows.append(Row(label, f"{value:.4f}", worst["max_tpr_attack"][fpr] or ""))
    can = audit.get("canaries")
    if can:
        cw = can["worst"]
        tpr, att = cw["tpr_at_lowest_fpr"]
        rows.append(
            Row(
                f"canaries ({can['n_members']} in, {can['n_nonmembers']} out): strongest AUC",
                f"{cw['auc']:.3f}",
                f"{cw['attack']}; p={cw['auc_p']:.2g}; best TPR at "
                f"{10 / can['n_nonmembers']:.1%} FPR {tpr:.3f} ({att})",
            )
        )
    rows.append(
        Row(
            "audit records",
            f"{audit.get('n_members', '?')} members, {audit.get('n_nonmembers', '?')} non-members",
            f"{audit.get('references', '?')} reference models",
        )
    )
    baseline = rep.get("baseline")
    comparison = baseline.get("comparison") if isinstance(baseline, dict) else None
    if comparison:
        st = comparison["strongest"]
        rows.append(
            Row(
                f"vs {baseline['method']}: Δ strongest AUC [95% CI]",
                f"{st['delta_auc']:+.3f} [{st['delta_auc_ci'][0]:+.3f}, {st['delta_auc_ci'][1]:+.3f}]",
                f"{st['auc_verdict']}; paired bootstrap over audit records",
            )
        )
    for label, line in beyond.lines(audit).items():
        rows.append(Row(label, line))
    return rows
