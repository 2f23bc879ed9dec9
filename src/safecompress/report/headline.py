"""The headline of a run: one list of rows read from ``report.json`` (a :class:`~.schema.RunReport`), rendered
by the CLI summary table and by ``report.html`` alike (so the two never disagree about what a run's numbers are).

A row has a label, the figure as plain text, an optional note (secondary detail: the attack that reached
it, a p-value, a verdict) and, for a figure the data cannot resolve (a TPR at an FPR below 10 / the number
of non-members), the reason instead of the figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from . import beyond
from .schema import AuditReport, Baseline, RunReport


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


def _known(count: int | None) -> str:
    return "?" if count is None else str(count)


def headline(rep: RunReport | Mapping[str, Any]) -> list[Row]:
    """The headline rows of one run's report, in display order (``RunReport.headline`` calls this)."""
    rep = RunReport.coerce(rep)
    comp, timing, base = rep.compression, rep.timing, rep.baseline
    rows = [
        Row("test accuracy", f"{rep.task.accuracy:.4f}"),
        Row("train accuracy", f"{rep.task.train_accuracy:.4f}"),
        Row("density", f"{comp.density:.4f}"),
        Row("file size", f"{comp.file_bytes / 1024:,.0f} KB", f"{comp.ratio:.1f}× smaller than dense"),
    ]
    if rep.audit:
        rows += _audit_rows(rep.audit, base)
    else:
        rows.append(Row("privacy audit", "not run", "audit.enabled=false"))
    rows.append(Row("train time", f"{timing.train_s:.1f} s"))
    if timing.overhead_x is not None:
        rows.append(Row("method overhead vs plain sparse training", f"{timing.overhead_x:.2f}×"))
    base_train = base.timing.train_s if base and base.timing else None
    if base_train:  # measured against the baseline run itself, not only the method's own bookkeeping
        rows.append(
            Row(
                f"train time vs {base.method}",
                f"{timing.train_s / base_train:.2f}×",
                f"{timing.train_s:.1f} s vs {base_train:.1f} s, same recipe",
            )
        )
    if timing.audit_s is not None:
        rows.append(Row("audit time", f"{timing.audit_s:.0f} s"))
    return rows


def _audit_rows(audit: AuditReport, baseline: Baseline | None) -> list[Row]:
    worst, strongest = audit.worst, audit.strongest
    rows = [
        Row("strongest attack", worst.attack),
        Row("its AUC [95% CI]", _ci(strongest.auc, strongest.auc_ci)),
        Row("its advantage [95% CI]", _ci(strongest.advantage, strongest.advantage_ci)),
        Row("its p-value (AUC > 0.5)", f"{strongest.auc_p:.2g}" if strongest.auc_p is not None else "—"),
    ]
    chance = worst.chance
    if chance:
        rows.append(
            Row(
                "leaks at all? (vs chance of max over attacks)",
                "yes" if chance.p_value < 0.05 else "not detectably",
                f"max AUC {chance.observed_max_auc:.3f} vs chance {chance.chance_max_auc:.3f} of "
                f"{chance.attacks} attacks, the 95th pct. under permuted labels; p={chance.p_value:.3f}",
            )
        )
    notes = audit.resolution or {}
    for fpr in ("0.01", "0.001"):
        value = worst.max_tpr_at_fpr[fpr]
        label = f"best TPR @ {float(fpr):.1%} FPR"
        if value is None:
            rows.append(Row(label, "not resolved", unresolved=notes.get(fpr) or "too few non-members"))
        else:
            rows.append(Row(label, f"{value:.4f}", worst.max_tpr_attack[fpr] or ""))
    can = audit.canaries
    if can:
        cw = can.worst
        tpr, att = cw.tpr_at_lowest_fpr
        rows.append(
            Row(
                f"canaries ({can.n_members} in, {can.n_nonmembers} out): strongest AUC",
                f"{cw.auc:.3f}",
                f"{cw.attack}; p={cw.auc_p:.2g}; best TPR at {10 / can.n_nonmembers:.1%} FPR {tpr:.3f} ({att})",
            )
        )
    rows.append(
        Row(
            "audit records",
            f"{_known(audit.n_members)} members, {_known(audit.n_nonmembers)} non-members",
            f"{_known(audit.references)} reference models",
        )
    )
    rows.append(audited_with(audit))
    comparison = baseline.comparison if baseline else None
    if comparison:
        st = comparison.strongest
        lo, hi = st.delta_auc_ci
        rows.append(
            Row(
                f"vs {baseline.method}: Δ strongest AUC [95% CI]",
                f"{st.delta_auc:+.3f} [{lo:+.3f}, {hi:+.3f}]",
                f"{st.auc_verdict}; paired bootstrap over audit records",
            )
        )
    for label, line in beyond.lines(audit).items():
        rows.append(Row(label, line))
    return rows


def audited_with(audit: AuditReport) -> Row:
    """Which attacks and how many reference models the audit's figures rest on; for an audit merged from
    re-audits (``audit.provenance``), which attacks were audited when."""
    names = audit.attack_names
    note = f"{_known(audit.references)} reference models"
    groups: dict[str | None, list[str]] = {}
    for name, origin in (audit.provenance or {}).items():
        groups.setdefault(origin.audited_at, []).append(name)
    if len(groups) > 1:
        note += "; merged: " + "; ".join(
            f"{', '.join(group)} " + (f"audited {_when(when)}" if when else "from the earlier audit")
            for when, group in sorted(groups.items(), key=lambda kv: kv[0] or "")
        )
    count = f"{len(names)} attack{'s' if len(names) != 1 else ''}"
    return Row("audited with", f"{', '.join(names)} ({count})", note)


def _when(iso: str) -> str:
    """A provenance time (ISO 8601) to the minute, in UTC."""
    try:
        return f"{datetime.fromisoformat(iso).astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
    except ValueError:
        return iso


NOT_COMPARABLE = "not comparable: audited differently"


def audited_differently(rep: RunReport, other: RunReport | None) -> str | None:
    """How the audits of ``rep`` and ``other`` (its baseline) differ in what their figures rest on: the
    attacks, the number of reference models. None when they were audited alike, or either was not audited."""
    a, b = rep.audit, other.audit if other is not None else None
    if a is None or b is None:
        return None
    parts = []
    names_a, names_b = a.attack_names, b.attack_names
    only = [
        (rep.method, [n for n in names_a if n not in names_b]),
        (other.method, [n for n in names_b if n not in names_a]),
    ]
    if any(names for _, names in only):
        parts.append("attacks only in " + " and only in ".join(f"{m}: {', '.join(n)}" for m, n in only if n))
    if a.references != b.references:
        parts.append(f"reference models {_known(a.references)} vs {_known(b.references)}")
    return "; ".join(parts) or None


def side_by_side(rep: RunReport, baseline: RunReport | None) -> list[tuple[str, list[Row]]]:
    """The headline columns of a run and of its baseline run (when given), as the CLI summary and report.html
    show them side by side; when the two were audited differently, the run's column says so above its
    privacy figures."""
    mine = rep.headline()
    columns = [(rep.method, mine)]
    if baseline is not None:
        why = audited_differently(rep, baseline)
        if why:
            at = next((i for i, row in enumerate(mine) if row.label == "strongest attack"), len(mine))
            mine.insert(at, Row(f"audit vs {baseline.method}", NOT_COMPARABLE, why))
        columns.append((f"{baseline.method} (baseline)", baseline.headline()))
    return columns
