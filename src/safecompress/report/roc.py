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


def plot_roc(
    curves: Mapping[str, tuple[np.ndarray, ...]],
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """Draw every attack's ROC on log-log axes and write a PNG atomically to ``path``.

    ``curves`` maps an attack name to ``(fpr, tpr)`` or ``(fpr, tpr, auc)``; when the AUC is
    given (and not ``None``) it is shown in the legend. Axes run from ``1e-4`` (or from the
    smallest positive rate, if finer, e.g. ``1/n``) to 1; zero rates are drawn at that lower
    edge. The chance diagonal is drawn dashed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prepared: list[tuple[str, np.ndarray, np.ndarray]] = []
    low = _DEFAULT_LOW
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
            low = min(low, float(positive.min()))
        prepared.append((label, fpr, tpr))

    fig, ax = plt.subplots(figsize=(5.0, 5.0), dpi=120)
    try:
        for label, fpr, tpr in prepared:
            ax.plot(np.clip(fpr, low, 1.0), np.clip(tpr, low, 1.0), label=label, linewidth=1.5)
        ax.plot([low, 1.0], [low, 1.0], linestyle="--", color="grey", linewidth=1.0, label="chance")
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
    out = atomic_write_bytes(path, buf.getvalue())
    log.debug("wrote ROC figure with %d curve(s) to %s", len(prepared), out)
    return out
