"""Every attack against undefended dense and RigL (density 0.05) models.

Each cell is a normal `safecompress run` with the full audit (all attacks, `--refs` reference
models trained with the target's recipe). Prints AUC and TPR at 0.1 % / 1 % FPR with 95 % bootstrap
intervals and each attack's wall time; finished cells are cached in bench/results/attack_strength/.

    python bench/attack_strength.py [--datasets purchase100-synth,cifar100-synth,fashion-mnist]
                                    [--methods dense,rigl] [--refs 4] [--set train.epochs=15]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from safecompress.config import load_config
from safecompress.runner import run_experiment

RESULTS = Path(__file__).parent / "results"


def cell(dataset: str, method: str, refs: int, preset: str, overrides: list[str]) -> dict:
    key = f"{dataset}-{method}-r{refs}-{preset}-" + "-".join(o.replace("=", "_") for o in overrides)
    path = RESULTS / "attack_strength" / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    cfg = load_config(preset=preset, overrides=[f"data.name={dataset}", f"method.name={method}", "sparse.density=0.05",
                                                f"audit.refs={refs}", *overrides])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rep = run_experiment(cfg, Path(tmp) / "run").report
    row = {"dataset": dataset, "method": method, "test_acc": rep["task"]["accuracy"],
           "train_acc": rep["task"]["train_accuracy"], "audit": rep["audit"], "wall_s": time.perf_counter() - t0}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))
    return row


def fmt(value: float, ci) -> str:
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="purchase100-synth,cifar100-synth,fashion-mnist")
    ap.add_argument("--methods", default="dense,rigl")
    ap.add_argument("--refs", type=int, default=4)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args()
    rows = []
    for dataset in args.datasets.split(","):
        for method in args.methods.split(","):
            rows.append(cell(dataset, method, args.refs, args.preset, args.overrides))
            print(dataset, method, f"acc {rows[-1]['test_acc']:.4f}", flush=True)
    print(f"\n### Attack strength, preset `{args.preset}` {' '.join(args.overrides)}, {args.refs} reference models, "
          "audit members vs non-members (95% bootstrap CI)\n")
    print("| dataset | method | test acc | attack | AUC | TPR@0.1% FPR | TPR@1% FPR | attack s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        for name, m in sorted(r["audit"]["attacks"].items(), key=lambda kv: -kv[1]["tpr_at_fpr"]["0.01"]):
            ci = m.get("tpr_at_fpr_ci") or {}
            print(f"| {r['dataset']} | {r['method']} | {r['test_acc']:.3f} | {name} | {fmt(m['auc'], m.get('auc_ci'))} | "
                  f"{fmt(m['tpr_at_fpr']['0.001'], ci.get('0.001'))} | {fmt(m['tpr_at_fpr']['0.01'], ci.get('0.01'))} | "
                  f"{m['wall_s']:.1f} |")
    print("\nreference-model training time per cell (s): " + ", ".join(
        f"{r['dataset']}/{r['method']}: {r['audit']['timing']['references_s']:.0f}" for r in rows))
    (RESULTS / "attack_strength.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
