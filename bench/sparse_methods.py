"""Test accuracy of every compression method at densities 0.2 / 0.1 / 0.05 (dense as reference).

Each cell is a normal `safecompress run` (in-process) under a preset (default `cpu`); finished cells
are cached in bench/results/sparse_methods/ so an interrupted benchmark resumes. Prints mean ± std
over seeds and wall time per method; writes bench/results/sparse_methods.json.

    python bench/sparse_methods.py [--datasets purchase100-synth,fashion-mnist] [--seeds 0,1,2]
                                   [--methods ...] [--densities 0.2,0.1,0.05] [--set train.epochs=10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from safecompress.config import load_config
from safecompress.runner import run_experiment

RESULTS = Path(__file__).parent / "results"


def cell(dataset: str, method: str, density: float, seed: int, preset: str, overrides: list[str]) -> dict:
    key = f"{dataset}-{method}-d{density}-s{seed}-{preset}-" + "-".join(o.replace("=", "_") for o in overrides)
    path = RESULTS / "sparse_methods" / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    cfg = load_config(preset=preset, overrides=[f"data.name={dataset}", f"method.name={method}",
                                                f"sparse.density={density}", f"seed={seed}", "audit.enabled=false",
                                                *overrides])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rep = run_experiment(cfg, Path(tmp) / "run").report
    row = {"dataset": dataset, "method": method, "density": density if method != "dense" else 1.0, "seed": seed,
           "test_acc": rep["task"]["accuracy"], "train_acc": rep["task"]["train_accuracy"],
           "measured_density": rep["compression"]["density"], "file_bytes": rep["compression"]["file_bytes"],
           "wall_s": time.perf_counter() - t0}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="purchase100-synth,fashion-mnist")
    ap.add_argument("--methods", default="static,set,rigl,mest,gmp,oneshot")
    ap.add_argument("--densities", default="0.2,0.1,0.05")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for dataset in args.datasets.split(","):
        for seed in seeds:
            rows.append(cell(dataset, "dense", 1.0, seed, args.preset, args.overrides))
            print(rows[-1], flush=True)
            for density in (float(d) for d in args.densities.split(",")):
                for method in args.methods.split(","):
                    rows.append(cell(dataset, method, density, seed, args.preset, args.overrides))
                    print(rows[-1], flush=True)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["density"], r["method"]), []).append(r)
    print(f"\n### Test accuracy, preset `{args.preset}` {' '.join(args.overrides)} (mean ± std over seeds {args.seeds})\n")
    print("| dataset | density | method | test acc | train acc | measured density | file KB | wall s/run |")
    print("|---|---|---|---|---|---|---|---|")
    for (dataset, density, method), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1], kv[0][2])):
        acc = [r["test_acc"] for r in rs]
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        print(f"| {dataset} | {density} | {method} | {statistics.mean(acc):.4f} ± {std:.4f} | "
              f"{statistics.mean(r['train_acc'] for r in rs):.4f} | {rs[0]['measured_density']:.4f} | "
              f"{rs[0]['file_bytes'] / 1024:.0f} | {statistics.mean(r['wall_s'] for r in rs):.1f} |")
    (RESULTS / "sparse_methods.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
