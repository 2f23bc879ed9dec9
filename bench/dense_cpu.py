"""Dense test accuracy of each built-in dataset under a preset (default: cpu).

Runs `safecompress run --preset cpu` (in-process) once per dataset and seed, and prints a markdown
table of train/test accuracy and wall time; writes bench/results/dense_<preset>.json.

    python bench/dense_cpu.py [--preset cpu] [--seeds 0] [--datasets a,b,...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from safecompress.config import load_config
from safecompress.report.schema import RunReport
from safecompress.runner import run_experiment

DEFAULT = "purchase100-synth,texas100-synth,cifar10-synth,cifar100-synth,fashion-mnist"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--datasets", default=DEFAULT)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                cfg = load_config(
                    preset=args.preset,
                    overrides=[f"data.name={name}", f"seed={seed}", "audit.enabled=false", *args.overrides],
                )
                t0 = time.perf_counter()
                rep = RunReport.model_validate(run_experiment(cfg, Path(tmp) / f"{name}-{seed}").report)
                rows.append(
                    {
                        "dataset": name,
                        "seed": seed,
                        "model": rep.model.name,
                        "n_train": rep.data.split["train"],
                        "epochs": cfg.train.epochs,
                        "train_acc": round(rep.task.train_accuracy, 4),
                        "test_acc": round(rep.task.accuracy, 4),
                        "wall_s": round(time.perf_counter() - t0, 1),
                    }
                )
                print(rows[-1], flush=True)
    cols = list(rows[0])
    print(f"\n### dense, preset `{args.preset}`\n")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    out = Path(__file__).parent / "results" / f"dense_{args.preset}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
