"""``safecompress run``: data → split → method → evaluation → run folder (docs/design.md §4).

The inputs are settled in :mod:`~safecompress.runsetup`, the audit is wired in :mod:`~safecompress.run_audit`;
this module trains, evaluates, saves and reports."""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from . import __version__
from .baseline import baseline_summary
from .canaries import relabelled, training_split
from .checkpoint import compression_summary, load_tensors, save_model, save_tensors, trust_model_factory
from .config import RunConfig
from .fileio import atomic_write_json
from .methods import METHODS, MethodContext
from .models import count_parameters
from .provenance import code_version
from .quantize import quantize_
from .report.html import write_report_html
from .run_audit import audit_with_config
from .runfolder import RunFolder, manifest, read_report
from .runsetup import RunSetup, log_to, prepare_run, served_model
from .train import Callback, Trainer, evaluate

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


class _Checkpointer(Callback):
    """Saves the full training state after every epoch, so ``--resume`` continues a killed run, and keeps the
    per-epoch history of the model trained last (the run's own model where a method trains a teacher first)
    for report.json."""

    def __init__(self, path: Path):
        self.path = path
        self.history: list[dict[str, float]] = []

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        tensors, meta = trainer.state_tensors()
        save_tensors(self.path, tensors, meta)

    def on_fit_end(self, trainer: Trainer) -> None:
        # every epoch, those before a resume restored from the checkpoint (also when a resumed run had no epoch
        # left: killed after its last epoch, e.g. during the audit); the model trained last wins
        self.history = [dict(h) for h in trainer.state.history]


def run_experiment(
    cfg: RunConfig, out: str | Path, mode: str = "new", callbacks: Sequence[Callback] = (), executor=None
) -> RunResult:
    """Run one configured job into the folder ``out`` and return its report."""
    t_start = time.perf_counter()
    trust_model_factory(cfg.model.name)  # the caller's own config: its factory may be rebuilt from files
    folder = RunFolder(out, mode)  # refuses a folder that is not a run, and locks it
    try:
        try:
            with log_to(folder.path("log.txt")):
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
    # the baseline method keeps the parameters it shares with the run's method (gmp -> oneshot: prune_end)
    accepted = METHODS.get(name).Params.model_fields
    params = {k: v for k, v in cfg.method.params.items() if k in accepted}
    base_cfg = cfg.model_copy(
        update={"method": cfg.method.model_copy(update={"name": name, "params": params}), "baseline": None}
    )
    log.info("baseline: %s with the same configuration", name)
    base = run_experiment(base_cfg, main.run_dir / f"baseline-{name}", "resume", callbacks, executor)
    summary = baseline_summary(name, main.run_dir, base.report, "audit" in main.report, cfg.audit.bootstrap, cfg.seed)
    if main.report.get("baseline") != summary:
        main.report["baseline"] = summary
        atomic_write_json(main.run_dir / "report.json", main.report)
        write_report_html(main.run_dir)
    return base


def _run_in(
    folder: RunFolder, cfg: RunConfig, callbacks: Sequence[Callback], t_start: float, executor=None
) -> RunResult:
    log.info("safecompress %s: run in %s (mode %s)", __version__, folder.final, folder.mode)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    setup = prepare_run(folder, cfg)
    if setup is None:
        log.info("run in %s is already complete", folder.final)
        return RunResult(folder.final, read_report(folder.work), resumed_complete=True)
    cfg, ckpt_path = setup.cfg, folder.path(CHECKPOINT)
    checkpointer = _Checkpointer(ckpt_path)
    ctx = _method_context(folder, setup, [checkpointer, *callbacks], executor)
    t_train = time.perf_counter()
    result = METHODS.get(cfg.method.name)().train(ctx)
    train_s = time.perf_counter() - t_train
    values = "fp32"
    if cfg.quantize != "none":
        result.masks, values = quantize_(result.model, result.masks, cfg.quantize), cfg.quantize
    defence = setup.defence
    served = served_model(defence, result.model, ctx.part, cfg.seed, setup.device)
    ctx.defence_report.update(getattr(defence, "fit_report", {}))
    report = _report(folder, setup, ctx, result, served, defence, values, train_s)
    report["history"] = checkpointer.history  # per-epoch loss and running train accuracy, at full precision
    if cfg.audit.enabled:
        t_audit = time.perf_counter()
        s = setup
        audit = audit_with_config(
            cfg, s.spec, s.ds, s.split, served, s.device, s.augment, folder.work, executor=executor, canaries=s.canaries
        )
        report["audit"] = audit.report
        report["timing"]["audit_s"] = round(time.perf_counter() - t_audit, 3)
    report["timing"]["total_s"] = round(time.perf_counter() - t_start, 3)
    report["manifest"] = manifest(
        folder.work
    )  # sha256 of config.yaml, split.npz, model.safetensors (+ vocabulary.json)
    atomic_write_json(folder.path("report.json"), report)
    write_report_html(folder.work)
    ckpt_path.unlink(missing_ok=True)
    log.info("test accuracy %.4f; report at %s", report["task"]["accuracy"], folder.final / "report.json")
    return RunResult(folder.final, report)


def _method_context(folder: RunFolder, setup: RunSetup, callbacks: list[Callback], executor) -> MethodContext:
    """What the method trains with: the data (canaries relabelled into their training rows), the split the
    method may read, the recipe, and a restore hook that resumes from the folder's checkpoint."""
    ckpt_path = folder.path(CHECKPOINT)

    def restore(trainer: Trainer) -> None:
        if folder.resuming and ckpt_path.exists():
            tensors, meta = load_tensors(ckpt_path)
            trainer.load_state_tensors(tensors, meta)
            log.info("resumed from %s at epoch %d", ckpt_path, trainer.state.epoch)

    ds = setup.ds
    return MethodContext(
        cfg=setup.cfg,
        spec=setup.spec,
        X=torch.from_numpy(ds.X),
        y=relabelled(torch.from_numpy(ds.y), setup.canaries),
        split=training_split(setup.split, setup.canaries),
        device=setup.device,
        augment=setup.augment,
        flip=ds.hflip,
        run_dir=folder.work,
        defence=setup.defence,
        callbacks=callbacks,
        restore=restore,
        executor=executor,
        sensitive=ds.sensitive,
    )


def _report(
    folder: RunFolder, setup: RunSetup, ctx: MethodContext, result, served, defence, values: str, train_s: float
) -> dict[str, Any]:
    """Evaluate the served model, save the compressed one, and build report.json (without the audit)."""
    cfg, ds, spec, device = setup.cfg, setup.ds, setup.spec, setup.device
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
    return {
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
            **({"vocab_size": ds.vocab_size} if ds.vocab_size else {}),
            "split": setup.split.sizes(),
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


def _method_overhead(train_s: float, parts: dict[str, float]) -> dict[str, float]:
    """A method's own extra work (SafeCompress rounds, adversarial steps) and the training time that
    remains — what a plain sparse run (RigL) at equal epochs would need — with their ratio."""
    if not parts:
        return {}
    extra = sum(parts.values())
    base = max(train_s - extra, 1e-9)
    return {**parts, "sparse_training_s": round(base, 3), "overhead_x": round(train_s / base, 3)}
