"""``report.html``: one self-contained page per run folder (figures inline as SVG, no network).

Sections: headline numbers with 95 % intervals (beside the baseline run when there is one), the ROC
curves of the audit (log-log, with the baseline's curves dashed when there is one), the SafeCompress round
trajectory (every candidate as a point, the chosen one highlighted), per-class leakage of the strongest
attack, the compression numbers per layer, and the resolved configuration. Everything is read from the run
folder's own files; the figures are drawn at render time (:mod:`.figures`).

The page is a Jinja2 template with autoescaping (``templates/report.html.j2`` in this package). A user's
own template folder, from the ``template_dir`` argument or else ``$SAFECOMPRESS_REPORT_TEMPLATE_DIR``, is
searched first: a ``report.html.j2`` there replaces the page, and may ``{% extends "builtin/report.html.j2" %}``
to change only some of its blocks.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fileio import atomic_write_text
from . import beyond, figures
from .headline import Row, side_by_side
from .schema import AttackMetrics, AuditReport, Layer, PerClass, RunReport, compared_folder
from .verdict import won_and_lost

log = logging.getLogger(__name__)

TEMPLATE_ENV = "SAFECOMPRESS_REPORT_TEMPLATE_DIR"
TEMPLATE = "report.html.j2"

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2330;
padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
.sub{color:#5b6475;margin-top:0} table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{padding:.35rem .7rem;border-bottom:1px solid #e6e8ef;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#f3f5fa} .good{color:#0a7a3b;font-weight:600} .bad{color:#b3261e;font-weight:600}
img{max-width:100%;border:1px solid #e6e8ef;border-radius:6px}
pre{background:#f6f8fb;padding:1rem;border-radius:6px;overflow:auto;font-size:.85rem}
.note{color:#5b6475;font-size:.88rem} .na{color:#9aa1ad;font-style:italic}
"""
FIGURE_STYLE = """
.fig{margin:.6rem 0} .fig svg{max-width:100%;height:auto;border:1px solid #e6e8ef;border-radius:6px;background:#fff}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.4em;vertical-align:-.05em}
"""


# -- helpers other pages share (the outside audit's page, the bench summary) --------------------------


def png_uri(png: bytes) -> str:
    """A PNG as a data URI, so a page needs no files beside it."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_uri(fig, dpi: int = 110, tight: bool = True) -> str:
    """A matplotlib figure rendered to a PNG data URI; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    pyplot().close(fig)
    return png_uri(buf.getvalue())


def _img(src: str, alt: str) -> str:
    return f'<img src="{src}" alt="{html.escape(alt)}">'


pyplot = figures.pyplot


def _ci(value: float, ci: list[float] | None) -> str:
    return f"{value:.3f}" + (f" <span class=note>[{ci[0]:.3f}, {ci[1]:.3f}]</span>" if ci else "")


def _na(note: str | None) -> str:
    """A figure the data cannot resolve: greyed out, with the reason on hover."""
    return f'<span class="na" title="{html.escape(note or "not resolved")}">not resolved</span>'


def _rate(a: AttackMetrics, fpr: str) -> str:
    value = a.tpr_at_fpr.get(fpr)
    return _na((a.resolution or {}).get(fpr)) if value is None else f"{value:.4f}"


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.2g}"


def _attack_table(audit: AuditReport) -> str:
    """The attack table as HTML (for pages not built from the template)."""
    body = ""
    for name, a in sorted(audit.attacks.items(), key=lambda kv: -kv[1].auc):
        body += (
            f"<tr><td>{html.escape(name)}</td><td>{_ci(a.auc, a.auc_ci)}</td>"
            f"<td>{_num(a.advantage, 3)}</td><td>{_p(a.auc_p)}</td><td>{_rate(a, '0.01')}</td>"
            f"<td>{_rate(a, '0.001')}</td><td>{'white' if a.white_box else 'black'}-box</td></tr>"
        )
    return (
        "<table><thead><tr><th>attack</th><th>AUC [95% CI]</th><th>advantage</th><th>p (AUC&gt;0.5)</th>"
        "<th>TPR@1%FPR</th>"
        f"<th>TPR@0.1%FPR</th><th>access</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _per_class(per_class: PerClass) -> str:
    """Per-class leakage as a PNG data URI (for pages not built from the template)."""
    colour = figures.attack_colours([per_class.attack])[per_class.attack]
    return figure_uri(figures.per_class_figure(per_class.attack, per_class.auc, None, colour))


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


# -- the page's data ---------------------------------------------------------------------------------


def _cell(row: Row) -> dict[str, Any]:
    return {"text": row.text, "note": row.note, "unresolved": row.unresolved}


def _headline(rep: RunReport, baseline: RunReport | None) -> dict[str, Any]:
    cols = [(name, {row.label: _cell(row) for row in rows}) for name, rows in side_by_side(rep, baseline)]
    return {
        "columns": [name for name, _ in cols],
        "rows": [{"label": key, "cells": [rows.get(key) for _, rows in cols]} for key in cols[0][1]],
    }


def _rate_cell(a: AttackMetrics, fpr: str) -> dict[str, Any]:
    value = a.tpr_at_fpr.get(fpr)
    if value is None:
        return {"text": "not resolved", "note": "", "unresolved": (a.resolution or {}).get(fpr) or "not resolved"}
    return {"text": f"{value:.4f}", "note": "", "unresolved": None}


def _attacks(audit: AuditReport, colours: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "colour": colours[name],
            "auc": f"{a.auc:.3f}",
            "auc_ci": f"[{a.auc_ci[0]:.3f}, {a.auc_ci[1]:.3f}]" if a.auc_ci else "",
            "advantage": _num(a.advantage, 3),
            "p": _p(a.auc_p),
            "tpr_1pct": _rate_cell(a, "0.01"),
            "tpr_01pct": _rate_cell(a, "0.001"),
            "access": f"{'white' if a.white_box else 'black'}-box",
        }
        for name, a in sorted(audit.attacks.items(), key=lambda kv: -kv[1].auc)
    ]


def _reference_runs(run_dir: Path, rep: RunReport) -> list[tuple[str, Path, RunReport | None]]:
    """(label, folder, its report) of each run this one is measured against: the baseline (report.json's
    ``baseline``) and the run of ``safecompress audit --compare`` (``audit.compare.other``)."""
    out = []
    if rep.baseline:
        folder = run_dir / rep.baseline.run_dir
        out.append((f"{rep.baseline.method} (baseline)", folder, _load_report(folder)))
    other = rep.audit.compared_with if rep.audit else None
    folder = compared_folder(run_dir, other)
    if folder is not None:
        other_rep = _load_report(folder)
        name = other_rep.method if other_rep else folder.name
        out.append((f"{name} (compared)", folder, other_rep))
    elif other:
        log.info("the compared run %s is not found from %s; its ROC is left out", other, run_dir)
    return out


def _load_report(folder: Path) -> RunReport | None:
    if not (folder / "report.json").is_file():
        return None
    try:
        return RunReport.load(folder)
    except (ValueError, OSError) as exc:
        log.warning("%s: report.json is unreadable (%s); the page leaves that run out", folder, exc)
        return None


def _curves(folder: Path, audit: AuditReport, label: str | None) -> list[figures.Curve]:
    """One Curve per attack of ``audit`` with scores in ``folder``; ``label`` names a reference run."""
    out = []
    for attack, (fpr, tpr, n_pos, n_neg) in figures.load_curves(folder, list(audit.attacks)).items():
        auc = audit.attacks[attack].auc
        text = f"{label}: {attack} (AUC {auc:.3f})" if label else f"{attack} (AUC {auc:.3f})"
        out.append(figures.Curve(text, attack, fpr, tpr, n_pos, n_neg, reference=label is not None))
    return out


def _audit_section(run_dir: Path, rep: RunReport, refs, colours: dict[str, str], names) -> dict[str, Any]:
    audit = rep.audit
    section: dict[str, Any] = {
        "attacks": _attacks(audit, colours),
        "roc": None,
        "roc_png": None,
        "roc_references": [],
        "versus": None,
        "per_class": None,
    }
    own = _curves(run_dir, audit, None)
    ref_curves = [c for label, folder, r in refs if r and r.audit for c in _curves(folder, r.audit, label)]
    if own:
        section["roc"] = figures.roc_svg([*own, *ref_curves], colours, "f-roc")
        section["roc_references"] = [label for label, _, r in refs if r and r.audit]
    elif (run_dir / "roc.png").is_file():  # no per-record scores to draw from: the audit's own picture
        section["roc_png"] = png_uri((run_dir / "roc.png").read_bytes())
    if rep.baseline and refs and refs[0][2] is not None and refs[0][2].audit:
        label, folder, base = refs[0]
        mine = [c for c in own if c.attack == audit.worst.attack]
        theirs = [c for c in _curves(folder, base.audit, label) if c.attack == base.audit.worst.attack]
        if mine and theirs:
            mine = [dataclasses.replace(c, label=f"{rep.method}: {c.label}") for c in mine]
            section["versus"] = figures.roc_svg([*mine, *theirs], colours, "f-versus")
    pc = audit.per_class
    if pc and pc.auc:
        colour = colours.get(pc.attack) or figures.attack_colours([pc.attack])[pc.attack]
        section["per_class"] = {
            "svg": figures.per_class_svg(pc.attack, pc.auc, names, colour, "f-perclass"),
            "named": bool(names),
        }
    extra = {k: v for k, v in beyond.lines(audit).items() if v != "not run"}
    section["beyond"] = list(extra.items())
    return section


def _colours(rep: RunReport, refs) -> dict[str, str]:
    names: set[str] = set()
    for r in (rep, *(r for _, _, r in refs)):
        if r is not None and r.audit is not None:
            names |= set(r.audit.attacks)
            if r.audit.per_class:
                names.add(r.audit.per_class.attack)
    return figures.attack_colours(names)


def _rounds(run_dir: Path, rep: RunReport) -> dict[str, Any] | None:
    rounds_file = run_dir / "rounds.jsonl"
    if not (rounds_file.is_file() and rounds_file.stat().st_size):
        return None
    rounds = [json.loads(line) for line in rounds_file.read_text().splitlines() if line.strip()]
    if not rounds:
        return None
    final_round = rep.final_round
    return {
        "svg": figures.figure_svg(figures.trajectory_figure(rounds, final_round), "f-rounds"),
        "n_rounds": len(rounds),
        "n_candidates": len(rounds[0]["candidates"]),
        "final_round": str(final_round if final_round is not None else "final"),
    }


def _layers(layers: dict[str, Layer]) -> list[dict[str, str]]:
    return [
        {
            "name": name,
            "shape": "×".join(map(str, layer.shape)),
            "nonzeros": f"{layer.nonzeros:,}",
            "density": f"{layer.density:.4f}",
            "ever_active": _num(layer.ever_active, 4) if layer.ever_active is not None else "nan",
        }
        for name, layer in layers.items()
    ]


def context(run_dir: Path) -> dict[str, Any]:
    """Everything the template shows, as plain values (text is escaped by the template, the SVG figures are
    markup): ``title``, ``run`` (the :class:`RunReport`), ``headline``, ``audit``, ``rounds``, ..."""
    from markupsafe import Markup

    run_dir = Path(run_dir)
    rep = RunReport.load(run_dir)
    refs = _reference_runs(run_dir, rep)
    baseline = refs[0][2] if rep.baseline else None
    colours = _colours(rep, refs)
    names = figures.class_names(rep.data.model_dump() if rep.data else None, rep.dataset)
    comp = rep.compression
    audit = _audit_section(run_dir, rep, refs, colours, names) if rep.audit else None
    if audit:
        for key in ("roc", "versus"):
            audit[key] = Markup(audit[key]) if audit[key] else None
        if audit["per_class"]:
            audit["per_class"]["svg"] = Markup(audit["per_class"]["svg"])
    rounds = _rounds(run_dir, rep)
    if rounds:
        rounds["svg"] = Markup(rounds["svg"])
    config = run_dir / "config.yaml"
    return {
        "style": Markup(STYLE + FIGURE_STYLE),
        "title": f"{rep.method} on {rep.dataset}",
        "run": rep,
        "parameters": f"{rep.model.parameters:,}",
        "defence": rep.defence.name if rep.defence else "none",
        "verdict": won_and_lost(rep, baseline),
        "headline": _headline(rep, baseline),
        "audit": audit,
        "colours": colours,
        "rounds": rounds,
        "compression": {
            "nonzeros": f"{comp.nonzeros:,}" if comp.nonzeros is not None else "?",
            "parameters": f"{comp.parameters:,}" if comp.parameters is not None else "?",
            "density": f"{comp.density:.4f}",
            "file_bytes": f"{comp.file_bytes:,}",
            "dense_bytes": f"{comp.dense_bytes:,}" if comp.dense_bytes is not None else "?",
            "ratio": f"{comp.ratio:.1f}" if comp.ratio is not None else "?",
        },
        "layers": _layers(rep.layers) if rep.method_details and rep.method_details.sparse else None,
        "config": config.read_text() if config.is_file() else None,
    }


# -- rendering ---------------------------------------------------------------------------------------


def template_environment(template_dir: str | os.PathLike | None = None):
    """The Jinja2 environment of report pages (autoescape on): ``template_dir`` first (when given), then
    this package's templates, which are also reachable as ``builtin/<name>`` for a user's template to
    extend. A ``template_dir`` that is not a folder is a :class:`ConfigError`."""
    import jinja2

    builtin = jinja2.PackageLoader("safecompress.report", "templates")
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        folder = Path(template_dir).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"report template folder {template_dir} is not a folder; it should hold {TEMPLATE}")
        loaders.append(jinja2.FileSystemLoader(str(folder)))
    loaders += [builtin, jinja2.PrefixLoader({"builtin": builtin})]
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_report(run_dir: Path, template_dir: str | os.PathLike | None = None) -> str:
    """The report.html of a run folder.

    ``template_dir``: a folder of templates searched before the built-in ones (its ``report.html.j2`` is
    the page); an error in it is raised. Without it, ``$SAFECOMPRESS_REPORT_TEMPLATE_DIR`` is used the same
    way, except that a problem with it (no such folder, a template that does not render) is logged as a
    warning and the built-in page is written instead, so a run never ends without its report."""
    import jinja2

    values = context(Path(run_dir))
    if template_dir is not None:
        return template_environment(template_dir).get_template(TEMPLATE).render(**values)
    env_dir = os.environ.get(TEMPLATE_ENV)
    if env_dir:
        try:
            return template_environment(env_dir).get_template(TEMPLATE).render(**values)
        except (ConfigError, jinja2.TemplateError, OSError) as exc:
            log.warning("$%s=%s: %s; report.html uses the built-in template", TEMPLATE_ENV, env_dir, exc)
    return template_environment().get_template(TEMPLATE).render(**values)


def write_report_html(run_dir: Path, template_dir: str | os.PathLike | None = None) -> Path:
    """Write ``run_dir/report.html`` (see :func:`render_report`)."""
    path = Path(run_dir) / "report.html"
    atomic_write_text(path, render_report(Path(run_dir), template_dir))
    return path
