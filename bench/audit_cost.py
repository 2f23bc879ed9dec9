"""What a run's privacy audit costs, stage by stage, at two commits (issue 18: a cheaper audit).

The same run — texas100-synth (6,169 binary features, 100 classes), the cpu recipe on 10,000 pooled samples,
RigL at density 0.05, 2 reference models, 400 canaries and frontier-texas's attacks (loss, entropy, m_entropy,
nn, lira, rmia, grad_norm) — is made with the package source of each commit (``git archive`` of its ``src/``;
``worktree`` is the source this script sits in, uncommitted edits included), one after the other, each in a
fresh process. From each run's report.json: training, the reference models, every attack (its fit, queries and
metrics), the rest of the audit (the strongest-of-K chance level, per-class AUCs, the canaries' metrics, the
audit files) and the audit in all; and whether every number of the two audits is the same.

    python bench/audit_cost.py [--before 44578f9] [--after worktree] [--epochs 30] [--out bench/results]

Prints a markdown table and writes OUT/audit_cost.md and OUT/audit_cost.json. Timings are wall-clock seconds on
whatever else the machine is running: both runs share its load (the load averages are recorded), never compare
them with another machine's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ATTACKS = ["loss", "entropy", "m_entropy", "nn", "lira", "rmia", "grad_norm"]
SETTINGS = [
    "data.name=texas100-synth",
    "data.max_samples=10000",
    "sparse.density=0.05",
    "method.name=rigl",
    "audit.refs=2",
    "audit.canaries=400",
    f"audit.attacks=[{','.join(ATTACKS)}]",
]
# report.json entries that are timings or name the code, not results of the audit
NOT_RESULTS = {"wall_s", "timing", "code", "source_sha256"}


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout.strip()


def source(ref: str, into: Path) -> tuple[Path, str]:
    """(a folder to put on PYTHONPATH, what it is): a commit's src/ via git archive, or this worktree's."""
    if ref == "worktree":
        dirty = " + uncommitted edits" if git("status", "--porcelain", "--", "src") else ""
        return REPO / "src", f"{git('rev-parse', '--short=12', 'HEAD')}{dirty}"
    commit = git("rev-parse", "--short=12", ref)
    data = subprocess.run(["git", "-C", str(REPO), "archive", commit, "src"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src", commit


def run(src: Path, out: Path, epochs: int) -> dict:
    """One `safecompress run` with the source in ``src``; its report.json and the process's wall time."""
    cmd = [sys.executable, "-m", "safecompress", "run", "--preset", "cpu", "--out", str(out)]
    for s in [*SETTINGS, f"train.epochs={epochs}"]:
        cmd += ["--set", s]
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=out.parent, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    return {"report": json.loads((out / "report.json").read_text()), "wall_s": round(wall, 3)}


def stages(report: dict) -> dict[str, float]:
    """Seconds per stage from report.json."""
    audit = report["audit"]
    attacks = {f"attack {k}": float(v["wall_s"]) for k, v in audit["attacks"].items()}
    references = float(audit["timing"]["references_s"])
    total = float(report["timing"]["audit_s"])
    return {
        "training (the target)": float(report["timing"]["train_s"]),
        "reference models": references,
        **attacks,
        "rest of the audit": round(total - references - sum(attacks.values()), 3),
        "audit in all": total,
    }


def results(entry, path: str = "") -> dict[str, object]:
    """The audit section's leaves (path -> value), without timings and code names."""
    if isinstance(entry, dict):
        out: dict[str, object] = {}
        for k, v in entry.items():
            if k not in NOT_RESULTS:
                out.update(results(v, f"{path}/{k}"))
        return out
    if isinstance(entry, list):
        out = {}
        for i, v in enumerate(entry):
            out.update(results(v, f"{path}[{i}]"))
        return out
    return {path: entry}


def compare(a: dict, b: dict) -> dict[str, object]:
    """How the two audits' numbers differ: the leaves that differ and the largest absolute difference."""
    ra, rb = results(a["audit"]), results(b["audit"])
    differ = sorted(k for k in set(ra) | set(rb) if ra.get(k) != rb.get(k))
    numeric = [
        abs(float(ra[k]) - float(rb[k]))
        for k in differ
        if isinstance(ra.get(k), (int, float)) and isinstance(rb.get(k), (int, float))
    ]
    return {
        "leaves": len(set(ra) | set(rb)),
        "differ": differ,
        "max_abs_difference": max(numeric, default=0.0),
        "test_accuracy_equal": a.get("test_accuracy") == b.get("test_accuracy"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="44578f9", help="commit whose source makes the first run")
    ap.add_argument("--after", default="worktree", help="commit for the second run (worktree: this source)")
    ap.add_argument("--epochs", type=int, default=30, help="train.epochs of the target and every reference")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="folder for the results")
    args = ap.parse_args()
    import torch

    load = [os.getloadavg()]
    sides = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, ref in (("before", args.before), ("after", args.after)):
            folder = Path(tmp) / label
            folder.mkdir()
            src, what = source(ref, folder / "code")
            print(f"{label}: {what} ...", flush=True)
            got = run(src, folder / "run", args.epochs)
            load.append(os.getloadavg())
            sides[label] = {"commit": what, "code": got["report"]["code"]["source_sha256"], **got}
    before, after = (sides[k]["report"] for k in ("before", "after"))
    rows = {"before": stages(before), "after": stages(after)}
    same = compare(before, after)
    env = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1_5_15": [[round(x, 2) for x in one] for one in load],  # at the start and after each run
        "epochs": args.epochs,
        "settings": SETTINGS,
        **{f"{k}_commit": sides[k]["commit"] for k in sides},
        **{f"{k}_code": sides[k]["code"] for k in sides},
    }
    lines = [
        f"### Audit cost by stage (texas100-synth, cpu recipe at {args.epochs} epochs, 10,000 samples, RigL d=0.05, "
        f"2 references, 400 canaries; torch {env['torch']}, {env['threads']} threads, {env['cpus']} CPUs, "
        f"python {env['python']})",
        "",
        f"Before: commit {env['before_commit']} (code {env['before_code']}); after: {env['after_commit']} "
        f"(code {env['after_code']}). Wall-clock seconds, one run each, one after the other on a machine also "
        f"running other work (load averages 1/5/15 min at the start and after each run: "
        f"{'; '.join(' '.join(f'{x:g}' for x in one) for one in env['load_average_1_5_15'])}).",
        "",
        "| stage | before s | after s | after / before |",
        "|---|---|---|---|",
    ]
    for stage in rows["before"]:
        b, a = rows["before"][stage], rows["after"].get(stage, float("nan"))
        lines.append(f"| {stage} | {b:.1f} | {a:.1f} | {a / b if b else float('nan'):.3f} |")
    audit_vs_train = {k: rows[k]["audit in all"] / rows[k]["training (the target)"] for k in rows}
    lines += [
        "",
        f"Audit / training: before {audit_vs_train['before']:.2f}, after {audit_vs_train['after']:.2f}.",
        "",
        (
            f"Result numbers: all {same['leaves']} entries of the audit section (timings and code names aside) are "
            "identical."
            if not same["differ"]
            else f"Result numbers: {len(same['differ'])} of {same['leaves']} audit entries differ (largest absolute "
            f"difference {same['max_abs_difference']:.3g}): {', '.join(same['differ'][:20])}."
        )
        + (" Test accuracy identical." if same["test_accuracy_equal"] else " Test accuracy DIFFERS."),
    ]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "audit_cost.md").write_text(text)
    payload = {"environment": env, "stages": rows, "audit_over_training": audit_vs_train, "results": same}
    (args.out / "audit_cost.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
