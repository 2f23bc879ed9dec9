"""Local vs Dask executor: wall time of a LiRA audit with 16 reference models, and Dask's per-task overhead.

One trained run (dense MLP on purchase100-synth, `ci` preset) is audited with ``lira`` and 16
reference models three ways: local with 1 torch thread, local with 2 threads, and a 2-worker Dask
LocalCluster on 127.0.0.1 (1 thread per worker). The reference cache is cleared before each audit.
The scheduling overhead is the mean wall time per task of mapping a no-op over 200 tasks.

    python bench/executor.py [--refs 16] [--dataset purchase100-synth] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def _noop(x):
    return x


def main() -> None:
    import torch

    from safecompress.config import load_config
    from safecompress.executor import make_executor
    from safecompress.report.schema import RunReport
    from safecompress.run_audit import audit_run_folder
    from safecompress.runner import run_experiment

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refs", type=int, default=16)
    ap.add_argument("--dataset", default="purchase100-synth")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        cfg = load_config(
            preset="ci", overrides=[f"data.name={args.dataset}", "method.name=dense", "audit.enabled=false"]
        )
        run_experiment(cfg, run)
        aucs = {}
        for label, name, threads in (
            ("local, 1 thread", "local", 1),
            ("local, 2 threads", "local", 2),
            ("dask, 2 workers x 1 thread", "dask", 1),
        ):
            shutil.rmtree(run / "refs", ignore_errors=True)
            torch.set_num_threads(threads)
            with make_executor(name, workers=2) as ex:
                t0 = time.perf_counter()
                audit = RunReport.model_validate(audit_run_folder(run, ["lira"], args.refs, executor=ex)).audit
                wall = time.perf_counter() - t0
            aucs[label] = audit.attacks["lira"].auc
            rows.append(
                {
                    "executor": label,
                    "refs": args.refs,
                    "wall_s": round(wall, 1),
                    "references_s": audit.timing["references_s"],
                    "lira_auc": aucs[label],
                }
            )
            print(rows[-1], flush=True)
        with make_executor("dask", workers=2) as ex:
            ex.map(_noop, list(range(20)))  # warm up
            t0 = time.perf_counter()
            ex.map(_noop, list(range(200)))
            overhead_ms = (time.perf_counter() - t0) / 200 * 1000
    lines = [
        f"### LiRA audit with {args.refs} reference models ({args.dataset}, dense MLP, `ci` preset)",
        "",
        "| executor | wall s | reference training s | LiRA AUC |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['executor']} | {r['wall_s']} | {r['references_s']} | {r['lira_auc']:.4f} |" for r in rows]
    lines += ["", f"Dask scheduling overhead: {overhead_ms:.2f} ms per task (200 no-op tasks, 2 local workers).", ""]
    text = "\n".join(lines)
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "executor.md").write_text(text)
    (args.out / "executor.json").write_text(json.dumps({"rows": rows, "overhead_ms_per_task": overhead_ms}, indent=2))


if __name__ == "__main__":
    main()
