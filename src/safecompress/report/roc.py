"""ROC figures for membership-inference attacks (log-log axes, low-FPR regime visible)."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from safecompress.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

_DEFAULT_LOW = 1e-4


# ten colours that stay apart (matplotlib's tab10), then the same colours with other dash patterns
_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_STYLES = ("-", "--", "-.", (0, (5, 1, 1, 1, 1, 1)))


def curve_styles(n: int) -> list[tuple[str, object]]:
    """``n`` distinct (colour, line style) pairs: a new colour for each of the first ten curves, then
    each colour again with the next dash pattern (40 distinct pairs before any repeats)."""
    return [(_COLOURS[i % len(_COLOURS)], _STYLES[(i // len(_COLOURS)) % len(_STYLES)]) for i in range(n)]


def prepare_curves(
    curves: Mapping[str, tuple[np.ndarray, ...]],
) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], float]:
    """(label, fpr, tpr) per curve, checked, and the axes' lower edge: the smallest positive rate in the
    data (its resolution), or 1e-4 when no rate is positive."""
    prepared: list[tuple[str, np.ndarray, np.ndarray]] = []
    low = None
    for name, curve in curves.items():
        if len(curve) not in (2, 3):
            raise ValueError(f"curve {name!r} must be (fpr, tpr) or (fpr, tpr, auc), got {len(curve)} items")
        fpr = np.asarray(curve[0], dtype=np.float64).ravel()
        tpr = np.asarray(curve[1], dtype=np.float64).ravel()
        if fpr.shape != tpr.shape:
            raise ValueError(f"curve {name!r}: fpr and tpr differ in length ({fpr.size} vs {tpr.size})")
        label = name
        if len(curve) == 3 and curve[2] is not None:
            label = f"{name} (AUC={float(curve[2]):.3f})"
        positive = np.concatenate((fpr[fpr > 0], tpr[tpr > 0]))
        if positive.size:
            low = float(positive.min()) if low is None else min(low, float(positive.min()))
        prepared.append((label, fpr, tpr))
    return prepared, (_DEFAULT_LOW if low is None else low)


def plot_roc(
    curves: Mapping[str, tuple[np.ndarray, ...]],
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """Draw every attack's ROC on log-log axes (:func:`roc_png`) and write the PNG atomically to ``path``."""
    out = atomic_write_bytes(path, roc_png(curves, title))
    log.debug("wrote ROC figure with %d curve(s) to %s", len(curves), out)
    return out


def roc_png(curves: Mapping[str, tuple[np.ndarray, ...]], title: str = "") -> bytes:
    """Every attack's ROC on log-log axes, as the bytes of a PNG.

    ``curves`` maps an attack name to ``(fpr, tpr)`` or ``(fpr, tpr, auc)``; when the AUC is
    given (and not ``None``) it is shown in the legend. Axes run from the data's resolution (the
    smallest positive rate, e.g. ``1/n`` for ``n`` non-members; ``1e-4`` when no rate is positive)
    to 1, so no part of the plot is finer than what the audit can measure; zero rates are drawn at
    that lower edge. Every curve gets its own colour and line style (:func:`curve_styles`); the chance
    diagonal is grey.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prepared, low = prepare_curves(curves)

    fig, ax = plt.subplots(figsize=(5.0, 5.0), dpi=120)
    try:
        for (label, fpr, tpr), (color, style) in zip(prepared, curve_styles(len(prepared))):
            ax.plot(
                np.clip(fpr, low, 1.0), np.clip(tpr, low, 1.0), label=label, linewidth=1.5, color=color, linestyle=style
            )
        ax.plot([low, 1.0], [low, 1.0], linestyle=(0, (1, 3)), color="grey", linewidth=1.0, label="chance")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(low, 1.0)
        ax.set_ylim(low, 1.0)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        if title:
            ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()
