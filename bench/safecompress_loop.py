"""SafeCompress (BMIA / WMIA / MMIA) vs RigL and dense: test accuracy, the independent audit, wall time.

Every cell is a normal `safecompress run` (in-process) with its full audit (all default attacks,
reference models trained with the cell's own recipe, audit data the training never touched). The
privacy numbers are the *strongest independent attack* per cell — never the in-loop simulator.
Finished cells are cached in bench/results/safecompress/, so an interrupted benchmark resumes;
``--workers 2`` runs two cells at once with one torch thread each.

    python bench/safecompress_loop.py [--datasets purchase100-synth,fashion-mnist,cifar100-synth]
        [--densities 0.1,0.05] [--seeds 0,1,2] [--variants dense,rigl,bmia,wmia,mmia] [--workers 2]

CPU scaling (stated in the output): purchase100-synth runs the `cpu` preset as is; the image sets
run the `cpu` preset with 8,000 pooled samples (2,000 train), 15 epochs, Adam at 3e-3 (1e-3 leaves the
5 %-dense CNN far from fitting in 15 epochs) and ΔT = 25 steps; all audits use
2 reference models. Cells are ordered seed-major so a partial run still covers every variant.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# this file is named like the package: keep its folder off the import path so `safecompress` is the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

RESULTS = Path(__file__).parent / "results"
CELLS = RESULTS / "safecompress"

VARIANTS = {
    "dense": ["method.name=dense"],
    "rigl": ["method.name=rigl"],
    "bmia": ["method.name=safecompress", "safecompress.simulate=[nn]"],
    "wmia": ["method.name=safecompress", "safecompress.simulate=[whitebox]"],
    "mmia": ["method.name=safecompress", "safecompress.simulate=[nn,whitebox]"],
    # the privacy weight λ of the objective acc − λ·(AUC − 0.5): the trade-off knob (default 1)
    "bmia-l0.5": ["method.name=safecompress", "safecompress.simulate=[nn]", "safecompress.privacy_weight=0.5"],
    "bmia-l0.25": ["method.name=safecompress", "safecompress.simulate=[nn]", "safecompress.privacy_weight=0.25"],
    # the obvious matched-accuracy comparator: RigL stopped at its best validation loss
    "rigl-es": ["method.name=rigl", "defence.name=early_stopping", "defence.params={patience: 3}"],
}
SCALE = {
    "purchase100-synth": [],
    "texas100-synth": [],
    "fashion-mnist": ["data.max_samples=8000", "train.epochs=15", "train.lr=0.003", "sparse.update_every=25"],
    "cifar100-synth": ["data.max_samples=8000", "train.epochs=15", "train.lr=0.003", "sparse.update_every=25"],
}
COMMON = ["audit.refs=2", "audit.bootstrap=100", "train.num_threads={threads}"]


def cell_key(dataset: str, variant: str, density: float, seed: int, extra: list[str]) -> str:
    tail = "-".join(o.replace("=", "_").replace("/", "_") for o in extra)
    scale = SCALE.get(dataset, [])
    tag = "-" + hashlib.sha256(json.dumps(scale).encode()).hexdigest()[:8] if scale else ""
    return f"{dataset}-{variant}-d{density}-s{seed}{tag}" + (f"-{tail}" if tail else "")


def run_cell(dataset: str, variant: str, density: float, seed: int, preset: str, extra: list[str], threads: int) -> dict:
    import torch

    from safecompress.config import load_config
    from safecompress.runner import run_experiment

    path = CELLS / f"{cell_key(dataset, variant, density, seed, extra)}.json"
    if path.exists():
        return json.loads(path.read_text())
    torch.set_num_threads(threads)
    overrides = [f"data.name={dataset}", f"sparse.density={density}", f"seed={seed}", *SCALE.get(dataset, []),
                 *VARIANTS[variant], *(c.format(threads=threads) for c in COMMON), *extra]
    cfg = load_config(preset=preset, overrides=overrides)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rep = run_experiment(cfg, Path(tmp) / "run").report
    audit = rep["audit"]
    worst = audit["worst"]
    strongest = audit["attacks"][worst["attack"]]
    row = {
        "dataset": dataset, "variant": variant, "density": density if variant != "dense" else 1.0, "seed": seed,
        "test_acc": rep["task"]["accuracy"], "train_acc": rep["task"]["train_accuracy"],
        "val_acc": rep["task"]["val_accuracy"],
        "attack": worst["attack"], "auc": worst["auc"], "auc_ci": strongest["auc_ci"],
        "tpr_at_1pct": worst["max_tpr_at_fpr"]["0.01"], "tpr_attack": worst["max_tpr_attack"]["0.01"],
        "aucs": {k: v["auc"] for k, v in audit["attacks"].items()},
        "train_s": rep["timing"]["train_s"], "audit_s": rep["timing"].get("audit_s"),
        "overhead_x": rep["timing"].get("overhead_x"), "wall_s": time.perf_counter() - t0,
        "threads": threads, "overrides": overrides,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))
    return row


def _ms(xs: list[float], digits: int = 3) -> str:
    m = statistics.mean(xs)
    return f"{m:.{digits}f} ± {statistics.stdev(xs):.{digits}f}" if len(xs) > 1 else f"{m:.{digits}f}"


def table(rows: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["density"], r["variant"]), []).append(r)
    order = list(VARIANTS)
    out = ["| dataset | density | method | seeds | test acc | Δacc vs RigL | strongest AUC | AUC−0.5 vs RigL | "
           "max TPR@1%FPR | strongest attacks | train s | overhead × |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (dataset, density, variant), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1], order.index(kv[0][2]))):
        rigl = groups.get((dataset, density, "rigl"), [])
        seeds = sorted(r["seed"] for r in rs)
        acc = [r["test_acc"] for r in rs]
        auc = [r["auc"] for r in rs]
        d_acc = ratio = "—"
        if rigl and variant not in ("rigl", "dense"):
            base = {r["seed"]: r for r in rigl}
            paired = [r for r in rs if r["seed"] in base]
            if paired:
                d_acc = f"{statistics.mean(r['test_acc'] - base[r['seed']]['test_acc'] for r in paired) * 100:+.1f} pt"
                adv = statistics.mean(r["auc"] - 0.5 for r in paired)
                adv_r = statistics.mean(base[r["seed"]]["auc"] - 0.5 for r in paired)
                ratio = f"{adv / adv_r:.2f}" if adv_r > 0 else "n/a"
        attacks = ", ".join(sorted({r["attack"] for r in rs}))
        oh = [r["overhead_x"] for r in rs if r.get("overhead_x")]
        out.append(f"| {dataset} | {density} | {variant} | {','.join(map(str, seeds))} | {_ms(acc)} | {d_acc} | "
                   f"{_ms(auc)} | {ratio} | {_ms([r['tpr_at_1pct'] for r in rs])} | {attacks} | "
                   f"{statistics.mean(r['train_s'] for r in rs):.0f} | {_ms(oh, 2) if oh else '—'} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="purchase100-synth,fashion-mnist,cifar100-synth")
    ap.add_argument("--variants", default="dense,rigl,bmia,wmia,mmia")
    ap.add_argument("--densities", default="0.1,0.05")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--report-only", action="store_true", help="tabulate the cached cells; run nothing")
    args = ap.parse_args()
    threads = 1 if args.workers > 1 else 2
    jobs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for dataset in args.datasets.split(","):
            if "dense" in args.variants.split(","):
                jobs.append((dataset, "dense", 1.0, seed))
            for density in (float(d) for d in args.densities.split(",")):
                jobs += [(dataset, v, density, seed) for v in args.variants.split(",") if v != "dense"]
    rows = []
    if args.report_only:
        jobs = [j for j in jobs if (CELLS / f"{cell_key(*j, args.overrides)}.json").exists()]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run_cell, *job, args.preset, args.overrides, threads) for job in jobs]
        for fut in futures:
            rows.append(fut.result())
            r = rows[-1]
            print(f"{r['dataset']} {r['variant']} d={r['density']} s={r['seed']}: acc {r['test_acc']:.4f} "
                  f"auc {r['auc']:.3f} ({r['attack']}) train {r['train_s']:.0f}s wall {r['wall_s']:.0f}s", flush=True)
    text = (f"### SafeCompress vs RigL vs dense — preset `{args.preset}` + per-dataset CPU scaling, audit refs 2\n\n"
            f"Mean ± std over seeds. 'strongest AUC' = the highest-AUC attack of the independent audit per cell; "
            f"'AUC−0.5 vs RigL' = (AUC−0.5) / (RigL's AUC−0.5), paired by seed (aim ≤ 0.5); Δacc aim ≥ −1.5 pt.\n\n"
            + table(rows) + "\n")
    print("\n" + text)
    (RESULTS / "safecompress.md").write_text(text)
    (RESULTS / "safecompress.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
