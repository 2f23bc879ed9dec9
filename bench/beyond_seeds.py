"""Model extraction and evasion across seeds: the per-seed files of bench/beyond_curves.py summarised (issue 19).

Reads RESULTS/beyond_curves.json (seed 0) and RESULTS/beyond_curves-sN.json (seed N), refuses files written by
different code or settings, and writes RESULTS/beyond_seeds.md: per model (dense, RigL, SafeCompress), the mean over
seeds with a 95 % t-interval of test accuracy, extraction fidelity (largest query budget, probabilities) and
robust accuracy at every evasion budget; then the paired differences (SafeCompress − RigL, RigL − dense) per seed.

    python bench/beyond_seeds.py [--results bench/results]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

from scipy.stats import t as student_t

MODELS = ("dense", "rigl", "safecompress")
PAIRS = (("safecompress", "rigl"), ("rigl", "dense"))
SAME = ("code", "torch", "dataset", "epochs", "density", "max_queries")  # what every seed must share


def interval(xs: list[float]) -> str:
    m = statistics.mean(xs)
    if len(xs) < 2:
        return f"{m:.3f}"
    h = student_t.ppf(0.975, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return f"{m:.3f} [{m - h:.3f}, {m + h:.3f}]"


def measures(result: dict) -> dict[str, float]:
    """The numbers compared across seeds for one model of one seed."""
    out = {"test accuracy": result["test_accuracy"], "extraction fidelity": result["extraction"]["fidelity"]}
    for norm in ("linf", "l2"):
        for point in result["evasion"].get(norm) or []:
            out[f"robust acc {norm} {point['eps']:.4g}"] = point["robust_accuracy"]
    return out


def load(folder: Path) -> dict[int, dict]:
    runs = {}
    for path in sorted(folder.glob("beyond_curves*.json")):
        data = json.loads(path.read_text())
        runs[int(data["env"]["seed"])] = data
    if not runs:
        raise SystemExit(f"no beyond_curves*.json in {folder}: run bench/beyond_curves.py --seed N first")
    first = next(iter(runs.values()))["env"]
    differ = {k for d in runs.values() for k in SAME if d["env"].get(k) != first.get(k)}
    if differ:
        print(
            f"the seeds' files differ in {sorted(differ)}: rerun them with the same code and settings", file=sys.stderr
        )
        raise SystemExit(2)
    return runs


def document(runs: dict[int, dict]) -> list[str]:
    env = next(iter(runs.values()))["env"]
    seeds = sorted(runs)
    per = {m: [measures(runs[s]["results"][m]) for s in seeds] for m in MODELS}
    keys = list(per[MODELS[0]][0])
    lines = [
        f"### Extraction and evasion over seeds {', '.join(map(str, seeds))}: {env['dataset']}, "
        f"{env['epochs']} epochs, density {env['density']:g} (sparse) (code {env['code']}, torch {env['torch']})",
        "",
        "Mean over seeds [95 % t-interval]. Extraction fidelity: agreement of a surrogate trained on the served "
        "probabilities of the largest query budget with the target, on the audit records. Robust accuracy: white-box "
        "PGD on the audit records (half of them training members), per L∞ / L2 radius.",
        "",
        "| measure | " + " | ".join(MODELS) + " |",
        "|---|" + "---|" * len(MODELS),
    ]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(interval([p[k] for p in per[m]]) for m in MODELS) + " |")
    lines += [
        "",
        "Paired by seed (first minus second; an interval excluding 0 is a difference beyond seed noise):",
        "",
        "| measure | " + " | ".join(f"{a} − {b}" for a, b in PAIRS) + " |",
        "|---|" + "---|" * len(PAIRS),
    ]
    for k in keys:
        cells = []
        for a, b in PAIRS:
            diffs = [x[k] - y[k] for x, y in zip(per[a], per[b])]
            cells.append(interval(diffs))
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    lines = document(load(args.results))
    print("\n".join(lines))
    (args.results / "beyond_seeds.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
