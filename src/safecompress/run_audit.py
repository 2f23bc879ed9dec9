"""The audit of a run: reference models trained with the target's recipe, the audit wired to the run's data,
split, canaries and serving, and ``safecompress audit`` (re-auditing a finished run folder)."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audit_merge import Earlier, check_records_first, merge, prepare
from .auditor import (
    AuditResult,
    audit_files,
    audit_model,
    check_attacks,
    compare_runs,
    member_flags,
    score_arrays,
    write_audit,
)
from .baseline import refreshed
from .canaries import Canaries
from .checkpoint import check_model_name, load_model, save_model, trust_model_factory
from .config import RunConfig, build_config, read_yaml
from .data import ArrayDataset, load_dataset
from .data.split import MembershipSplit
from .defences import Defence, build_defence
from .errors import RunFolderError, SafeCompressError
from .fileio import atomic_write_many, json_bytes, load_npz, npz_bytes
from .methods import METHODS, MethodContext, needed_parts
from .models import ModelSpec
from .quantize import quantize_
from .report.html import write_report_html
from .report.schema import compared_folder
from .runfolder import FolderLock, read_report
from .runsetup import (
    VOCABULARY,
    check_model_vocabulary,
    check_vocabulary,
    data_context,
    featurised,
    log_to,
    model_spec,
    served_model,
    wants_augment,
)
from .train import resolve_device

log = logging.getLogger(__name__)


def reference_trainer(
    cfg: RunConfig,
    spec: ModelSpec,
    device: torch.device,
    augment: bool,
    flip: bool,
    run_dir: Path,
    split_sizes: dict[str, int] | None = None,
):
    """A function training a reference model with the target's recipe (method, density, schedule).

    A reference trains on *all* the rows it is labelled IN for. When the recipe also reads val or probe
    data, those parts come from rows that are OUT for that reference (``out=`` from the pool), sized in
    the target's proportions (``split_sizes``), so its IN label stays exactly true."""

    method_cls = METHODS.get(cfg.method.name)
    needs = needed_parts(cfg)
    defence = build_defence(cfg)  # the recipe's defence, which every reference trains with

    def train(X: torch.Tensor, y: torch.Tensor, seed: int, sensitive: np.ndarray | None = None, out=None):
        ref_cfg = cfg.model_copy(update={"seed": seed})
        if set(needs) <= {"train"} or out is None:
            X_all, y_all, s_all, parts = X, y, sensitive, {"train": np.arange(len(y))}
            if not set(needs) <= {"train"}:
                raise RuntimeError(f"method {cfg.method.name!r} needs {needs}: its references need OUT rows")
        else:
            X_out, y_out, s_out = out
            parts = reference_parts(len(y), len(y_out), needs, seed, split_sizes)
            X_all, y_all = torch.cat([X, X_out]), torch.cat([y, y_out])
            s_all = None if sensitive is None or s_out is None else np.concatenate([sensitive, s_out])
        ctx = MethodContext(
            cfg=ref_cfg,
            spec=spec,
            X=X_all,
            y=y_all,
            split=parts,
            device=device,
            augment=augment,
            flip=flip,
            run_dir=run_dir,
            defence=defence,
            record=False,
            sensitive=s_all,
        )
        result = method_cls().train(ctx)
        masks = quantize_(result.model, result.masks, cfg.quantize) if cfg.quantize != "none" else result.masks
        return result.model, masks

    train.uses_out_rows = not set(needs) <= {"train"}  # the pool then passes each reference its OUT rows
    return train


def reference_parts(
    n_in: int, n_out: int, needs: tuple[str, ...], seed: int, split_sizes: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """The split a reference model trains with, over ``n_in`` IN rows followed by ``n_out`` OUT rows.

    ``train`` is every IN row. The other parts the recipe reads (val, probe non-members) are drawn from
    the OUT rows, in the target's proportions to its training set (``split_sizes``; 15 % each when
    unknown), shrunk together if the OUT rows are too few; probe members are IN rows, as many as the
    probe non-members. No part but ``train`` and ``probe_members`` ever holds an IN row."""
    train = np.arange(n_in)
    if set(needs) <= {"train"}:
        return {"train": train}
    sizes = split_sizes or {}
    n_train_t = max(1, int(sizes.get("train", n_in)))
    wanted = {
        p: (int(round(n_in * sizes[p] / n_train_t)) if p in sizes else int(0.15 * n_in))
        for p in ("val", "probe_nonmembers")
        if p in needs or (p == "probe_nonmembers" and "probe_members" in needs)
    }
    total = sum(wanted.values())
    if total > n_out:
        log.warning(
            "reference recipe wants %d held-out rows but the pool has %d OUT rows; shrinking %s",
            total,
            n_out,
            ", ".join(wanted),
        )
        wanted = {p: int(v * n_out / total) for p, v in wanted.items()}
    order = n_in + np.random.default_rng(np.random.SeedSequence([seed, 0x7E])).permutation(n_out)
    parts: dict[str, np.ndarray] = {"train": train}
    at = 0
    for p, count in wanted.items():
        parts[p] = np.sort(order[at : at + count])
        at += count
    if "probe_members" in needs:
        k = min(n_in, len(parts.get("probe_nonmembers", ())))
        pick = np.random.default_rng(np.random.SeedSequence([seed, 0x7F])).permutation(n_in)[:k]
        parts["probe_members"] = np.sort(pick)
    return parts


def reference_server(cfg: RunConfig, device: torch.device):
    """For an inference-time defence (MemGuard): serve every reference through the same defence, fitted on
    its own members vs non-members, so black-box attacks are adaptive (they see what the target serves).
    None for training-time defences."""
    defence = build_defence(cfg)
    if type(defence).deploy is Defence.deploy:
        return None

    def serve(model, members, nonmembers, seed):
        return defence.deploy(model, members, nonmembers, seed, device)

    return serve


def split_parts(ds: ArrayDataset, split: MembershipSplit):
    """``part(name) -> (X, y)``: the tensors of one split part of ``ds``."""
    X, y = torch.from_numpy(ds.X), torch.from_numpy(ds.y)

    def part(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(split[name])
        return X[idx], y[idx]

    return part


def audit_with_config(
    cfg: RunConfig,
    spec: ModelSpec,
    ds: ArrayDataset,
    split: MembershipSplit,
    model: torch.nn.Module,
    device: torch.device,
    augment: bool,
    run_dir: Path,
    attacks: list[str] | None = None,
    refs: int | None = None,
    executor=None,
    canaries: Canaries | None = None,
    write: bool = True,
) -> AuditResult:
    """Audit ``model`` on the split's audit parts with the configured attacks; write the audit files (unless
    ``write`` is false). With ``canaries``, they leave the attacker's population and are queried beside the
    audit records."""
    part = split_parts(ds, split)
    population = split["population"] if canaries is None else np.setdiff1d(split["population"], canaries.idx)
    pop_t = torch.as_tensor(population)
    canary_q = None
    if canaries is not None:
        c = torch.as_tensor(canaries.idx)
        canary_q = (
            torch.from_numpy(ds.X)[c],
            torch.as_tensor(canaries.labels, dtype=torch.from_numpy(ds.y).dtype),
            canaries.is_member,
        )

    def save_ref(model, masks, path):
        save_model(model, spec, path, masks=masks)

    refs_dir = run_dir / "refs"
    refs_dir.mkdir(exist_ok=True)
    result = audit_model(
        model,
        part("audit_members"),
        part("audit_nonmembers"),
        (torch.from_numpy(ds.X)[pop_t], torch.from_numpy(ds.y)[pop_t]),
        attacks=attacks or cfg.audit.attacks,
        n_classes=ds.n_classes,
        train_fn=reference_trainer(cfg, spec, device, augment, ds.hflip, run_dir, split.sizes()),
        refs=refs or cfg.audit.refs,
        kind=ds.kind,
        seed=cfg.seed,
        device=device,
        cache_dir=refs_dir,
        save_fn=save_ref,
        load_fn=load_model,
        n_bootstrap=cfg.audit.bootstrap,
        attack_params=cfg.audit.attack_params,
        executor=executor,
        canaries=canary_q,
        sensitive=None
        if ds.sensitive is None
        else {
            "population": ds.sensitive[population],
            "members": ds.sensitive[split["audit_members"]],
            "nonmembers": ds.sensitive[split["audit_nonmembers"]],
            "canaries": None if canaries is None else ds.sensitive[canaries.idx],
        },
        sensitive_names=ds.sensitive_names,
        serve_fn=reference_server(cfg, device),
    )
    if write:
        write_audit(result, run_dir)
    return result


def audit_run_folder(
    run_dir: Path,
    attacks: list[str] | None = None,
    refs: int | None = None,
    compare: Path | None = None,
    executor=None,
    trust_code: bool = False,
    replace: bool = False,
) -> dict[str, Any]:
    """``safecompress audit``: (re-)audit a finished run folder and update its report.json.

    The attacks re-run replace their own entries of the run's earlier audit and the others are kept, with
    everything that depends on the set of attacks recomputed (:mod:`~safecompress.audit_merge`); ``replace``
    discards the earlier audit instead. ``refs`` defaults to the number of reference models the kept attacks
    rest on, else the run's audit.refs.

    Everything is checked before any file is written: the folder lock, report.json (a JSON object whose
    manifest matches config.yaml, split.npz and model.safetensors), the config, the model's code, the attacks
    and whether they merge with the earlier audit. The new files are written together once the audit is
    complete, report.json last, so a failed or interrupted re-audit leaves the earlier one as it was."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "split.npz", "model.safetensors", "report.json"):
        if not (run_dir / name).is_file():
            raise RunFolderError(f"{run_dir} holds no {name}; pass the folder of a finished `safecompress run`")
    with FolderLock(run_dir, "safecompress audit"):
        report = read_report(run_dir)  # refuses a corrupt report or swapped/edited files
        cfg = build_config(read_yaml(run_dir / "config.yaml"))
        check_model_name(cfg.model.name, str(run_dir / "config.yaml"), trust_code)
        if trust_code:
            trust_model_factory(cfg.model.name)
        if compare is not None and not (Path(compare) / "scores.npz").is_file():
            raise RunFolderError(f"{compare} holds no scores.npz; audit that run first")
        names = check_attacks(attacks or cfg.audit.attacks)
        earlier = None if replace else Earlier.read(run_dir, report)
        refs = prepare(earlier, names, refs, cfg.audit.refs, run_dir)
        return _audit_locked(run_dir, report, cfg, names, refs, compare, executor, trust_code, earlier)


def _audit_locked(
    run_dir: Path,
    report: dict[str, Any],
    cfg: RunConfig,
    attacks: list[str],
    refs: int,
    compare: Path | None,
    executor,
    trust_code: bool,
    earlier: Earlier | None,
) -> dict[str, Any]:
    with log_to(run_dir / "log.txt"):
        ds = load_dataset(cfg.data.name, data_context(cfg))
        split = MembershipSplit.load(run_dir / "split.npz", n_total=len(ds))
        canaries = Canaries.load(run_dir)
        ds = featurised(ds, split, canaries)  # the run's vocabulary: population less the run's canaries
        if ds.feature_state is not None:
            if (run_dir / VOCABULARY).is_file():
                check_vocabulary(run_dir / VOCABULARY, ds, "audit")
            else:
                log.warning(
                    "%s holds no %s (a run made before it was saved): its vocabulary cannot be checked",
                    run_dir,
                    VOCABULARY,
                )
        part = split_parts(ds, split)
        members_y, nonmembers_y = part("audit_members")[1], part("audit_nonmembers")[1]
        check_records_first(
            earlier,
            attacks,
            member_flags(len(members_y), len(nonmembers_y)),
            torch.cat([members_y, nonmembers_y]).numpy(),
            None if canaries is None else canaries.is_member,
        )
        device = resolve_device(cfg.train.device)
        model = load_model(run_dir / "model.safetensors", device, trust_code=trust_code)
        check_model_vocabulary(run_dir / "model.safetensors", ds)
        spec = model_spec(cfg, ds)
        augment = wants_augment(cfg, ds)
        model = served_model(build_defence(cfg), model, part, cfg.seed, device)
        t0 = time.perf_counter()
        result = audit_with_config(
            cfg, spec, ds, split, model, device, augment, run_dir, attacks, refs, executor, canaries, write=False
        )
        merged = merge(earlier, result, refs, cfg.audit.bootstrap, cfg.seed)
        report["audit"] = merged.report
        report.setdefault("timing", {})["audit_s"] = round(time.perf_counter() - t0, 3)
        scores = score_arrays(merged)
        # report.json (and audit.json) and scores.npz name the audit they belong to: their renames are not one
        # atomic step, so a re-audit killed between the two would otherwise leave scores the next merge could
        # not tell apart from the report's
        scores_id = _digest(scores)
        report["audit"]["scores_id"] = scores_id
        files = audit_files(merged)
        files["scores.npz"] = npz_bytes(**scores, scores_id=np.array(scores_id))
        ids = np.concatenate([split["audit_members"], split["audit_nonmembers"]])[merged.is_member]
        comparison = _comparison(run_dir, scores, ids, compare, earlier)
        if comparison is not None:
            files["compare.json"] = json_bytes(comparison)
            report["audit"]["compare"] = {"other": comparison["other"], "file": "compare.json"}
        baseline = refreshed(report, run_dir, scores, cfg.audit.bootstrap, cfg.seed)
        if baseline is not None:
            report["baseline"] = baseline
        files["report.json"] = json_bytes(report)  # last: until it is in place, the earlier audit stands
        atomic_write_many([(run_dir / name, data) for name, data in files.items()])
        write_report_html(run_dir)
    return report


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """A short hash of named arrays (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _comparison(
    run_dir: Path, scores: dict[str, np.ndarray], ids: np.ndarray, compare: Path | None, earlier: Earlier | None
) -> dict[str, Any] | None:
    """compare.json from the audit's scores: against ``compare``, else (a merged re-audit) against the run the
    earlier audit was compared with, when it is still there; None when there is nothing to compare with."""
    if compare is not None:
        return {"other": str(compare), "attacks": compare_runs(scores, load_npz(Path(compare) / "scores.npz"), ids)}
    other = (earlier.audit.get("compare") or {}).get("other") if earlier else None
    if not isinstance(other, str) or not other:
        return None
    folder = compared_folder(run_dir, other)
    try:
        if folder is None:
            raise SafeCompressError(f"{other} holds no scores.npz any more")
        return {"other": other, "attacks": compare_runs(scores, load_npz(folder / "scores.npz"), ids)}
    except (SafeCompressError, OSError, ValueError, KeyError) as exc:
        log.warning(
            "the earlier audit was compared with %s, which cannot be compared again (%s); the comparison is "
            "dropped (compare.json is stale): pass --compare to compare again",
            other,
            exc,
        )
        return None
