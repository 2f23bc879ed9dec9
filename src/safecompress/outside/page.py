"""``report.html`` of an outside audit: one self-contained page, built from the run report's pieces (attack
table, ROC figure, per-class leakage, the attacks beyond membership) plus what an outside audit adds: the
audited model file, the data files, and every skipped attack with its reason."""

from __future__ import annotations

import html
from typing import Any

from ..report import beyond
from ..report.html import STYLE, _attack_table, _img, _per_class, png_uri
from ..report.schema import AuditReport


def _rows(items: dict[str, Any]) -> str:
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in items.items())
    return f"<table><tbody>{body}</tbody></table>"


def render_page(report: dict[str, Any], roc_png: bytes | None) -> str:
    """The page of an outside audit's report.json (``roc_png``: the ROC figure, or None)."""
    audit = AuditReport.model_validate(report["audit"])
    model = report.get("model", {})
    title = f"membership audit of {model.get('source') or 'a model'}"
    worst = audit.worst
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class=sub>{html.escape(model.get('format', '?'))} model trained outside safecompress · "
        f"{audit.n_members} members vs {audit.n_nonmembers} non-members · seed {report.get('seed', 0)} · "
        f"safecompress {html.escape(str(report.get('version', '')))}</p>",
        "<h2>Headline</h2>",
        f"<p id=verdict><b>strongest attack: {html.escape(worst.attack)}, AUC {worst.auc:.3f}"
        + (
            f" (chance level for the strongest of {worst.chance.attacks}: {worst.chance.chance_max_auc:.3f}, "
            f"p = {worst.chance.p_value:.2g})"
            if worst.chance
            else ""
        )
        + "</b></p>",
        _rows(report.get("task", {})),
        "<p class=note>No reference model was trained (the model's training recipe is unknown), so the attacks "
        "that need one are skipped, and the threshold attacks report their AUC and TPRs without an attacker-"
        "calibrated threshold.</p>",
        "<h2>Membership-inference audit</h2>",
    ]
    if roc_png:
        parts.append(_img(png_uri(roc_png), "ROC curves (log-log)"))
    parts.append(_attack_table(audit))
    if audit.per_class and audit.per_class.auc:
        parts += ["<h3>Per-class leakage</h3>", _img(_per_class(audit.per_class), "per-class leakage")]
    extra = {k: v for k, v in beyond.lines(audit).items() if v != "not run"}
    if extra:
        parts += ["<h2>Beyond membership</h2>", _rows(extra)]
    skipped = report.get("skipped") or {}
    if skipped:
        parts += ["<h2>Skipped attacks</h2>", _rows(skipped)]
    parts += ["<h2>Inputs</h2>", _rows({**{f"model {k}": v for k, v in model.items()}, **report.get("data", {})})]
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{STYLE}</style></head>"
        f"<body>{chr(10).join(parts)}</body></html>\n"
    )
