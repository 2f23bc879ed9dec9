"""``safecompress run``: data → split → method → evaluation → run folder (docs/design.md §4)."""

from __future__ import annotations

import logging
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from . import __version__, metrics
from .auditor import AuditResult, audit_model, compare_runs, write_audit
from .canaries import Canaries, make_canaries, relabelled, training_split
from .checkpoint import (
    check_model_name,
    compression_summary,
    load_model,
    load_tensors,
    save_model,
    save_tensors,
    trust_model_factory,
)
from .config import RunConfig, build_config, dump_yaml, read_yaml
from .data import ArrayDataset, DataContext, load_dataset
from .data.split import MembershipSplit, make_split
from .defences import DEFENCES
from .defences.base import Defence
from .errors import ConfigError, RunFolderError
from .fileio import atomic_write_json, atomic_write_text, load_npz
from .methods import METHODS, MethodContext, needed_parts
from .models import MODELS, ModelSpec, count_parameters, model_entry
from .provenance import code_version
from .quantize import quantize_
from .report.html import write_report_html
from .runfolder import FolderLock, RunFolder, SafeFileHandler, manifest, read_report
from .train import Callback, Trainer, evaluate, resolve_device
from .validate import run_split_problems

log = logging.getLogger(__name__)
# report.json's layout: bumped when a field changes meaning or disappears (fields are only ever added within one)
REPORT_SCHEMA_VERSION = 1
CHECKPOINT = "checkpoint.safetensors"


@dataclass
class RunResult:
    run_dir: Path
    report: dict[str, Any]
    resumed_complete: bool = False  # the folder already held a finished run
    baseline: "RunResult | None" = None  # the cfg.baseline run, when one was asked for


def data_context(cfg: RunConfig) -> DataContext:
    d = cfg.data
    ctx = DataContext(
        data_dir=d.data_dir,
        download=d.download,
        path=d.path,
        label_column=d.label_column,
        sensitive_column=d.sensitive_column,
        synth_samples=d.synth_samples,
        synth_seed=d.synth_seed,
        image_size=d.image_size,
    )
    return ctx


def resolve_config(cfg: RunConfig, ds: ArrayDataset) -> RunConfig:
    """Fill the choices that depend on the data (``model.name: auto``) and check model/data fit."""
    raw = cfg.to_dict()
    if cfg.model.name == "auto":
        raw["model"]["name"] = cfg.model.auto_image if ds.kind == "image" else cfg.model.auto_tabular
    resolved = build_config(raw)
    sc = resolved.safecompress
    needs_attr = []
    if resolved.method.name == "safecompress":
        needs_attr += ["safecompress.simulate: attribute"] if "attribute" in sc.simulate else []
        needs_attr += ["safecompress.attribute_adversary"] if sc.attribute_adversary else []
    if needs_attr and ds.sensitive is None:
        raise ConfigError(
            f"{' and '.join(needs_attr)}: needs a dataset with a sensitive attribute, and {ds.name} has "
            "none; use income, cifar10-synth-attr, or your own npz/csv with data.sensitive_column"
        )
    entry = model_entry(resolved.model.name)
    if ds.kind not in entry.kinds:
        raise ConfigError(
            f"model.name={resolved.model.name!r} cannot take {ds.kind} data ({ds.name}); "
            f"choose one of: {', '.join(n for n, e in MODELS.items() if ds.kind in e.kinds)}"
        )
    return resolved


@contextmanager
def _log_to(path: Path) -> Iterator[None]:
    handler = SafeFileHandler(path, encoding="utf-8")  # never through a symlink
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    pkg = logging.getLogger("safecompress")
    old_level = pkg.level
    pkg.addHandler(handler)
    if pkg.getEffectiveLevel() > logging.INFO:
        pkg.setLevel(logging.INFO)  # console handlers keep their own level
    try:
        yield
    finally:
        pkg.removeHandler(handler)
        pkg.setLevel(old_level)
        handler.close()


class _Checkpointer(Callback):
    """Saves the full training state after every epoch, so ``--resume`` continues a killed run."""

    def __init__(self, path: Path):
        self.path = path

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        tensors, meta = trainer.state_tensors()
        save_tensors(self.path, tensors, meta)


def _config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += _config_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            diffs.append(f"{prefix}{key}: {va!r} -> {vb!r}")
    return diffs


def run_experiment(
    cfg: RunConfig, out: str | Path, mode: str = "new", callbacks: Sequence[Callback] = (), executor=None
) -> RunResult:
    """Run one configured job into the folder ``out`` and return its report."""
    t_start = time.perf_counter()
    trust_model_factory(cfg.model.name)  # the caller's own config: its factory may be rebuilt from files
    folder = RunFolder(out, mode)  # refuses a folder that is not a run, and locks it
    try:
        try:
            with _log_to(folder.path("log.txt")):
                result = _run_in(folder, cfg, callbacks, t_start, executor)
            folder.commit()
            result.run_dir = folder.final
        except BaseException:
            folder.abandon(keep=CHECKPOINT)
            raise
        if cfg.baseline:
            result.baseline = _run_baseline(cfg, result, callbacks, executor)
    finally:
        folder.release()
    return result


def _run_baseline(cfg: RunConfig, main: RunResult, callbacks: Sequence[Callback], executor=None) -> RunResult:
    """Train and audit ``cfg.baseline`` with the same config into RUN/baseline-<name> (resumable), and
    record where it is and its headline numbers in the main report."""
    name = cfg.baseline
    base_cfg = cfg.model_copy(update={"method": cfg.method.model_copy(update={"name": name}), "baseline": None})
    log.info("baseline: %s with the same configuration", name)
    base = run_experiment(base_cfg, main.run_dir / f"baseline-{name}", "resume", callbacks, executor)
    summary = {
        "method": name,
        "run_dir": f"baseline-{name}",
        "task": base.report["task"],
        "compression": base.report["compression"],
        "timing": base.report["timing"],
    }
    if "audit" in base.report:
        summary["audit_worst"] = base.report["audit"]["worst"]
        if "audit" in main.report:
            summary["comparison"] = paired_comparison(main.run_dir, base.run_dir, cfg.audit.bootstrap, cfg.seed)
    if main.report.get("baseline") != summary:
        main.report["baseline"] = summary
        atomic_write_json(main.run_dir / "report.json", main.report)
        write_report_html(main.run_dir)
    return base


def paired_comparison(run_a: Path, run_b: Path, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Run A vs run B on the same audit records (their scores.npz): paired bootstrap of ΔAUC and
    ΔTPR@1 %FPR per attack and for the strongest attack, with verdicts (metrics.paired_difference)."""
    a, b = load_npz(Path(run_a) / "scores.npz"), load_npz(Path(run_b) / "scores.npz")
    if not np.array_equal(a["is_member"], b["is_member"]) or not np.array_equal(a["labels"], b["labels"]):
        raise RunFolderError(
            f"{run_a} and {run_b} were audited on different records; compare runs that share a "
            "split (same data, seed and data.split) and the same audit.canaries"
        )
    strip = lambda d: {k[len("score_") :]: d[k] for k in d if k.startswith("score_")}  # noqa: E731
    return metrics.paired_difference(strip(a), strip(b), a["is_member"], n_bootstrap=max(n_bootstrap, 200), seed=seed)


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
    defence = DEFENCES.get(cfg.defence.name)(**cfg.defence.params)
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
) -> AuditResult:
    """Audit ``model`` on the split's audit parts with the configured attacks; write the audit files.
    With ``canaries``, they leave the attacker's population and are queried beside the audit records."""
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
    write_audit(result, run_dir)
    return result


def _run_in(
    folder: RunFolder, cfg: RunConfig, callbacks: Sequence[Callback], t_start: float, executor=None
) -> RunResult:
    log.info("safecompress %s: run in %s (mode %s)", __version__, folder.final, folder.mode)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    ds = load_dataset(cfg.data.name, data_context(cfg))
    log.info(
        "dataset %s: %d samples, shape %s, %d classes (%s)", ds.name, len(ds), ds.input_shape, ds.n_classes, ds.source
    )
    cfg = resolve_config(cfg, ds)

    config_path, report_path = folder.path("config.yaml"), folder.path("report.json")
    if folder.resuming and config_path.exists():
        saved = read_yaml(config_path)
        diffs = _config_differences(saved, cfg.to_dict())
        if diffs:
            raise RunFolderError(
                f"cannot resume {folder.final}: its run used a different configuration ({'; '.join(diffs)}). "
                "Use --overwrite to replace it or choose another --out"
            )
        if report_path.exists():
            log.info("run in %s is already complete", folder.final)
            return RunResult(folder.final, read_report(folder.work), resumed_complete=True)
    atomic_write_text(config_path, dump_yaml(cfg))
    folder.record("config.yaml")

    split_path = folder.path("split.npz")
    if folder.resuming and split_path.exists():
        split = MembershipSplit.load(split_path, n_total=len(ds))
    else:
        seed = cfg.data.split.seed if cfg.data.split.seed is not None else cfg.seed
        split = make_split(len(ds), cfg.data.split, seed, cfg.data.max_samples)
        split.save(split_path)
        folder.record("split.npz")
    log.info("split sizes: %s", split.sizes())
    problems = [
        *DEFENCES.get(cfg.defence.name)(**cfg.defence.params).split_problems(split.sizes()),
        *run_split_problems(cfg, split.sizes()),
    ]
    if problems:
        raise ConfigError(problems)
    canaries = Canaries.load(folder.work) if folder.resuming else None
    if canaries is None and cfg.audit.canaries:
        canaries = make_canaries(split, ds.y, ds.n_classes, cfg.audit.canaries, split.seed)
        canaries.save(folder.work)

    device = resolve_device(cfg.train.device)
    augment = cfg.train.augment is True or (cfg.train.augment == "auto" and ds.kind == "image")
    if augment and ds.kind != "image":
        raise ConfigError("train.augment=true needs image data (crop+flip); use train.augment=auto or false for tables")
    spec = ModelSpec(cfg.model.name, ds.input_shape, ds.n_classes, cfg.model.width, cfg.model.norm)
    ckpt_path = folder.path(CHECKPOINT)

    def restore(trainer: Trainer) -> None:
        if folder.resuming and ckpt_path.exists():
            tensors, meta = load_tensors(ckpt_path)
            trainer.load_state_tensors(tensors, meta)
            log.info("resumed from %s at epoch %d", ckpt_path, trainer.state.epoch)

    ctx = MethodContext(
        cfg=cfg,
        spec=spec,
        X=torch.from_numpy(ds.X),
        y=relabelled(torch.from_numpy(ds.y), canaries),
        split=training_split(split, canaries),
        device=device,
        augment=augment,
        flip=ds.hflip,
        run_dir=folder.work,
        callbacks=[_Checkpointer(ckpt_path), *callbacks],
        restore=restore,
        executor=executor,
        sensitive=ds.sensitive,
    )
    t_train = time.perf_counter()
    result = METHODS.get(cfg.method.name)().train(ctx)
    train_s = time.perf_counter() - t_train
    values = "fp32"
    if cfg.quantize != "none":
        result.masks, values = quantize_(result.model, result.masks, cfg.quantize), cfg.quantize

    defence = ctx.defence()
    served = served_model(defence, result.model, ctx.part, cfg.seed, device)
    ctx.defence_report.update(getattr(defence, "fit_report", {}))
    bs = cfg.train.eval_batch_size
    scores = {part: evaluate(served, *ctx.part(part), device, bs) for part in ("train", "val", "test")}
    model_path = save_model(
        result.model,
        spec,
        folder.path("model.safetensors"),
        masks=result.masks,
        values=values,
        extra={"method": cfg.method.name, "run_manifest": manifest(folder.work, ("config.yaml", "split.npz"))},
    )
    compression = {**compression_summary(result.model, result.masks, model_path.stat().st_size, spec), "values": values}
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "method": cfg.method.name,
        "defence": {"name": cfg.defence.name, "params": defence.params, **ctx.defence_report},
        "dataset": ds.name,
        "seed": cfg.seed,
        "version": __version__,
        "code": code_version(),
        "task": {
            "accuracy": scores["test"]["accuracy"],
            "train_accuracy": scores["train"]["accuracy"],
            "val_accuracy": scores["val"]["accuracy"],
            "test_loss": scores["test"]["loss"],
            "train_loss": scores["train"]["loss"],
        },
        "compression": compression,
        "model": {
            "name": spec.name,
            "parameters": count_parameters(result.model),
            "width": spec.width,
            "norm": spec.norm,
        },
        "data": {
            "name": ds.name,
            "kind": ds.kind,
            "synthetic": ds.synthetic,
            "source": ds.source,
            "n_samples": len(ds),
            "input_shape": list(ds.input_shape),
            "n_classes": ds.n_classes,
            "split": split.sizes(),
        },
        "method_details": result.report,
        "environment": {
            "device": str(device),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
        },
        "timing": {"train_s": round(train_s, 3), **_method_overhead(train_s, result.report.get("timing", {}))},
    }
    if cfg.audit.enabled:
        t_audit = time.perf_counter()
        audit = audit_with_config(
            cfg, spec, ds, split, served, device, augment, folder.work, executor=executor, canaries=canaries
        )
        report["audit"] = audit.report
        report["timing"]["audit_s"] = round(time.perf_counter() - t_audit, 3)
    report["timing"]["total_s"] = round(time.perf_counter() - t_start, 3)
    report["manifest"] = manifest(folder.work)  # sha256 of config.yaml, split.npz, model.safetensors
    atomic_write_json(report_path, report)
    write_report_html(folder.work)
    ckpt_path.unlink(missing_ok=True)
    log.info("test accuracy %.4f; report at %s", report["task"]["accuracy"], folder.final / "report.json")
    return RunResult(folder.final, report)


def served_model(defence, model: torch.nn.Module, part, seed: int, device: torch.device) -> torch.nn.Module:
    """The model as served: ``model`` under the defence's inference-time wrapper (MemGuard), fitted on
    the run's train (members) vs val (held-out) parts; ``model`` itself for training-time defences."""
    return defence.deploy(model, part("train"), part("val"), seed, device)


def _method_overhead(train_s: float, parts: dict[str, float]) -> dict[str, float]:
    """A method's own extra work (SafeCompress rounds, adversarial steps) and the training time that
    remains — what a plain sparse run (RigL) at equal epochs would need — with their ratio."""
    if not parts:
        return {}
    extra = sum(parts.values())
    base = max(train_s - extra, 1e-9)
    return {**parts, "sparse_training_s": round(base, 3), "overhead_x": round(train_s / base, 3)}


def audit_run_folder(
    run_dir: Path,
    attacks: list[str] | None = None,
    refs: int | None = None,
    compare: Path | None = None,
    executor=None,
    trust_code: bool = False,
) -> dict[str, Any]:
    """``safecompress audit``: (re-)audit a finished run folder and update its report.json.

    Everything is checked before any file is written: the folder lock, report.json (a JSON object whose
    manifest matches config.yaml, split.npz and model.safetensors), the config, the model's code."""
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
        return _audit_locked(run_dir, report, cfg, attacks, refs, compare, executor, trust_code)


def _audit_locked(
    run_dir: Path, report: dict[str, Any], cfg: RunConfig, attacks, refs, compare, executor, trust_code: bool
) -> dict[str, Any]:
    report_path = run_dir / "report.json"
    with _log_to(run_dir / "log.txt"):
        ds = load_dataset(cfg.data.name, data_context(cfg))
        split = MembershipSplit.load(run_dir / "split.npz", n_total=len(ds))
        device = resolve_device(cfg.train.device)
        model = load_model(run_dir / "model.safetensors", device, trust_code=trust_code)
        spec = ModelSpec(cfg.model.name, ds.input_shape, ds.n_classes, cfg.model.width, cfg.model.norm)
        augment = cfg.train.augment is True or (cfg.train.augment == "auto" and ds.kind == "image")
        model = served_model(
            DEFENCES.get(cfg.defence.name)(**cfg.defence.params), model, split_parts(ds, split), cfg.seed, device
        )
        t0 = time.perf_counter()
        result = audit_with_config(
            cfg,
            spec,
            ds,
            split,
            model,
            device,
            augment,
            run_dir,
            attacks,
            refs,
            executor,
            canaries=Canaries.load(run_dir),
        )
        report["audit"] = result.report
        report.setdefault("timing", {})["audit_s"] = round(time.perf_counter() - t0, 3)
        if compare is not None:
            other = Path(compare) / "scores.npz"
            ids = np.concatenate([split["audit_members"], split["audit_nonmembers"]])[result.is_member]
            comparison = compare_runs(load_npz(run_dir / "scores.npz"), load_npz(other), ids)
            atomic_write_json(run_dir / "compare.json", {"other": str(compare), "attacks": comparison})
            report["audit"]["compare"] = {"other": str(compare), "file": "compare.json"}
        atomic_write_json(report_path, report)
        write_report_html(run_dir)
    return report
