"""The figures of ``report.html`` as inline SVG, drawn at render time from the run folder's own data
(``scores.npz`` for the ROC curves, ``report.json`` for per-class leakage, ``rounds.jsonl`` for the
SafeCompress trajectory).

Every attack keeps one colour wherever it appears (:func:`attack_colours`): the built-in attacks have a
fixed colour each, and a plugin attack gets the first colour no other attack of the page uses. A log-log ROC
starts at the data's resolution: the smallest false positive rate shown is 1 / the number of non-members
and the smallest true positive rate 1 / the number of members; zero rates are drawn on that edge.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# one fixed colour per built-in membership attack (matplotlib's tab10, then two more that stand apart), so
# an attack looks the same in every figure and every report
ATTACK_COLOURS: dict[str, str] = {
    "loss": "#1f77b4",
    "lira": "#ff7f0e",
    "rmia": "#2ca02c",
    "nn": "#d62728",
    "calibrated": "#9467bd",
    "entropy": "#8c564b",
    "m_entropy": "#e377c2",
    "confidence": "#7f7f7f",
    "top3": "#bcbd22",
    "label_only": "#17becf",
    "shadow": "#393b79",
    "grad_norm": "#111111",
    "whitebox": "#a55194",
}
# for attacks the table does not name (plugins), in order
SPARE_COLOURS = (
    "#637939",
    "#e6550d",
    "#3182bd",
    "#843c39",
    "#31a354",
    "#756bb1",
    "#fdae6b",
    "#9ecae1",
    "#ff9896",
    "#c7c7c7",
)
# the standard label order of datasets whose class names only their files carry (CIFAR-10's batches.meta)
KNOWN_CLASS_NAMES: dict[str, list[str]] = {
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


def attack_colours(names: Iterable[str]) -> dict[str, str]:
    """A colour for every attack in ``names``: its fixed one, or else the first spare colour that no other
    attack here uses (the spares are reused only when more plugin attacks than spares meet on one page)."""
    names = sorted(set(names))
    out = {n: ATTACK_COLOURS[n] for n in names if n in ATTACK_COLOURS}
    free = [c for c in (*SPARE_COLOURS, *ATTACK_COLOURS.values()) if c not in out.values()]
    for i, name in enumerate(n for n in names if n not in out):
        out[name] = free[i % len(free)]
    return out


def class_names(report: Mapping[str, Any] | None, dataset: str | None) -> list[str] | None:
    """The dataset's class names, index by index: ``data.class_names`` of report.json when the run wrote
    them, else the dataset plugin's own list (a class attribute, e.g. Fashion-MNIST's), else the standard
    names of a well-known dataset; None when none is known (the figure then shows indices)."""
    names = (report or {}).get("class_names")
    if _names_ok(names):
        return [str(n) for n in names]
    if not dataset:
        return None
    try:
        from ..data import DATASETS

        names = getattr(DATASETS.get(dataset), "class_names", None)
    except Exception as exc:  # an unknown or broken plugin must not stop the report
        log.debug("no class names from dataset %r: %s", dataset, exc)
        names = None
    if _names_ok(names):
        return [str(n) for n in names]
    return KNOWN_CLASS_NAMES.get(dataset)


def _names_ok(names: Any) -> bool:
    return isinstance(names, (list, tuple)) and bool(names) and all(isinstance(n, (str, int)) for n in names)


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^)"]+)')


def figure_svg(fig, prefix: str) -> str:
    """A matplotlib figure as an ``<svg>`` element to inline in HTML; the figure is closed.

    Text stays text (``svg.fonttype=none``), the file's XML prologue is dropped, the output is the same
    for the same figure (fixed hash salt, no date), and every ``id`` (and each reference to one) gets
    ``prefix``, so several figures on one page never share an id."""
    import matplotlib

    plt = pyplot()
    buf = io.StringIO()
    try:
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "safecompress"}):
            fig.savefig(
                buf,
                format="svg",
                bbox_inches="tight",
                metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
            )
    finally:
        plt.close(fig)
    text = buf.getvalue()
    svg = text[text.index("<svg") :].strip()
    ids = set(_ID.findall(svg))
    svg = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    return _REF.sub(lambda m: m.group(1) + (f"{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(2)), svg)


# -- ROC ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """One attack's empirical ROC on one run's audit records."""

    label: str
    attack: str
    fpr: np.ndarray
    tpr: np.ndarray
    n_members: int
    n_nonmembers: int
    reference: bool = False  # a baseline's (or compared run's) curve: drawn dashed and thinner


def load_curves(folder: Path, attacks: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray, int, int]]:
    """(fpr, tpr, members, non-members) of each attack in ``attacks`` that the folder's ``scores.npz``
    holds scores for; empty when it has no such file or no usable scores."""
    from ..fileio import load_npz
    from ..metrics import roc_curve

    path = Path(folder) / "scores.npz"
    if not path.is_file():
        return {}
    try:
        z = load_npz(path)
        is_member = z["is_member"].astype(bool)
    except (ValueError, KeyError, OSError) as exc:
        log.warning("%s: cannot read the audit scores (%s); the report draws no ROC from it", path, exc)
        return {}
    n_pos = int(is_member.sum())
    n_neg = int(is_member.size - n_pos)
    out = {}
    for attack in attacks:
        scores = z.get(f"score_{attack}")
        if scores is None or scores.shape != is_member.shape:
            continue
        try:
            fpr, tpr, _ = roc_curve(scores, is_member)
        except ValueError as exc:
            log.warning("%s: no ROC for %s (%s)", path, attack, exc)
            continue
        out[attack] = (fpr, tpr, n_pos, n_neg)
    return out


def resolution(curves: Sequence[Curve]) -> tuple[float, float]:
    """The axes' lower edges (FPR, TPR): 1 / the most non-members and 1 / the most members of any curve."""
    return 1.0 / max(c.n_nonmembers for c in curves), 1.0 / max(c.n_members for c in curves)


def roc_svg(curves: Sequence[Curve], colours: Mapping[str, str], prefix: str, title: str = "") -> str:
    """Log-log ROC curves as SVG: a colour per attack, the references dashed, the chance diagonal grey."""
    plt = pyplot()
    x_low, y_low = resolution(curves)
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    for c in curves:
        ax.plot(
            np.clip(c.fpr, x_low, 1.0),
            np.clip(c.tpr, y_low, 1.0),
            label=c.label,
            color=colours[c.attack],
            linestyle=(0, (5, 2)) if c.reference else "-",
            lw=1.1 if c.reference else 1.6,
            alpha=0.85 if c.reference else 1.0,
        )
    low = max(x_low, y_low)
    ax.plot([low, 1.0], [low, 1.0], color="grey", lw=1, linestyle=(0, (1, 3)), label="chance")
    ax.set(
        xscale="log",
        yscale="log",
        xlim=(x_low, 1.0),
        ylim=(y_low, 1.0),
        xlabel=f"false positive rate (from 1/{round(1 / x_low)} non-members)",
        ylabel=f"true positive rate (from 1/{round(1 / y_low)} members)",
    )
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return figure_svg(fig, prefix)


# -- per-class leakage -------------------------------------------------------------------------------


def per_class_figure(attack: str, auc: Mapping[str, float], names: Sequence[str] | None, colour: str):
    """Bar chart of the strongest attack's AUC per class (an open matplotlib figure)."""
    plt = pyplot()
    items = sorted(auc.items(), key=lambda kv: (0, int(kv[0]), "") if kv[0].isdigit() else (1, 0, kv[0]))
    labels = [_class_label(k, names) for k, _ in items]
    fig, ax = plt.subplots(figsize=(10, 3.2 if names else 2.8))
    positions = np.arange(len(items))
    ax.bar(positions, [v for _, v in items], color=colour)
    ax.axhline(0.5, ls="--", c="#999", lw=0.8)
    ax.set(xlabel="class", ylabel="AUC", title=f"per-class leakage of {attack}")
    step = 10 if len(items) > 30 else 1
    ax.set_xticks(positions[::step], labels[::step])
    if names and any(len(s) > 3 for s in labels[::step]):
        plt.setp(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(items) - 0.4)
    fig.tight_layout()
    return fig


def _class_label(key: str, names: Sequence[str] | None) -> str:
    if names and key.isdigit() and int(key) < len(names):
        return str(names[int(key)])
    return key


def per_class_svg(attack: str, auc: Mapping[str, float], names: Sequence[str] | None, colour: str, prefix: str) -> str:
    return figure_svg(per_class_figure(attack, auc, names, colour), prefix)


# -- SafeCompress rounds -----------------------------------------------------------------------------


def trajectory_figure(rounds: list[dict[str, Any]], final_round: Any = None):
    """Every candidate of every round as a point (accuracy, in-loop attack AUC), the chosen ones in red."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

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
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if isinstance(final_round, int):
        for ax in axes:
            ax.axvline(final_round, ls=":", c="#0a7a3b", lw=1.2, label=f"final model (round {final_round})")
        axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
