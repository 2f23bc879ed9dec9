"""What the SafeCompress loop chose, round by round: a table per loop cell of a bench folder.

Reads each loop cell's ``rounds.jsonl`` (the in-loop tests: val accuracy and simulated leakage of every
candidate) and summarises how the loop steered: how often each candidate was chosen, how far apart a round's
candidates were (in-loop AUC and val accuracy), how often the budget bound (some candidate over it, some within),
and how often no candidate met it. These are the loop's own tests, not privacy results: the audit's numbers are
in the folder's summary.md.

    python bench/loop_rounds.py /work/cells/served-xfit --out bench/results/served-xfit/rounds.md
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from safecompress.config import load_config


def _leak(cand: dict, metric: str) -> float:
    values = cand["attack_tpr"] if metric == "tpr" else cand["attack_auc"]
    return max(v for v in values.values() if v is not None)


def _label(strategy: dict) -> str:
    reg = strategy.get("regularizer", "none")
    if reg != "none":
        return f"{reg} {strategy.get('strength')}"
    return f"{strategy.get('prune', '')}/{strategy.get('grow', '')} {strategy.get('fraction', '')}".strip()


def cell_summary(cell: Path) -> dict | None:
    rounds_file = cell / "run" / "rounds.jsonl"
    if not rounds_file.exists():
        rounds_file = cell / "rounds.jsonl"
    if not rounds_file.exists() or not (rounds_file.parent / "report.json").exists():
        return None  # not a loop cell, or not finished
    rounds = [json.loads(line) for line in rounds_file.read_text().splitlines() if line.strip()]
    config_file = rounds_file.parent / "config.yaml"
    sc = load_config(config_file).safecompress.model_dump() if config_file.exists() else {}
    budget, metric = sc.get("budget"), sc.get("budget_metric", "auc")
    objective = sc.get("objective", "weighted")
    chosen: dict[str, int] = {}
    auc_spread, acc_spread, binding, none_within = [], [], 0, 0
    for r in rounds:
        cands = r["candidates"]
        label = _label(cands[r["chosen"]]["strategy"])
        chosen[label] = chosen.get(label, 0) + 1
        leaks = [_leak(c, metric) for c in cands]
        accs = [c["val_accuracy"] for c in cands]
        auc_spread.append(max(leaks) - min(leaks))
        acc_spread.append(max(accs) - min(accs))
        if objective == "budget" and budget is not None:
            within = [leak <= budget for leak in leaks]
            binding += any(within) and not all(within)
            none_within += not any(within)
    last = rounds[-1]["candidates"][rounds[-1]["chosen"]] if rounds else None
    return {
        "cell": f"{cell.parent.name}/{cell.name}",
        "rounds": len(rounds),
        "chosen": ", ".join(f"{k} ×{v}" for k, v in sorted(chosen.items())),
        "leak_spread": statistics.median(auc_spread) if auc_spread else float("nan"),
        "acc_spread": statistics.median(acc_spread) if acc_spread else float("nan"),
        "binding": binding,
        "none_within": none_within,
        "last_leak": _leak(last, metric) if last else float("nan"),
        "metric": metric,
        "budget": budget,
        "cross_fit": sc.get("cross_fit", False),
    }


def table(folder: Path) -> str:
    rows = []
    for cell in sorted(folder.glob("cells/*/*/*")):
        s = cell_summary(cell)
        if s is not None:
            rows.append(s)
    out = [
        f"### The loop's own tests, round by round ({folder.name})",
        "",
        "In-loop numbers (probe data, the loop's simulators), not privacy results. `spread`: the median over rounds "
        "of (largest − smallest) among a round's candidates. `budget bound`: rounds in which some candidates were "
        "within the budget and some over it; `none within`: rounds in which no candidate met it (the least leaky "
        "is then chosen).",
        "",
        "| cell | cross-fit | budget | rounds | chosen | leakage spread | val acc spread | budget bound | none within "
        "| last round's leakage |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        out.append(
            f"| {s['cell']} | {'yes' if s['cross_fit'] else 'no'} | {s['budget']} ({s['metric']}) | {s['rounds']} | "
            f"{s['chosen']} | {s['leak_spread']:.4f} | {s['acc_spread']:.4f} | {s['binding']} | {s['none_within']} | "
            f"{s['last_leak']:.4f} |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a bench folder (the --out of safecompress bench)")
    ap.add_argument("--out", type=Path, help="write the table here (Markdown) as well as to stdout")
    args = ap.parse_args(argv)
    text = table(args.folder)
    if args.out:
        args.out.write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
