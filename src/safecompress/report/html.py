"""``report.html``: one self-contained page per run folder (images inline as data URIs, no network).

Sections: headline numbers with 95 % intervals (beside the baseline run when there is one), the ROC
curves of the audit (log-log), the SafeCompress round trajectory (every candidate as a point, the
chosen one highlighted), per-class leakage of the strongest attack, the compression numbers per
layer, and the resolved configuration. Everything is read from the run folder's own files.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write_text
from . import beyond
from .headline import Row
from .schema import AttackMetrics, AuditReport, Layer, PerClass, RunReport
from .verdict import won_and_lost

log = logging.getLogger(__name__)

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


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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


def _cell(row: Row) -> str:
    if row.unresolved is not None:
        return _na(row.unresolved)
    return html.escape(row.text) + (f" <span class=note>({html.escape(row.note)})</span>" if row.note else "")


def _headline_rows(rep: RunReport) -> dict[str, str]:
    return {row.label: _cell(row) for row in rep.headline()}


def _headline(rep: RunReport, baseline: RunReport | None) -> str:
    cols = [(rep.method, _headline_rows(rep))]
    if baseline is not None:
        cols.append((f"{baseline.method} (baseline)", _headline_rows(baseline)))
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in cols)
    body = ""
    for key in cols[0][1]:
        body += (
            f"<tr><td>{html.escape(key)}</td>" + "".join(f"<td>{rows.get(key, '—')}</td>" for _, rows in cols) + "</tr>"
        )
    return f'<table id="headline"><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>'


def _attack_table(audit: AuditReport) -> str:
    body = ""
    for name, a in sorted(audit.attacks.items(), key=lambda kv: -kv[1].auc):
        body += (
            f"<tr><td>{html.escape(name)}</td><td>{_ci(a.auc, a.auc_ci)}</td>"
            f"<td>{a.advantage:.3f}</td><td>{_p(a.auc_p)}</td><td>{_rate(a, '0.01')}</td>"
            f"<td>{_rate(a, '0.001')}</td><td>{'white' if a.white_box else 'black'}-box</td></tr>"
        )
    return (
        "<table><thead><tr><th>attack</th><th>AUC [95% CI]</th><th>advantage</th><th>p (AUC&gt;0.5)</th>"
        "<th>TPR@1%FPR</th>"
        f"<th>TPR@0.1%FPR</th><th>access</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _trajectory(rounds: list[dict[str, Any]], final_round: Any = None) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in rounds:
        for c in r["candidates"]:
            leak = max(c["attack_auc"].values())
            color, size = ("#b3261e", 40) if c["chosen"] else ("#8a93a6", 14)
            axes[0].scatter(r["round"], c["val_accuracy"], s=size, c=color, zorder=3 if c["chosen"] else 2)
            axes[1].scatter(r["round"], leak, s=size, c=color, zorder=3 if c["chosen"] else 2)
    chosen = [r["candidates"][r["chosen"]] for r in rounds]
    xs = [r["round"] for r in rounds]
    axes[0].plot(xs, [c["val_accuracy"] for c in chosen], c="#b3261e", lw=1)
    axes[1].plot(xs, [max(c["attack_auc"].values()) for c in chosen], c="#b3261e", lw=1)
    axes[0].set(xlabel="round", ylabel="val accuracy", title="accuracy of candidates (chosen in red)")
    axes[1].set(xlabel="round", ylabel="simulated attack AUC (worst)", title="in-loop attack success (probe data)")
    axes[1].axhline(0.5, ls="--", c="#999", lw=0.8)
    if isinstance(final_round, int):
        for ax in axes:
            ax.axvline(final_round, ls=":", c="#0a7a3b", lw=1.2, label=f"final model (round {final_round})")
        axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return figure_uri(fig)


def _per_class(per_class: PerClass) -> str:
    plt = pyplot()
    items = sorted(per_class.auc.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else kv[0])
    fig, ax = plt.subplots(figsize=(10, 2.8))
    ax.bar([k for k, _ in items], [v for _, v in items], color="#3a6ea5")
    ax.axhline(0.5, ls="--", c="#999", lw=0.8)
    ax.set(xlabel="class", ylabel="AUC", title=f"per-class leakage of {per_class.attack}")
    if len(items) > 30:
        ax.set_xticks([k for i, (k, _) in enumerate(items) if i % 10 == 0])
    fig.tight_layout()
    return figure_uri(fig)


def _layers(layers: dict[str, Layer]) -> str:
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{'×'.join(map(str, layer.shape))}</td><td>{layer.nonzeros:,}</td>"
        f"<td>{layer.density:.4f}</td><td>{_or_nan(layer.ever_active):.4f}</td></tr>"
        for name, layer in layers.items()
    )
    return (
        "<table><thead><tr><th>layer</th><th>shape</th><th>non-zeros</th><th>density</th><th>ever active</th>"
        f"</tr></thead><tbody>{body}</tbody></table>"
    )


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _roc_vs_baseline(run_dir: Path, rep: RunReport, base_dir: Path, base: RunReport) -> str:
    """Log-log ROC of each run's strongest attack (from its scores.npz), the run's and its baseline's on
    one figure; empty when either run has no per-record scores."""
    from ..fileio import load_npz
    from ..metrics import roc_curve
    from .roc import curve_styles, prepare_curves

    curves = {}
    for folder, r in ((run_dir, rep), (base_dir, base)):
        attack = r.audit.worst.attack if r.audit else None
        path = Path(folder) / "scores.npz"
        if attack is None or not path.is_file():
            return ""
        z = load_npz(path)
        if f"score_{attack}" not in z:
            return ""
        fpr, tpr, _ = roc_curve(z[f"score_{attack}"], z["is_member"].astype(bool))
        curves[f"{r.method}: {attack} (AUC {r.audit.worst.auc:.3f})"] = (fpr, tpr)
    prepared, low = prepare_curves(curves)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 4.2))
    for (label, fpr, tpr), (color, style) in zip(prepared, curve_styles(len(prepared))):
        ax.plot(np.clip(fpr, low, 1), np.clip(tpr, low, 1), label=label, color=color, linestyle=style, lw=1.5)
    ax.plot([low, 1], [low, 1], color="grey", lw=1, linestyle=(0, (1, 3)), label="chance")
    ax.set(
        xscale="log",
        yscale="log",
        xlim=(low, 1),
        ylim=(low, 1),
        xlabel="false positive rate",
        ylabel="true positive rate",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return figure_uri(fig)


def render_report(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    rep = RunReport.load(run_dir)
    base_dir = run_dir / rep.baseline.run_dir if rep.baseline else None
    baseline = RunReport.load(base_dir) if base_dir and (base_dir / "report.json").is_file() else None
    title = f"{rep.method} on {rep.dataset}"
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class=sub>seed {rep.seed} · safecompress {html.escape(rep.version)} · "
        f"model {html.escape(rep.model.name)} ({rep.model.parameters:,} parameters) · "
        f"defence {html.escape(rep.defence.name if rep.defence else 'none')}</p>",
        "<h2>Headline</h2>",
        *([f"<p id=verdict><b>{html.escape(s)}</b></p>"] if (s := won_and_lost(rep)) else []),
        _headline(rep, baseline),
        "<p class=note>Accuracy is on the <code>test</code> part. Privacy numbers come from the independent audit "
        "on audit members vs audit non-members that training never used (not from any in-loop attacker).</p>",
    ]
    audit = rep.audit
    if audit:
        parts.append("<h2>Membership-inference audit</h2>")
        if (run_dir / "roc.png").is_file():
            parts.append(_img(png_uri((run_dir / "roc.png").read_bytes()), "ROC curves (log-log)"))
        if baseline is not None:
            versus = _roc_vs_baseline(run_dir, rep, base_dir, baseline)
            if versus:
                parts += [
                    "<h3>Strongest attack: this run against the baseline</h3>",
                    _img(versus, "ROC of each run's strongest attack, this run and its baseline"),
                ]
        parts.append(_attack_table(audit))
        if audit.per_class and audit.per_class.auc:
            parts += ["<h3>Per-class leakage</h3>", _img(_per_class(audit.per_class), "per-class leakage")]
        extra = {k: v for k, v in beyond.lines(audit).items() if v != "not run"}
        if extra:
            parts.append(
                "<h2>Beyond membership</h2><table><tbody>"
                + "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in extra.items())
                + "</tbody></table>"
            )
    rounds_file = run_dir / "rounds.jsonl"
    if rounds_file.is_file() and rounds_file.stat().st_size:
        rounds = [json.loads(line) for line in rounds_file.read_text().splitlines() if line.strip()]
        final_round = rep.final_round
        parts += [
            "<h2>SafeCompress rounds</h2>",
            _img(_trajectory(rounds, final_round), "SafeCompress round trajectory"),
            f"<p class=note>{len(rounds)} rounds × {len(rounds[0]['candidates'])} candidates; the simulated "
            "attackers are scored on held-apart probe data. The final model is chosen on val "
            f"(here: {html.escape(str(final_round if final_round is not None else 'final'))}).</p>",
        ]
    comp = rep.compression
    parts += [
        "<h2>Compression</h2>",
        f"<p>{comp.nonzeros:,} of {comp.parameters:,} parameters non-zero (density {comp.density:.4f}); "
        f"packed file {comp.file_bytes:,} B vs dense {comp.dense_bytes:,} B ({comp.ratio:.1f}×).</p>",
    ]
    if rep.method_details and rep.method_details.sparse:
        parts.append(_layers(rep.layers))
    if (run_dir / "config.yaml").is_file():
        parts += ["<h2>Resolved configuration</h2>", f"<pre>{html.escape((run_dir / 'config.yaml').read_text())}</pre>"]
    body = "\n".join(parts)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def write_report_html(run_dir: Path) -> Path:
    path = Path(run_dir) / "report.html"
    atomic_write_text(path, render_report(Path(run_dir)))
    return path
