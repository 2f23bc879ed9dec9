"""The independent privacy audit: attacks × model × audit data → per-attack metrics with intervals.

Members and non-members come only from ``audit_members`` / ``audit_nonmembers``; the attacker's own
data is ``population``; reference/shadow models are trained once per audit with the target's recipe
(compression method and density included) and cached in the run folder. Nothing here touches the
probe data the SafeCompress loop uses.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from . import metrics
from .attacks import ATTACKS, Knowledge, Queries, ReferencePool
from .attacks.memo import LogitsMemo
from .errors import ConfigError, SafeCompressError
from .fileio import atomic_write_many, json_bytes, npz_bytes

log = logging.getLogger(__name__)


@dataclass
class AuditResult:
    report: dict[str, Any]  # "attacks", "worst", "per_class", "timing", ...
    scores: dict[str, np.ndarray]
    is_member: np.ndarray
    labels: np.ndarray
    curves: dict[str, tuple[np.ndarray, np.ndarray, float]] = field(default_factory=dict)
    canary_scores: dict[str, np.ndarray] = field(default_factory=dict)  # per attack, on the canaries alone
    canary_is_member: np.ndarray | None = None


def member_flags(n_members: int, n_nonmembers: int) -> np.ndarray:
    """The audit queries' membership, in the order every audit scores them: the members, then the non-members."""
    return np.concatenate([np.ones(n_members, bool), np.zeros(n_nonmembers, bool)])


def check_attacks(names: Sequence[str]) -> list[str]:
    problems = []
    for name in names:
        try:
            ATTACKS.get(name)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    if not names:
        raise ConfigError(
            "no attacks to run; list some in audit.attacks or --attacks (see `safecompress list attacks`)"
        )
    if all(ATTACKS.get(n).family != "membership" for n in names):
        raise ConfigError(
            f"{', '.join(names)} need a membership attack beside them (the audit's headline); "
            f"e.g. --attacks loss,{','.join(names)}"
        )
    return list(names)


def per_class_auc(scores: np.ndarray, is_member: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUC of one attack restricted to each class (classes with both members and non-members)."""
    out = {}
    for c in np.unique(labels):
        rows = labels == c
        if 0 < is_member[rows].sum() < rows.sum():
            out[str(int(c))] = round(metrics.auc(scores[rows], is_member[rows]), 4)
    return out


def audit_model(
    model: nn.Module,
    members: tuple[torch.Tensor, torch.Tensor],
    nonmembers: tuple[torch.Tensor, torch.Tensor],
    population: tuple[torch.Tensor, torch.Tensor],
    *,
    attacks: Sequence[str],
    n_classes: int,
    train_fn: Callable[[torch.Tensor, torch.Tensor, int], tuple[nn.Module, dict | None]],
    refs: int = 4,
    kind: str = "tabular",
    seed: int = 0,
    device: torch.device | str = "cpu",
    cache_dir: Path | None = None,
    save_fn=None,
    load_fn=None,
    n_bootstrap: int = 200,
    attack_params: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
    executor=None,
    sensitive: dict[str, np.ndarray] | None = None,
    sensitive_names: list[str] | None = None,
    serve_fn=None,
    canaries: tuple[torch.Tensor, torch.Tensor, np.ndarray] | None = None,
) -> AuditResult:
    """Run every attack against ``model`` on the given members vs non-members.

    Every attack is fitted with the same knowledge and evaluated on the same queries; membership attacks'
    metrics go to ``attacks``, the other families' (attribute inference, model inversion, plugins) under
    their own name. ``sensitive`` holds the sensitive attribute's codes for "population", "members" and
    "nonmembers" (and "canaries") when the dataset has one."""
    names = check_attacks(attacks)
    # membership attacks first (the headline), then the other families, each in the order given
    names = sorted(names, key=lambda n: ATTACKS.get(n).family != "membership")
    device = torch.device(device)
    X_q = torch.cat([members[0], nonmembers[0]])
    y_q = torch.cat([members[1], nonmembers[1]])
    is_member = member_flags(len(members[1]), len(nonmembers[1]))
    n_main = len(y_q)
    if canaries is not None:  # queried with the audit records, so references hold them IN/OUT the same way
        X_q, y_q = torch.cat([X_q, canaries[0]]), torch.cat([y_q, canaries[1]])
    needed = max((ATTACKS.get(n).needs_references for n in names), default=0)
    if needed > refs:
        raise ConfigError(f"attacks {names} need at least {needed} reference models but refs={refs}; raise --refs")
    # every attack built (its parameters validated) and checked against the attacker's data before any training
    instances = {name: ATTACKS.get(name)(**(attack_params or {}).get(name, {})) for name in names}
    problems = [p for a in instances.values() for p in a.split_problems({"population": len(population[1])})]
    if problems:
        raise ConfigError(problems)
    sens = {k: (sensitive or {}).get(k) for k in ("population", "members", "nonmembers")}
    s_all = None
    if all(v is not None for v in sens.values()):
        s_all = np.concatenate([sens["population"], sens["members"], sens["nonmembers"]])
        if canaries is not None:
            s_all = np.concatenate([s_all, sensitive["canaries"]])
    pool = ReferencePool(
        train_fn,
        population[0],
        population[1],
        refs,
        seed,
        device,
        cache_dir=cache_dir,
        save_fn=save_fn,
        load_fn=load_fn,
        X_cand=X_q,
        y_cand=y_q,
        executor=executor,
        sensitive=s_all,
        serve_fn=serve_fn,
    )
    knowledge = Knowledge(
        population[0],
        population[1],
        n_classes,
        pool,
        device,
        seed,
        kind,
        s_population=sens["population"],
        sensitive_names=sensitive_names,
        memo=LogitsMemo(),  # every attack queries the same target, and several the same reference, on the same rows
    )
    s_queries = None if sens["members"] is None else np.concatenate([sens["members"], sens["nonmembers"]])
    queries = Queries(X_q, y_q, is_member, s_queries, seed, n_bootstrap)
    t_refs = time.perf_counter()
    pool.ensure(refs if any(ATTACKS.get(n).needs_references for n in names) else 0)
    timing: dict[str, float] = {"references_s": round(time.perf_counter() - t_refs, 3)}
    results: dict[str, dict[str, Any]] = {}
    others: dict[str, dict[str, Any]] = {}
    scores: dict[str, np.ndarray] = {}
    canary_scores: dict[str, np.ndarray] = {}
    curves = {}
    for name in names:
        if progress:
            progress(name)
        t0 = time.perf_counter()
        attack = instances[name]
        attack.fit(knowledge)
        result = attack.evaluate(knowledge.target_view(model, attack.white_box), queries)
        wall_s = round(time.perf_counter() - t0, 3)
        log.info("attack %-10s %s (%.1f s)", name, result.summary, wall_s)
        if attack.family != "membership":
            others[name] = {"family": attack.family, **result.metrics, "wall_s": wall_s}
            continue
        s = result.scores
        if canaries is not None:
            canary_scores[name] = s[n_main:]
        scores[name] = s = s[:n_main]
        results[name] = {**result.metrics, "wall_s": wall_s, **result.details}
        fpr, tpr, _ = metrics.roc_curve(s, is_member)
        curves[name] = (fpr, tpr, results[name]["auc"])
    worst, per_class = strongest(results, scores, is_member, y_q[:n_main].numpy(), n_bootstrap, seed)
    report = {
        "attacks": results,
        "worst": worst,
        "per_class": per_class,
        "n_members": int(is_member.sum()),
        "n_nonmembers": int((~is_member).sum()),
        "references": refs,
        "resolution": metrics.resolution_notes(int((~is_member).sum()), (0.001, 0.01, 0.1)),
        "timing": timing,
        **others,
    }
    if canaries is not None:
        report["canaries"] = canary_report(canary_scores, canaries[2], n_bootstrap, seed)
    return AuditResult(
        report,
        scores,
        is_member,
        y_q[:n_main].numpy(),
        curves,
        canary_scores,
        None if canaries is None else canaries[2],
    )


def strongest(
    results: dict[str, dict[str, Any]],
    scores: dict[str, np.ndarray],
    is_member: np.ndarray,
    labels: np.ndarray,
    n_bootstrap: int,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What depends on the whole set of membership attacks: the strongest attack (``worst``) with the chance
    level of the strongest of K attacks beside it, and the strongest attack's per-class leakage."""
    worst = metrics.worst_case(results)
    if scores:  # the strongest of K attacks sits above 0.5 by chance: report that chance level beside it
        worst["chance"] = metrics.max_auc_chance(scores, is_member, n_permutations=max(200, n_bootstrap), seed=seed)
        worst["significant"] = worst["chance"]["p_value"] < 0.05
    per_class = {"attack": worst["attack"], "auc": per_class_auc(scores[worst["attack"]], is_member, labels)}
    return worst, per_class


def canary_report(scores: dict[str, np.ndarray], is_member: np.ndarray, n_bootstrap: int, seed: int) -> dict[str, Any]:
    """Membership metrics on the canaries alone (the worst case), per attack and for the strongest; the
    TPR is given at the lowest FPR the canary non-members resolve (10 false positives) and at the standard
    levels they resolve."""
    lowest = metrics.MIN_FALSE_POSITIVES / int((~is_member).sum())
    per = {}
    for name, s in scores.items():
        m = metrics.membership_metrics(s, is_member, n_bootstrap=n_bootstrap, seed=seed)
        m["tpr_at_lowest_fpr"] = {"fpr": lowest, "tpr": metrics.tpr_at_fpr(s, is_member, lowest)}
        per[name] = m
    return canary_section(per, is_member)


def canary_section(per: dict[str, dict[str, Any]], is_member: np.ndarray) -> dict[str, Any]:
    """The canaries' part of the audit from each attack's metrics on them (:func:`canary_report`): those and
    the strongest attack over them."""
    worst = metrics.worst_case(per)
    worst["tpr_at_lowest_fpr"] = max((m["tpr_at_lowest_fpr"]["tpr"], n) for n, m in per.items())
    return {"n_members": int(is_member.sum()), "n_nonmembers": int((~is_member).sum()), "attacks": per, "worst": worst}


def score_arrays(result: AuditResult) -> dict[str, np.ndarray]:
    """scores.npz's arrays: membership, labels and each attack's per-record scores (and the canaries')."""
    arrays = {
        "is_member": result.is_member,
        "labels": result.labels,
        **{f"score_{k}": v for k, v in result.scores.items()},
    }
    if result.canary_is_member is not None:
        arrays["canary_is_member"] = result.canary_is_member
        arrays.update({f"canary_score_{k}": v for k, v in result.canary_scores.items()})
    return arrays


def audit_files(result: AuditResult) -> dict[str, bytes]:
    """The audit's files as bytes: audit.json, scores.npz (per-sample scores) and roc.png (log-log ROC curves)."""
    from .report.roc import roc_png

    return {
        "audit.json": json_bytes(result.report),
        "scores.npz": npz_bytes(**score_arrays(result)),
        "roc.png": roc_png(result.curves, title="membership inference audit"),
    }


def write_audit(result: AuditResult, folder: Path) -> None:
    """audit.json, scores.npz and roc.png (:func:`audit_files`) into ``folder``."""
    atomic_write_many([(folder / name, data) for name, data in audit_files(result).items()])


def default_reference_trainer(model: nn.Module, train_cfg=None, device: torch.device | str = "cpu"):
    """For :func:`audit` on a user's model: references are fresh copies of the model's architecture
    (parameters re-initialised) trained with ``train_cfg`` (default: Adam, 30 epochs)."""
    import copy

    from .config import TrainConfig
    from .train import Trainer

    cfg = train_cfg or TrainConfig(epochs=30, optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="constant")

    def train(X: torch.Tensor, y: torch.Tensor, seed: int):
        ref = copy.deepcopy(model)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in ref.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        Trainer(ref, cfg, seed=seed, device=torch.device(device)).fit(X, y)
        return ref.eval(), None

    return train


def audit(
    model: nn.Module,
    members,
    nonmembers,
    population,
    *,
    attacks: Sequence[str] | None = None,
    n_classes: int | None = None,
    refs: int = 4,
    train_fn=None,
    train_config=None,
    kind: str | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    n_bootstrap: int = 200,
) -> dict[str, Any]:
    """Audit your own model: ``members``/``nonmembers``/``population`` are (X, y) tensor pairs.

    Returns the same structure as report.json's ``audit`` section. Reference models come from
    ``train_fn(X, y, seed) -> (model, masks)``, by default re-initialised copies of ``model`` trained
    with ``train_config``; give your own recipe for a faithful audit (LiRA assumes it)."""
    from .config import DEFAULT_ATTACKS

    tensors = [tuple(torch.as_tensor(a) for a in pair) for pair in (members, nonmembers, population)]
    tensors = [(X.float(), y.long()) for X, y in tensors]
    if n_classes is None:
        n_classes = int(max(int(t[1].max()) for t in tensors)) + 1
    if kind is None:
        kind = "image" if tensors[0][0].dim() == 4 else "tabular"
    result = audit_model(
        model,
        tensors[0],
        tensors[1],
        tensors[2],
        attacks=list(attacks or DEFAULT_ATTACKS),
        n_classes=n_classes,
        train_fn=train_fn or default_reference_trainer(model, train_config, device),
        refs=refs,
        kind=kind,
        seed=seed,
        device=device,
        n_bootstrap=n_bootstrap,
    )
    return result.report


def compare_runs(
    scores_a: dict[str, np.ndarray], scores_b: dict[str, np.ndarray], sample_ids: np.ndarray, top: int = 20
) -> dict[str, Any]:
    """Per-sample risk of run A vs run B (same audit samples): for every attack both ran, the rank
    (percentile) of each member's score in each model, which members A exposes more than B, and by how much."""
    is_member = scores_a["is_member"]
    if not np.array_equal(is_member, scores_b["is_member"]) or not np.array_equal(
        scores_a["labels"], scores_b["labels"]
    ):
        raise SafeCompressError("the two runs were audited on different samples; compare runs that share a split")
    out: dict[str, Any] = {}
    for key in sorted(set(scores_a) & set(scores_b)):
        if not key.startswith("score_"):
            continue
        ra = _percentile_ranks(scores_a[key])[is_member]
        rb = _percentile_ranks(scores_b[key])[is_member]
        diff = ra - rb
        order = np.argsort(-diff)[:top]
        out[key[len("score_") :]] = {
            "members_more_exposed_in_this_run": float((diff > 0.05).mean()),
            "members_less_exposed_in_this_run": float((diff < -0.05).mean()),
            "rank_correlation": float(np.corrcoef(ra, rb)[0, 1]) if len(ra) > 1 else float("nan"),
            "most_exposed": [
                {
                    "sample": int(sample_ids[i]),
                    "rank_this": round(float(ra[i]), 4),
                    "rank_other": round(float(rb[i]), 4),
                }
                for i in order
            ],
        }
    return out


def _percentile_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x)) / max(1, len(x) - 1)
    return ranks
