"""The attack loop of an outside audit: every planned attack fitted on the attacker's knowledge (the
population, when given, as its known non-members; the reference models trained from a recipe, when given —
see :mod:`.recipe`) and evaluated on members vs non-members,
with the same metrics, strongest-attack summary, chance level and per-class AUC as a run's audit, into an
:class:`~safecompress.auditor.AuditResult` (so :func:`~safecompress.auditor.write_audit` writes its files)."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..attacks import ATTACKS, Knowledge, Queries, ReferencePool
from ..auditor import AuditResult, strongest
from ..errors import ConfigError, SafeCompressError
from .data import Pair, records_kind

log = logging.getLogger(__name__)


def run_attacks(
    model: nn.Module,
    members: Pair,
    nonmembers: Pair,
    population: Pair | None,
    names: list[str],
    skipped: dict[str, str],
    *,
    n_classes: int,
    seed: int = 0,
    device: torch.device | str = "cpu",
    n_bootstrap: int = 200,
    attack_params: dict[str, dict[str, Any]] | None = None,
    references: ReferencePool | None = None,
) -> AuditResult:
    """Run ``names`` (already planned) against ``model``; an attack that still turns out to need references
    when fitted joins ``skipped`` with the reason. ``references``: the pool of reference models (not yet
    trained; trained here, before the first attack, when an attack needs them)."""
    device = torch.device(device)
    X_q = torch.cat([members[0], nonmembers[0]])
    y_q = torch.cat([members[1], nonmembers[1]])
    is_member = np.concatenate([np.ones(len(members[1]), bool), np.zeros(len(nonmembers[1]), bool)])
    if population is None:
        population = (X_q[:0], y_q[:0])
    instances = {name: ATTACKS.get(name)(**(attack_params or {}).get(name, {})) for name in names}
    if references is not None:
        _check_references(instances, references.n_models, len(population[1]))
    knowledge = Knowledge(population[0], population[1], n_classes, references, device, seed, records_kind(X_q))
    queries = Queries(X_q, y_q, is_member, None, seed, n_bootstrap)
    references_s = 0.0
    trained = references is not None and any(a.needs_references for a in instances.values())
    if trained:
        t_refs = time.perf_counter()
        references.ensure(references.n_models)
        references_s = round(time.perf_counter() - t_refs, 3)
    results: dict[str, dict[str, Any]] = {}
    others: dict[str, dict[str, Any]] = {}
    scores: dict[str, np.ndarray] = {}
    curves = {}
    for name in sorted(names, key=lambda n: ATTACKS.get(n).family != "membership"):
        t0 = time.perf_counter()
        attack = instances[name]
        try:
            attack.fit(knowledge)
        except ConfigError as exc:  # e.g. a plugin attack that turns out to need reference models
            skipped[name] = "; ".join(exc.problems)
            log.info("attack %s skipped: %s", name, skipped[name])
            continue
        result = attack.evaluate(knowledge.target_view(model, attack.white_box), queries)
        wall_s = round(time.perf_counter() - t0, 3)
        log.info("attack %-10s %s (%.1f s)", name, result.summary, wall_s)
        if attack.family != "membership":
            others[name] = {"family": attack.family, **result.metrics, "wall_s": wall_s}
            continue
        scores[name] = s = result.scores
        results[name] = {**result.metrics, "wall_s": wall_s, **result.details}
        fpr, tpr, _ = metrics.roc_curve(s, is_member)
        curves[name] = (fpr, tpr, results[name]["auc"])
    if not results:
        raise SafeCompressError("no membership attack could run on this model: " + "; ".join(skipped.values()))
    worst, per_class = strongest(results, scores, is_member, y_q.numpy(), n_bootstrap, seed)  # as a run's audit
    report = {
        "attacks": results,
        "worst": worst,
        "per_class": per_class,
        "n_members": int(is_member.sum()),
        "n_nonmembers": int((~is_member).sum()),
        "references": references.n_models if trained else 0,  # trained only when a planned attack needs them
        "resolution": metrics.resolution_notes(int((~is_member).sum()), (0.001, 0.01, 0.1)),
        "timing": {"references_s": references_s},
        **others,
        "skipped": dict(skipped),
    }
    return AuditResult(report, scores, is_member, y_q.numpy(), curves)


def _check_references(instances: dict[str, Any], refs: int, n_population: int) -> None:
    """Before any reference trains: enough of them for every attack, and a population each attack can use."""
    short = sorted(name for name, a in instances.items() if a.needs_references > refs)
    problems = [
        f"attack {name!r} needs {instances[name].needs_references} reference models but {refs} are trained; "
        "raise --refs (or audit.refs in the recipe)"
        for name in short
    ]
    problems += [p for a in instances.values() for p in a.split_problems({"population": n_population})]
    if problems:
        raise ConfigError(problems)
