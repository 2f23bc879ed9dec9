"""Merging a re-audit into a run's earlier audit (``safecompress audit RUN --attacks ...``).

Re-auditing some attacks replaces their entries and keeps every other attack's entry exactly as it was (its
metrics in report.json, its scores in scores.npz). What depends on the set of attacks is recomputed over the
merged set: the strongest attack, the chance level of the strongest of K attacks and the strongest attack's
per-class leakage (:func:`~safecompress.auditor.strongest`), the canaries' strongest attack and the ROC figure
(the caller recomputes the paired comparisons: ``--compare`` and the baseline).

Only comparable attacks merge. Every audit of a run folder scores the same records (the run's split and
canaries) with the same seed and settings (its config.yaml), all verified by the folder's manifest; what can
differ is the reference pool: which records each reference model holds, and so every reference model, depends
on how many there are. Attacks that rest on reference models therefore merge only when they rest on the same
number. Otherwise, and when the earlier audit's scores are missing or were taken on other records,
:class:`~safecompress.errors.AuditMergeError` says so before anything is written, and ``--replace`` discards
the earlier audit instead.

``audit.provenance`` records, per attack, the reference models it rests on (0 when it uses none) and when, by
which command and which code it was audited; an attack kept from an audit that recorded no provenance (a run's
own audit) has the last three None.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .attacks import ATTACKS
from .auditor import AuditResult, canary_section, strongest
from .errors import AuditMergeError, ConfigError
from .fileio import load_npz
from .provenance import code_version
from .report.schema import attack_names

log = logging.getLogger(__name__)
COMMAND = "safecompress audit"


def rests_on(name: str, refs: int) -> int:
    """How many reference models attack ``name`` rests on in an audit with ``refs`` of them: the whole pool
    (each model depends on the pool's size) unless the attack uses none."""
    try:
        needs = ATTACKS.get(name).needs_references
    except ConfigError:  # a plugin attack that is not loaded now: assume it used the references
        return refs
    return 0 if needs == 0 else refs


@dataclass
class Earlier:
    """The audit a re-audit merges into: report.json's audit section and the arrays of its scores.npz."""

    audit: dict[str, Any]
    scores: dict[str, np.ndarray] | None  # None when scores.npz is missing or unreadable
    unreadable: str = ""  # why it is None

    @classmethod
    def read(cls, run_dir: Path, report: dict[str, Any]) -> Earlier | None:
        """The run's earlier audit; None when it has none."""
        audit = report.get("audit")
        if not isinstance(audit, dict) or not isinstance(audit.get("attacks"), dict):
            return None
        try:
            scores = load_npz(Path(run_dir) / "scores.npz")
        except (OSError, ValueError) as exc:
            return cls(audit, None, str(exc) or type(exc).__name__)
        on_file = str(scores["scores_id"]) if "scores_id" in scores else None
        if on_file != audit.get("scores_id"):  # a run's own audit records neither
            return cls(
                audit, None, "it belongs to another audit than report.json (a re-audit stopped between writing them)"
            )
        return cls(audit, scores)

    def provenance(self) -> dict[str, dict[str, Any]]:
        """Each earlier attack's provenance: as recorded, else its reference models from the audit's count."""
        recorded = self.audit.get("provenance")
        recorded = recorded if isinstance(recorded, dict) else {}
        refs = self.audit.get("references")
        unrecorded = {"audited_at": None, "command": None, "code": None}
        out = {}
        for name in attack_names(self.audit):
            entry = recorded.get(name)
            if isinstance(entry, dict) and isinstance(entry.get("references"), int):
                out[name] = entry
            else:
                out[name] = {"references": None if refs is None else rests_on(name, refs), **unrecorded}
        return out


def prepare(earlier: Earlier | None, names: list[str], refs: int | None, default_refs: int, run_dir: Path) -> int:
    """The number of reference models a re-audit with the attacks ``names`` uses, once it is known to merge
    with ``earlier``: ``refs`` when given, else the number the kept attacks rest on (so that the re-audit
    stays comparable with them), else ``default_refs`` (the run's audit.refs). Raises AuditMergeError,
    before anything is trained or written, when the attacks would not merge."""
    if earlier is None:
        return refs or default_refs
    everything = attack_names(earlier.audit)
    kept = [n for n in everything if n not in names]
    provenance = earlier.provenance()
    pools = {provenance[n]["references"] for n in kept if provenance[n]["references"]}
    if refs is None:
        refs = pools.pop() if len(pools) == 1 else default_refs
    union = ",".join(dict.fromkeys([*everything, *names]))
    how = "or pass --replace to discard the earlier audit and keep only this one"
    problem = _scores_problem(earlier, [n for n in kept if n in earlier.audit["attacks"]])
    if problem:
        raise AuditMergeError(
            f"cannot merge this re-audit into the earlier audit of {run_dir}: {problem}, so the strongest attack "
            f"over the merged attacks cannot be recomputed. Re-run every attack (--attacks {union}) {how}"
        )
    clash = sorted(
        n for n in kept if provenance[n]["references"] != refs and (provenance[n]["references"] or rests_on(n, 1))
    )
    resting = [n for n in names if rests_on(n, refs)]
    if clash and resting:
        theirs = sorted({provenance[n]["references"] or 0 for n in clash})
        fixes = [f"re-audit with their count (--refs {theirs[0]})"] if len(theirs) == 1 and theirs[0] else []
        fixes += [f"re-run them together (--attacks {union} --refs {refs})", how]
        raise AuditMergeError(
            f"cannot merge this re-audit into the earlier audit of {run_dir}: {', '.join(resting)} would rest on "
            f"{refs} reference models but {', '.join(clash)} (kept from the earlier audit) rest on "
            f"{' or '.join(str(t) if t else 'an unrecorded number of' for t in theirs)}, so the merged attacks "
            f"would not be comparable. To fix it, {', '.join(fixes)}"
        )
    return refs


def _scores_problem(earlier: Earlier, kept: list[str]) -> str | None:
    """Why the earlier audit's scores cannot stand beside the re-audit's for the kept membership attacks."""
    if not kept:
        return None
    scores = earlier.scores
    if scores is None:
        return f"its scores.npz cannot be read ({earlier.unreadable})"
    if "is_member" not in scores or "labels" not in scores:
        return "its scores.npz holds no is_member and labels"
    shape = scores["is_member"].shape
    missing = [n for n in kept if f"score_{n}" not in scores or scores[f"score_{n}"].shape != shape]
    canaries = earlier.audit.get("canaries")
    if canaries:
        on_file = (canaries.get("attacks") or {}) if "canary_is_member" in scores else {}
        missing += [f"{n} on the canaries" for n in kept if f"canary_score_{n}" not in scores or n not in on_file]
    return f"its scores.npz holds no scores of {', '.join(missing)}" if missing else None


def check_records_first(
    earlier: Earlier | None,
    names: list[str],
    is_member: np.ndarray,
    labels: np.ndarray,
    canary_is_member: np.ndarray | None,
) -> None:
    """Before any attack runs: the records a re-audit with ``names`` will score (the run's audit members, then its
    non-members, with their labels; the canaries) are those the earlier audit scored for the attacks it keeps.
    Raises AuditMergeError otherwise, so nothing is trained or written; :func:`merge` checks the scored records
    again."""
    if earlier is None or earlier.scores is None:
        return
    kept = [n for n in attack_names(earlier.audit) if n not in names and n in earlier.audit.get("attacks", {})]
    expected = AuditResult({}, {}, np.asarray(is_member), np.asarray(labels), canary_is_member=canary_is_member)
    _check_records(earlier, expected, kept)


def _check_records(earlier: Earlier, result: AuditResult, kept: list[str]) -> None:
    """The re-audit scored the records the earlier audit scored for its ``kept`` membership attacks (audit
    members, non-members, canaries)."""
    scores = earlier.scores or {}
    if not kept:
        return
    same = np.array_equal(scores["is_member"], result.is_member) and np.array_equal(scores["labels"], result.labels)
    if (result.canary_is_member is None) != ("canary_is_member" not in scores):
        same = False
    elif result.canary_is_member is not None:
        same = same and np.array_equal(scores["canary_is_member"], result.canary_is_member)
    if not same:
        raise AuditMergeError(
            "the earlier audit of this run scored other records than this re-audit (its scores.npz does not "
            "match the run's audit split and canaries), so the two cannot be merged; pass --replace to discard "
            "the earlier audit and keep only this one"
        )


def merge(earlier: Earlier | None, result: AuditResult, refs: int, n_bootstrap: int, seed: int) -> AuditResult:
    """The audit after a re-audit (``result``, with ``refs`` reference models): the earlier audit's other attacks
    kept as they were, everything that depends on the set of attacks recomputed over the merged set, and
    ``provenance`` per attack. Without an earlier audit (or when every earlier attack was re-run) it is
    ``result`` itself with the provenance added. Raises AuditMergeError when the two scored other records."""
    new = result.report
    stamp = {
        "audited_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": COMMAND,
        "code": code_version(),
    }
    fresh = {n: {"references": rests_on(n, refs), **stamp} for n in attack_names(new)}
    kept = [] if earlier is None else [n for n in attack_names(earlier.audit) if n not in fresh]
    if not kept:
        return dataclasses.replace(result, report={**new, "provenance": fresh})
    old, old_scores = earlier.audit, earlier.scores or {}
    _check_records(earlier, result, [n for n in kept if n in old["attacks"]])
    log.info("re-audited %s; kept %s from the earlier audit", ", ".join(fresh), ", ".join(kept))
    attacks: dict[str, Any] = {}
    for n in [*old["attacks"], *new["attacks"]]:  # in the earlier order, attacks new to the audit after
        if n in new["attacks"] or n in kept:
            attacks[n] = new["attacks"][n] if n in new["attacks"] else old["attacks"][n]
    scores = {n: result.scores[n] if n in result.scores else old_scores[f"score_{n}"] for n in attacks}
    worst, per_class = strongest(attacks, scores, result.is_member, result.labels, n_bootstrap, seed)
    merged = {k: v for k, v in old.items() if k != "compare"}  # a comparison is redone from the merged scores
    merged.update(attacks=attacks, worst=worst, per_class=per_class)
    for key in ("n_members", "n_nonmembers", "resolution", "timing"):
        merged[key] = new[key]
    merged.update({n: new[n] for n in fresh if n not in new["attacks"]})  # the other families re-run
    provenance = {**earlier.provenance(), **fresh}
    merged["provenance"] = {n: provenance[n] for n in attack_names(merged)}
    pools = {p["references"] for p in merged["provenance"].values() if p["references"]}
    merged["references"] = pools.pop() if len(pools) == 1 else new["references"]
    canary_scores = {}
    if result.canary_is_member is not None:
        on_file = (old.get("canaries") or {}).get("attacks") or {}
        per = {n: new["canaries"]["attacks"][n] if n in result.canary_scores else on_file[n] for n in attacks}
        canary_scores = {
            n: result.canary_scores[n] if n in result.canary_scores else old_scores[f"canary_score_{n}"]
            for n in attacks
        }
        merged["canaries"] = canary_section(per, result.canary_is_member)
    curves = {
        n: result.curves[n] if n in result.curves else (*metrics.roc_curve(s, result.is_member)[:2], attacks[n]["auc"])
        for n, s in scores.items()
    }
    return AuditResult(merged, scores, result.is_member, result.labels, curves, canary_scores, result.canary_is_member)
