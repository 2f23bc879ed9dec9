"""TensorBoard tracker: scalars and text of one run folder as event files (``--track tensorboard``).

Scalars: ``train/<name>`` per epoch (step = epoch), SafeCompress's chosen candidate ``round/<name>`` per round
(step = round), and the task, compression, timing and audit numbers at step 0 (the same names as the MLflow
tracker's metrics). Text: the flattened config, the tags (method, dataset, seed, code_hash, ...), the
headline rows, and each round's candidate table (step = round). No files are attached: TensorBoard has no
place for report.html.

Where: ``--track-uri`` is the log dir (default ``./runs/tensorboard``, so ``tensorboard --logdir
runs/tensorboard`` shows every logged run); each logging writes the sub-folder ``<experiment>/<run folder
name>``, with ``-2``, ``-3``, ... appended when that one is taken (logging a folder again adds a run rather
than mixing two sets of events).
"""

from __future__ import annotations

import json
from pathlib import Path

from .base import TRACKERS, Tracker
from .record import RunRecord

DEFAULT_LOGDIR = Path("runs") / "tensorboard"


@TRACKERS.register("tensorboard")
class TensorBoardTracker(Tracker):
    requires = ("tensorboard",)
    default_uri = "./runs/tensorboard"

    def log(self, run: RunRecord) -> str:
        from torch.utils.tensorboard import SummaryWriter

        folder = free_folder(Path(self.uri).expanduser() if self.uri else DEFAULT_LOGDIR, self.experiment, run.name)
        writer = SummaryWriter(log_dir=str(folder))
        try:
            for row in run.history:
                epoch = int(row.get("epoch", 0))
                for key, value in row.items():
                    if key != "epoch":
                        writer.add_scalar(f"train/{key}", value, epoch)
            for step, values in run.round_metrics():
                for key, value in values.items():
                    writer.add_scalar(key, value, step)
            for i, r in enumerate(run.rounds):
                writer.add_text("rounds/candidates", _round_markdown(r), int(r.get("round", i)))
            for key, value in run.summary_metrics().items():
                writer.add_scalar(key, value, 0)
            writer.add_text("params", _markdown({k: v for k, v in run.params().items()}, ("param", "value")), 0)
            writer.add_text("tags", _markdown(run.tags(), ("tag", "value")), 0)
            headline = run.headline()
            if headline:
                writer.add_text("headline", _markdown(headline, ("", "value")), 0)
        finally:
            writer.close()
        return f"log dir {folder.resolve()}"


def free_folder(base: Path, experiment: str, name: str) -> Path:
    """``base/experiment/name``, or the first of ``name-2``, ``name-3``, ... not yet there."""
    root = base / _safe(experiment)
    folder, n = root / _safe(name), 1
    while folder.exists():
        n += 1
        folder = root / f"{_safe(name)}-{n}"
    return folder


def _safe(part: str) -> str:
    """A single path component (no separators, not '.' or '..')."""
    cleaned = "".join(c if c.isalnum() or c in "-_.+=@" else "_" for c in part).strip(".")
    return cleaned or "run"


def _cell(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(rows: dict[str, object], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in rows.items()]
    return "\n".join(lines)


def _round_markdown(r: dict) -> str:
    """One round's candidates as a markdown table (the chosen one marked)."""
    cands = r.get("candidates") or []
    attacks = sorted({a for c in cands for a in c.get("attack_auc") or {}})
    head = ["#", "chosen", "strategy", "val_accuracy", "score", *(f"AUC {a}" for a in attacks)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for j, c in enumerate(cands):
        cells = [j, "yes" if c.get("chosen") else "", c.get("strategy"), c.get("val_accuracy"), c.get("score")]
        cells += [(c.get("attack_auc") or {}).get(a) for a in attacks]
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return f"round {r.get('round')} (step {r.get('step')}):\n\n" + "\n".join(lines)
