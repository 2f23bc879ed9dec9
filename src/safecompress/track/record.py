"""A finished run folder read back for an experiment tracker: everything a tracker logs, from the files alone.

Reading the files (not the objects of a live run) lets one code path serve ``safecompress run --track``,
``safecompress audit --track`` and ``safecompress track`` on any old run folder.

The per-epoch training history is report.json's ``history`` (full precision, the epochs before a resume
restored from the checkpoint). Folders written before it was recorded there have only log.txt, where the
trainer writes one line per epoch (``epoch 3/10 loss 0.6513 acc 0.8474``, four decimals): :func:`read_history`
takes the main model's epochs from it when report.json has no ``history`` (top level or under
``method_details``).
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import safeyaml
from ..errors import RunFolderError
from ..fileio import read_limited

log = logging.getLogger(__name__)

# files a tracker may attach (MLflow artifacts), in this order, where the folder has them
ARTIFACTS = ("report.html", "report.json", "roc.png", "audit.json", "config.yaml", "rounds.jsonl")

_LIMIT = 256 << 20  # bytes read from one text file (log.txt of a very long run stays far below)

# log.txt: a run's start (runner), the trainer's epoch lines, and what follows the main training (the audit's
# reference models, the attacks, the runner's closing line, a later `safecompress audit`)
_RUN_START = re.compile(r"\bsafecompress\.runner: safecompress \S+: run in ")
_EPOCH = re.compile(r"\bsafecompress\.train: epoch (\d+)/(\d+) loss (\S+) acc (\S+)\s*$")
_RUN_END = re.compile(
    r"\bsafecompress\.(?:runner: test accuracy|runner: run in .* is already complete|attacks\.references:"
    r"|auditor:|run_audit:)"
)


@dataclass
class RunRecord:
    """One finished run folder: its report, resolved config, per-epoch history and SafeCompress rounds."""

    path: Path
    report: dict[str, Any]
    config: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)  # one dict per epoch, with "epoch"
    rounds: list[dict[str, Any]] = field(default_factory=list)  # rounds.jsonl, one dict per round

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def code_hash(self) -> str:
        return str((self.report.get("code") or {}).get("source_sha256", "unknown"))

    def tags(self) -> dict[str, str]:
        """Tags every tracker sets: method, dataset, seed, code hash (and the defence, version, folder)."""
        rep = self.report
        tags = {
            "method": str(rep.get("method", "unknown")),
            "dataset": str(rep.get("dataset", "unknown")),
            "seed": str(rep.get("seed", "unknown")),
            "code_hash": self.code_hash,
            "version": str(rep.get("version", "unknown")),
            "defence": str((rep.get("defence") or {}).get("name", "none")),
            "audited": "yes" if rep.get("audit") else "no",
            "run_dir": str(self.path),
        }
        return tags

    def params(self) -> dict[str, str]:
        """The resolved config.yaml flattened to dotted keys (``train.lr``), values as text."""
        return flatten(self.config)

    def summary_metrics(self) -> dict[str, float]:
        """The run's single-valued numbers: task, compression, timing and the audit, under ``section/name``."""
        rep = self.report
        out: dict[str, float] = {}
        for section in ("task", "compression", "timing"):
            for key, value in (rep.get(section) or {}).items():
                _put(out, f"{section}/{key}", value)
        audit = rep.get("audit") or {}
        for attack, metrics in (audit.get("attacks") or {}).items():
            for key in ("auc", "advantage", "balanced_accuracy", "auc_p"):
                _put(out, f"audit/{attack}/{key}", metrics.get(key))
            for fpr, tpr in (metrics.get("tpr_at_fpr") or {}).items():
                _put(out, f"audit/{attack}/tpr_at_fpr_{fpr}", tpr)
        worst = audit.get("worst") or {}
        _put(out, "audit/strongest/auc", worst.get("auc"))
        _put(out, "audit/strongest/auc_p", worst.get("auc_p"))
        for fpr, tpr in (worst.get("max_tpr_at_fpr") or {}).items():
            _put(out, f"audit/strongest/max_tpr_at_fpr_{fpr}", tpr)
        chance = worst.get("chance") or {}
        _put(out, "audit/strongest/chance_max_auc", chance.get("chance_max_auc"))
        _put(out, "audit/strongest/chance_p_value", chance.get("p_value"))
        for key, value in (audit.get("timing") or {}).items():
            _put(out, f"timing/audit_{key}", value)
        return out

    def headline(self) -> dict[str, str]:
        """The rows of the CLI summary and report.html (label -> figure as text); empty if report.json is
        not a valid RunReport."""
        from ..report.schema import RunReport

        try:
            rows = RunReport.model_validate(self.report).headline()
        except Exception as exc:  # an old or hand-edited report: the numbers are still logged
            log.warning("no headline for %s: %s", self.path, exc)
            return {}
        return {row.label: row.plain() for row in rows}

    def round_metrics(self) -> list[tuple[int, dict[str, float]]]:
        """(round, metrics of the chosen candidate) per SafeCompress round: val accuracy, attack AUC and
        advantage per simulated attack, score."""
        out = []
        for i, r in enumerate(self.rounds):
            step = int(r.get("round", i))
            cands = r.get("candidates") or []
            chosen = r.get("chosen")
            metrics: dict[str, float] = {}
            if isinstance(chosen, int) and 0 <= chosen < len(cands):
                c = cands[chosen]
                _put(metrics, "round/chosen", chosen)
                _put(metrics, "round/val_accuracy", c.get("val_accuracy"))
                _put(metrics, "round/score", c.get("score"))
                for attack, auc in (c.get("attack_auc") or {}).items():
                    _put(metrics, f"round/attack_auc/{attack}", auc)
                for attack, adv in (c.get("attack_advantage") or {}).items():
                    _put(metrics, f"round/attack_advantage/{attack}", adv)
            _put(metrics, "round/candidates", len(cands))
            _put(metrics, "round/train_step", r.get("step"))
            out.append((step, metrics))
        return out

    def round_table(self) -> dict[str, list]:
        """Every candidate of every round as one table, ``{"columns": [...], "data": [[...], ...]}`` (the
        "split" layout MLflow shows as a table)."""
        attacks = sorted({a for r in self.rounds for c in r.get("candidates") or [] for a in c.get("attack_auc") or {}})
        columns = ["round", "candidate", "chosen", "strategy", "val_accuracy", "score"]
        columns += [f"attack_auc/{a}" for a in attacks] + [f"attack_advantage/{a}" for a in attacks]
        data = []
        for i, r in enumerate(self.rounds):
            for j, c in enumerate(r.get("candidates") or []):
                auc, adv = c.get("attack_auc") or {}, c.get("attack_advantage") or {}
                data.append(
                    [
                        r.get("round", i),
                        j,
                        bool(c.get("chosen")),
                        json.dumps(c.get("strategy"), sort_keys=True),
                        c.get("val_accuracy"),
                        c.get("score"),
                        *(auc.get(a) for a in attacks),
                        *(adv.get(a) for a in attacks),
                    ]
                )
        return {"columns": columns, "data": data}

    def artifacts(self) -> list[Path]:
        return [self.path / name for name in ARTIFACTS if (self.path / name).is_file()]


def read_run(run_dir: str | Path) -> RunRecord:
    """The finished run folder ``run_dir``; RunFolderError (exit code 2 in the CLI) when it holds no
    readable report.json."""
    path = Path(run_dir)
    report_path = path / "report.json"
    if not path.is_dir():
        raise RunFolderError(f"{path} is not a folder; pass the folder of a finished run (safecompress run --out)")
    if not report_path.is_file():
        raise RunFolderError(
            f"{path} holds no report.json, so it is not a finished run; pass the folder a completed "
            "`safecompress run --out` wrote (an interrupted run: finish it with `safecompress run --resume`)"
        )
    report = _json(report_path)
    if not isinstance(report, dict):
        raise RunFolderError(f"{report_path} is not a JSON object; is it a safecompress report?")
    config: dict[str, Any] = {}
    if (path / "config.yaml").is_file():
        try:
            loaded = safeyaml.load(read_limited(path / "config.yaml", _LIMIT, "config.yaml"))
        except (ValueError, OSError) as exc:
            raise RunFolderError(f"{path / 'config.yaml'} cannot be read ({exc}); restore the run's config.yaml")
        config = loaded if isinstance(loaded, dict) else {}
    rounds = []
    if (path / "rounds.jsonl").is_file():
        text = read_limited(path / "rounds.jsonl", _LIMIT, "rounds.jsonl").decode("utf-8", "replace")
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rounds.append(json.loads(line))
                except ValueError as exc:
                    raise RunFolderError(f"{path / 'rounds.jsonl'} line {n} is not JSON ({exc})") from None
    return RunRecord(path.resolve(), report, config, read_history(path, report, config), rounds)


def read_history(path: Path, report: dict[str, Any], config: dict[str, Any]) -> list[dict[str, float]]:
    """Per-epoch metrics of the run's model: report.json's ``history`` where it has one, else the main
    training's epoch lines of log.txt (the last line for each epoch wins: a resumed run repeats none, a
    method training a teacher first is overwritten by the served model's own epochs)."""
    for holder in (report, report.get("method_details") or {}):
        history = holder.get("history") if isinstance(holder, dict) else None
        if isinstance(history, list) and history and all(isinstance(h, dict) for h in history):
            return [{k: float(v) for k, v in h.items() if _number(v)} for h in history]
    log_path = path / "log.txt"
    if not log_path.is_file():
        return []
    epochs = (report.get("method_details") or {}).get("epochs") or (config.get("train") or {}).get("epochs")
    by_epoch: dict[int, dict[str, float]] = {}
    in_run = False
    text = read_limited(log_path, _LIMIT, "log.txt").decode("utf-8", "replace")
    for line in text.splitlines():
        if _RUN_START.search(line):
            in_run = True
        elif _RUN_END.search(line):
            in_run = False
        elif in_run and (m := _EPOCH.search(line)):
            epoch, total = int(m.group(1)), int(m.group(2))
            if epochs is not None and total != int(epochs):
                continue  # a model of another length (a teacher, a shadow model)
            try:
                loss, acc = float(m.group(3)), float(m.group(4))
            except ValueError:
                continue
            by_epoch[epoch] = {"epoch": float(epoch), "loss": loss, "train_accuracy_running": acc}
    return [by_epoch[e] for e in sorted(by_epoch)]


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts to ``{"a.b.c": "value"}``; lists and None as JSON text."""
    out: dict[str, str] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                out.update(flatten(value, name))
            else:
                out[name] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _put(out: dict[str, float], key: str, value: Any) -> None:
    """Add ``value`` as a float if it is a finite number (None, text, NaN and booleans are left out)."""
    if _number(value):
        out[key] = float(value)


def _json(path: Path) -> Any:
    try:
        return json.loads(read_limited(path, _LIMIT, path.name))
    except (ValueError, OSError) as exc:
        raise RunFolderError(f"{path} cannot be read as JSON ({exc}); is the run folder complete?") from None
