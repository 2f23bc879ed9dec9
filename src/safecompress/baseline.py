"""The baseline run (``cfg.baseline``) as the main run's report summarises it: its headline numbers and the
paired comparison of the two audits. Written by ``safecompress run`` and rewritten by ``safecompress audit``
of the main run, so the comparison always rests on the audits as they stand."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .errors import RunFolderError
from .fileio import load_npz

log = logging.getLogger(__name__)


def paired_comparison(
    run_a: Path, run_b: Path, n_bootstrap: int = 1000, seed: int = 0, scores_a: dict[str, np.ndarray] | None = None
) -> dict[str, Any]:
    """Run A vs run B on the same audit records (their scores.npz; ``scores_a`` instead of A's file when
    given): paired bootstrap of ΔAUC and ΔTPR@1 %FPR per attack and for the strongest attack, with verdicts
    (metrics.paired_difference)."""
    a = load_npz(Path(run_a) / "scores.npz") if scores_a is None else scores_a
    b = load_npz(Path(run_b) / "scores.npz")
    if not np.array_equal(a["is_member"], b["is_member"]) or not np.array_equal(a["labels"], b["labels"]):
        raise RunFolderError(
            f"{run_a} and {run_b} were audited on different records; compare runs that share a "
            "split (same data, seed and data.split) and the same audit.canaries"
        )
    strip = lambda d: {k[len("score_") :]: d[k] for k in d if k.startswith("score_")}  # noqa: E731
    return metrics.paired_difference(strip(a), strip(b), a["is_member"], n_bootstrap=max(n_bootstrap, 200), seed=seed)


def baseline_summary(
    name: str,
    main_dir: Path,
    base_report: dict[str, Any],
    main_audited: bool,
    n_bootstrap: int,
    seed: int,
    main_scores: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """report.json's ``baseline`` of the run in ``main_dir`` for its baseline ``name`` (in
    ``main_dir/baseline-<name>``, whose report is ``base_report``); the paired comparison when both runs are
    audited (``main_scores``: the main run's scores when they are not yet in its folder)."""
    summary = {
        "method": name,
        "run_dir": f"baseline-{name}",
        "task": base_report["task"],
        "compression": base_report["compression"],
        "timing": base_report["timing"],
    }
    if "audit" in base_report:
        summary["audit_worst"] = base_report["audit"]["worst"]
        if main_audited:
            base_dir = Path(main_dir) / summary["run_dir"]
            summary["comparison"] = paired_comparison(main_dir, base_dir, n_bootstrap, seed, main_scores)
    return summary


def refreshed(
    report: dict[str, Any], main_dir: Path, main_scores: dict[str, np.ndarray], n_bootstrap: int, seed: int
) -> dict[str, Any] | None:
    """The main run's ``baseline`` section rebuilt from the baseline folder as it is now and the main run's new
    audit scores (``safecompress audit`` of the main run); None when the run has no baseline, or when its folder
    cannot be read or compared (the section is then left as it was, with a warning)."""
    old = report.get("baseline")
    if not isinstance(old, dict) or not isinstance(old.get("method"), str):
        return None
    base_dir = Path(main_dir) / f"baseline-{old['method']}"
    try:
        base_report = json.loads((base_dir / "report.json").read_text())
        return baseline_summary(old["method"], main_dir, base_report, True, n_bootstrap, seed, main_scores)
    except (OSError, ValueError, KeyError, TypeError, RunFolderError) as exc:
        log.warning(
            "the baseline %s cannot be compared with this audit (%s); report.json keeps its earlier baseline "
            "section, which may be stale",
            base_dir,
            exc,
        )
        return None
