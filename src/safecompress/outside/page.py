"""``report.html`` of an outside audit: one self-contained page, built from the run report's pieces (attack
table, ROC figure, per-class leakage, the attacks beyond membership) plus what an outside audit adds: the
audited model file, the data files, and every skipped attack with its reason."""

from __future__ import annotations

import html
from typing import Any

from ..report import beyond
from ..report.figures import Curve, attack_colours, roc_svg
from ..report.html import STYLE, _attack_table, _img, _per_class
from ..report.schema import AuditReport


def _rows(items: dict[str, Any]) -> str:
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in items.items())
    return f"<table><tbody>{body}</tbody></table>"


def roc_figure(curves: dict[str, tuple], n_members: int, n_nonmembers: int) -> str | None:
    """The audit's ROC curves (``AuditResult.curves``: attack -> (fpr, tpr, auc)) as inline SVG, drawn like a
    run's report: a colour per attack, axes from the data's resolution; None without curves."""
    if not curves:
        return None
    colours = attack_colours(curves)
    lines = [
        Curve(
            f"{name} (AUC {c[2]:.3f})" if len(c) > 2 and c[2] is not None else name,
            name,
            c[0],
            c[1],
            n_members,
            n_nonmembers,
        )
        for name, c in curves.items()
    ]
    svg = roc_svg(lines, colours, "roc-outside", "membership inference audit")
    return f'<div class="fig" id="roc" role="img" aria-label="ROC curves (log-log)">{svg}</div>'


def _references_note(recipe: dict[str, Any] | None) -> str:
    if not recipe:
        return (
            "<p class=note>No reference model was trained (no training recipe was given: --recipe), so the "
            "attacks that need one are skipped, and the threshold attacks report their AUC and TPRs without an "
            "attacker-calibrated threshold.</p>"
        )
    where = recipe.get("file") or "a recipe given in Python"
    if not recipe.get("references"):
        return (
            f"<p class=note id=references>No reference model was trained: the recipe {html.escape(str(where))} "
            "was given, but no attack of this audit needs reference models.</p>"
        )
    return (
        f"<p class=note id=references>The audit rests on {recipe['references']} reference models trained with "
        f"the recipe {html.escape(str(where))} (model {html.escape(str(recipe['model']))}, method "
        f"{html.escape(str(recipe['method']))}, {recipe['train']['epochs']} epochs) on halves of the "
        f"{recipe['trained_on']['population']} population records only: no audited member or non-member is in "
        "any reference's training data (checked by features before training; LiRA runs offline).</p>"
    )


def render_page(report: dict[str, Any], roc: str | None) -> str:
    """The page of an outside audit's report.json (``roc``: the ROC figure as inline SVG, or None)."""
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
        _references_note(report.get("recipe")),
        "<h2>Membership-inference audit</h2>",
    ]
    if roc:
        parts.append(roc)
    parts.append(_attack_table(audit))
    if audit.per_class and audit.per_class.auc:
        parts += ["<h3>Per-class leakage</h3>", _img(_per_class(audit.per_class), "per-class leakage")]
    extra = {k: v for k, v in beyond.lines(audit).items() if v != "not run"}
    if extra:
        parts += ["<h2>Beyond membership</h2>", _rows(extra)]
    skipped = report.get("skipped") or {}
    if skipped:
        parts += ["<h2>Skipped attacks</h2>", _rows(skipped)]
    if report.get("recipe"):
        flat = {
            k: ", ".join(f"{a}={b}" for a, b in v.items()) if isinstance(v, dict) else v
            for k, v in report["recipe"].items()
        }
        parts += ["<h2>Recipe of the reference models</h2>", _rows(flat)]
    parts += ["<h2>Inputs</h2>", _rows({**{f"model {k}": v for k, v in model.items()}, **report.get("data", {})})]
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{STYLE}</style></head>"
        f"<body>{chr(10).join(parts)}</body></html>\n"
    )
