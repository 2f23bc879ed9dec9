"""How the cost of SafeCompress scales compared with RigL: training time and peak memory vs width and data.

Two sweeps at one density (default 0.05), audit off, one torch thread:

* width — model.width over ``--widths`` (default 0.25,0.5,1,2) with ``--train-fixed`` training samples;
* data  — data.split.train (a count) over ``--train-sizes`` (default 1000,2000,4000,8000) at ``--width-fixed``.

Every other part of the split is a fixed count (val 1000, test 1000, population 2000, probe and audit
non-members 250 each; probe/audit members balanced, so 250 each drawn from train), so only the
training set grows along the data axis; the fixed parts plus the largest train size must fit in
data.max_samples (20,000 under the `cpu` preset). Each cell is a fresh ``python -m safecompress run``
subprocess, so its peak resident memory (ru_maxrss from os.wait4) belongs to that run alone; time is
report.json timing.train_s (for SafeCompress also timing.rounds_s, the test-driven rounds). The memory
floor of a process that only imports torch and safecompress is measured once and subtracted in the
"above floor" column. Finished cells are cached in RESULTS/scaling/, so an interrupted sweep resumes.

Per method and axis the growth exponent is the least-squares slope of log(cost) vs log(size)
(numpy.polyfit); a second table gives those exponents and the SafeCompress/RigL time ratio per size.
Writes RESULTS/scaling.md and RESULTS/scaling.json (RESULTS defaults to bench/results).

    python bench/scaling.py [--dataset purchase100-synth] [--epochs 10] [--seed 0] [--density 0.05]
        [--widths 0.25,0.5,1,2] [--train-sizes 1000,2000,4000,8000] [--train-fixed 2000] [--width-fixed 1]
        [--methods rigl,safecompress] [--preset cpu] [--set KEY=VALUE ...] [--results DIR]

Smoke test: ``python bench/scaling.py --epochs 1 --widths 0.25,0.5 --train-sizes 500,1000 --results /tmp/x``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from safecompress.report.schema import RunReport

RESULTS = Path(__file__).parent / "results"
# every split part but train is a fixed count, so the data axis grows the training set only
FIXED_SPLIT = [
    "data.split.val=1000",
    "data.split.test=1000",
    "data.split.population=2000",
    "data.split.probe_nonmembers=250",
    "data.split.audit_nonmembers=250",
    "data.split.probe_members=null",
    "data.split.audit_members=null",
]
METHODS = ("rigl", "safecompress")


def run_measured(cmd: list[str], log: Path) -> tuple[int, float]:
    """Run cmd in a fresh process; return (exit code, peak resident memory in MiB) of that process alone."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen the child has been reaped
    kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024  # macOS reports bytes
    return proc.returncode, kib / 1024


def memory_floor(cells: Path) -> float:
    """Peak MiB of a process that only imports torch and the package (cached)."""
    path = cells / "floor.json"
    if path.exists():
        return json.loads(path.read_text())["peak_mib"]
    with tempfile.TemporaryDirectory() as tmp:
        rc, peak = run_measured([sys.executable, "-c", "import torch, safecompress.runner"], Path(tmp) / "log")
    if rc != 0:
        raise SystemExit("could not import torch and safecompress in a subprocess")
    path.write_text(json.dumps({"peak_mib": peak}))
    return peak


def cell(cells: Path, args: argparse.Namespace, method: str, axis: str, width: float, train: int) -> dict:
    overrides = [
        f"data.name={args.dataset}",
        f"method.name={method}",
        f"model.width={width}",
        f"data.split.train={train}",
        *FIXED_SPLIT,
        f"sparse.density={args.density}",
        f"train.epochs={args.epochs}",
        f"seed={args.seed}",
        "train.num_threads=1",
        "audit.enabled=false",
        "baseline=null",
        *args.overrides,
    ]
    tag = hashlib.sha256(json.dumps([args.preset, overrides]).encode()).hexdigest()[:10]
    path = cells / f"{args.dataset}-{method}-w{width}-n{train}-e{args.epochs}-s{args.seed}-{tag}.json"
    if path.exists():
        return {**json.loads(path.read_text()), "axis": axis}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [
            sys.executable,
            "-m",
            "safecompress",
            "run",
            "--preset",
            args.preset,
            *(x for o in overrides for x in ("--set", o)),
            "--out",
            str(out),
            "--overwrite",
        ]
        rc, peak = run_measured(cmd, Path(tmp) / "log")
        if rc != 0 or not (out / "report.json").exists():
            tail = (Path(tmp) / "log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"run failed (exit {rc}): {' '.join(cmd)}\n{tail}")
        rep = RunReport.load(out)
    timing = rep.timing
    row = {
        "dataset": args.dataset,
        "method": method,
        "width": width,
        "train": rep.data.split["train"],
        "parameters": rep.model.parameters,
        "epochs": args.epochs,
        "seed": args.seed,
        "train_s": timing.train_s,
        "rounds_s": timing.rounds_s,
        "overhead_x": timing.overhead_x,
        "peak_mib": round(peak, 1),
        "test_acc": rep.task.accuracy,
    }
    path.write_text(json.dumps(row))
    return {**row, "axis": axis}


def exponent(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) vs log(x); None with < 2 usable points."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y is not None and y > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    return float(np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)[0])


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "–" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="purchase100-synth")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--widths", default="0.25,0.5,1,2")
    ap.add_argument("--train-sizes", default="1000,2000,4000,8000", help="training-set sizes (counts)")
    ap.add_argument("--train-fixed", type=int, default=2000, help="training samples along the width axis")
    ap.add_argument("--width-fixed", type=float, default=1.0, help="model.width along the data axis")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="extra config override for every run (e.g. data.max_samples=30000)",
    )
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder for cells, scaling.md and scaling.json")
    args = ap.parse_args()
    methods = args.methods.split(",")
    widths = [float(w) for w in args.widths.split(",")]
    sizes = [int(n) for n in args.train_sizes.split(",")]
    cells = args.results / "scaling"
    cells.mkdir(parents=True, exist_ok=True)
    floor = memory_floor(cells)

    rows = []
    for axis, points in (
        ("width", [(w, args.train_fixed) for w in widths]),
        ("data", [(args.width_fixed, n) for n in sizes]),
    ):
        for width, train in points:
            for method in methods:
                rows.append(cell(cells, args, method, axis, width, train))
                print({k: rows[-1][k] for k in ("axis", "method", "width", "train", "train_s", "peak_mib")}, flush=True)

    size_of = {"width": lambda r: r["width"], "data": lambda r: r["train"]}
    lines = [
        f"### Cost scaling on {args.dataset}: preset `{args.preset}`, density {args.density}, "
        f"{args.epochs} epochs, seed {args.seed}, 1 thread, audit off {' '.join(args.overrides)}",
        "",
        f"Memory floor (python + torch + safecompress imported): {floor:.0f} MiB.",
        "",
        "| axis | width | train | parameters | method | train s | SC rounds s | overhead × | peak MiB "
        "| above floor MiB | test acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['axis']} | {r['width']:g} | {r['train']} | {r['parameters']} | {r['method']} | "
            f"{r['train_s']:.2f} | {fmt(r['rounds_s'])} | {fmt(r['overhead_x'])} | {r['peak_mib']:.0f} | "
            f"{r['peak_mib'] - floor:.0f} | {r['test_acc']:.4f} |"
        )

    fits = []
    lines += [
        "",
        "### Growth exponents (slope of log cost vs log size) and SafeCompress/RigL time ratio",
        "",
        "| axis | method | time exp | peak-mem exp | above-floor-mem exp | time ratio SC/RigL per size |",
        "|---|---|---|---|---|---|",
    ]
    for axis in ("width", "data"):
        ax = [r for r in rows if r["axis"] == axis]
        by = {(m, size_of[axis](r)): r for m in methods for r in ax if r["method"] == m}
        xs = sorted({size_of[axis](r) for r in ax})
        ratios = {
            x: by[("safecompress", x)]["train_s"] / by[("rigl", x)]["train_s"]
            for x in xs
            if ("safecompress", x) in by and ("rigl", x) in by and by[("rigl", x)]["train_s"] > 0
        }
        ratio_txt = ", ".join(f"{x:g}: {v:.2f}×" for x, v in ratios.items()) or "–"
        for m in methods:
            mr = [by[(m, x)] for x in xs if (m, x) in by]
            fit = {
                "axis": axis,
                "method": m,
                "sizes": [size_of[axis](r) for r in mr],
                "time_exp": exponent([size_of[axis](r) for r in mr], [r["train_s"] for r in mr]),
                "mem_exp": exponent([size_of[axis](r) for r in mr], [r["peak_mib"] for r in mr]),
                "mem_above_floor_exp": exponent([size_of[axis](r) for r in mr], [r["peak_mib"] - floor for r in mr]),
                "time_ratio_sc_over_rigl": {str(x): round(v, 3) for x, v in ratios.items()},
            }
            fits.append(fit)
            lines.append(
                f"| {axis} | {m} | {fmt(fit['time_exp'])} | {fmt(fit['mem_exp'])} | "
                f"{fmt(fit['mem_above_floor_exp'])} | {ratio_txt if m == 'safecompress' else ''} |"
            )

    text = "\n".join(lines) + "\n"
    print("\n" + text)
    (args.results / "scaling.md").write_text(text)
    (args.results / "scaling.json").write_text(
        json.dumps(
            {
                "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "fixed_split": FIXED_SPLIT,
                "memory_floor_mib": floor,
                "rows": rows,
                "fits": fits,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
