"""Model extraction and evasion curves of a dense, a RigL and a SafeCompress model (issue 19).

Trains the three models on one small setting (default: purchase100-synth, the Purchase MLP, the `default`
preset's recipe (40 epochs, at least 800 steps), density 0.05 for the sparse ones, one seed, audit off; trained by
the bench's cell runner (`safecompress.benchmark.run_cell`) into ``--cells`` — kept there and reused while the code
is the same, trained again when it changes — or a temporary folder), then attacks each with the audit's own
attack classes on its audit records (members and non-members), the attacker's population being the split's
population:

* extraction: surrogate fidelity and accuracy against the query budget, labels and probabilities modes;
* evasion: robust accuracy against ε, L∞ and L2 (white-box PGD on a seeded subset of the audit records).

It also times a cheap version of each (one budget / one ε, few steps, few records) and compares it with a
SafeCompress round, to say whether either could serve as an in-loop simulated attacker.

    python bench/beyond_curves.py [--dataset purchase100-synth] [--epochs 40] [--density 0.05] [--seed 0]
                                  [--max-queries 1000] [--threads 1] [--out bench/results] [--stem NAME]
                                  [--cells DIR]

Prints markdown tables and writes OUT/beyond_curves.md and OUT/beyond_curves.json (OUT/beyond_curves-sN.* for
seed N); bench/beyond_seeds.py summarises the seeds.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from safecompress.attacks import ATTACKS, Knowledge, Queries, target_view
from safecompress.benchmark import run_cell
from safecompress.checkpoint import load_model
from safecompress.config import load_config
from safecompress.data import load_dataset
from safecompress.data.split import MembershipSplit
from safecompress.provenance import source_hash
from safecompress.runsetup import data_context, featurised

METHODS = ("dense", "rigl", "safecompress")
CHEAP_EXTRACTION = {"budgets": [500], "modes": ["probabilities"], "epochs": 10, "min_steps": 100}
CHEAP_EVASION = {"eps_linf": [4 / 255], "eps_l2": [], "steps": 5, "max_queries": 200}


def train(method: str, args, folder: Path) -> tuple[dict, Path]:
    """The method's model, trained by the bench's cell runner in ``folder``: a folder that holds this code's
    finished run is reused, one of other code is trained again, an interrupted one resumes."""
    overrides = [
        f"data.name={args.dataset}",
        f"method.name={method}",
        f"sparse.density={1.0 if method == 'dense' else args.density}",
        f"train.epochs={args.epochs}",
        f"seed={args.seed}",
        "audit.enabled=false",
        "baseline=null",
        f"train.num_threads={args.threads}",
    ]
    cfg = load_config(preset="default", overrides=overrides)
    t0 = time.perf_counter()
    report, _ = run_cell((cfg, folder, args.threads))
    report = dict(report)
    # the run's own training time: the same whether the folder was trained now or reused
    report["bench_train_s"] = (report.get("timing") or {}).get("train_s") or round(time.perf_counter() - t0, 1)
    return report, folder


def attack(name: str, params: dict, model, ds, split: MembershipSplit, seed: int) -> tuple[dict, float]:
    X, y = torch.from_numpy(ds.X), torch.from_numpy(ds.y)
    pop = torch.as_tensor(split["population"])
    members, nonmembers = torch.as_tensor(split["audit_members"]), torch.as_tensor(split["audit_nonmembers"])
    rows = torch.cat([members, nonmembers])
    is_member = np.r_[np.ones(len(members), bool), np.zeros(len(nonmembers), bool)]
    knowledge = Knowledge(X[pop], y[pop], ds.n_classes, None, torch.device("cpu"), seed=seed, kind=ds.kind)
    queries = Queries(X[rows], y[rows], is_member, seed=seed, n_bootstrap=200)
    a = ATTACKS.get(name)(**params)
    t0 = time.perf_counter()
    result = a.fit(knowledge).evaluate(target_view(model, torch.device("cpu"), a.white_box), queries)
    return result.metrics, round(time.perf_counter() - t0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="purchase100-synth")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-queries", type=int, default=1000, help="audit records PGD attacks (a seeded subset)")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (2 on a shared 2-core machine ran 20x slower)"
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="folder for the results")
    ap.add_argument(
        "--cells",
        type=Path,
        default=None,
        help="keep the trained models here (one run folder per method and seed, reused while the code is the "
        "same, trained again when it changes); default: a temporary folder",
    )
    ap.add_argument(
        "--stem",
        default=None,
        help="file name without extension (default: beyond_curves for seed 0, beyond_curves-sN for seed N; "
        "bench/beyond_seeds.py summarises the seeds)",
    )
    args = ap.parse_args()
    stem = args.stem or ("beyond_curves" if args.seed == 0 else f"beyond_curves-s{args.seed}")
    torch.set_num_threads(args.threads)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cells = args.cells or Path(tmp)
        for method in METHODS:
            report, folder = train(method, args, cells / args.dataset / f"{method}-s{args.seed}")
            cfg = load_config(preset="default", overrides=[f"data.name={args.dataset}"])
            split = MembershipSplit.load(folder / "split.npz")
            ds = featurised(load_dataset(args.dataset, data_context(cfg)), split)
            model = load_model(folder / "model.safetensors").eval()
            rounds = (folder / "rounds.jsonl").read_text().splitlines() if (folder / "rounds.jsonl").exists() else []
            r = {
                "test_accuracy": report["task"]["accuracy"],
                "train_accuracy": report["task"]["train_accuracy"],
                "train_s": report["bench_train_s"],
                "rounds": len(rounds),
                "rounds_s": (report.get("timing") or {}).get("rounds_s"),
            }
            r["extraction"], r["extraction_s"] = attack("extraction", {}, model, ds, split, args.seed)
            r["evasion"], r["evasion_s"] = attack(
                "evasion", {"max_queries": args.max_queries}, model, ds, split, args.seed
            )
            r["cheap_extraction"], r["cheap_extraction_s"] = attack(
                "extraction", CHEAP_EXTRACTION, model, ds, split, args.seed
            )
            r["cheap_evasion"], r["cheap_evasion_s"] = attack("evasion", CHEAP_EVASION, model, ds, split, args.seed)
            results[method] = r
            print(
                method,
                {k: v for k, v in r.items() if not isinstance(v, dict)},
                "|",
                r["extraction"]["fidelity"],
                r["evasion"]["robust_accuracy"],
                flush=True,
            )
    env = {
        "code": source_hash(),  # the hashed source the numbers came from (report.json's code.source_sha256)
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "dataset": args.dataset,
        "epochs": args.epochs,
        "density": args.density,
        "seed": args.seed,
        "max_queries": args.max_queries,
    }
    lines = document(results, env)
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (args.out / f"{stem}.json").write_text(json.dumps({"env": env, "results": results}, indent=1) + "\n")


def document(results: dict[str, dict], env: dict) -> list[str]:
    first = next(iter(results.values()))
    lines = [
        f"### Extraction and evasion curves: {env['dataset']}, the `default` preset's recipe with "
        f"{env['epochs']} epochs, density {env['density']:g} (sparse), seed {env['seed']} "
        f"(code {env['code']}, torch {env['torch']}, {env['threads']} threads, python {env['python']})",
        "",
        "| model | test acc | train acc | train s | extraction s | evasion s |",
        "|---|---|---|---|---|---|",
    ]
    for m, r in results.items():
        lines.append(
            f"| {m} | {r['test_accuracy']:.4f} | {r['train_accuracy']:.4f} | {r['train_s']} | "
            f"{r['extraction_s']} | {r['evasion_s']} |"
        )
    ex = first["extraction"]
    lines += [
        "",
        f"#### Extraction: fidelity / surrogate accuracy on the {ex['records']} audit records, per query budget "
        f"(surrogate `{ex['surrogate']}` width {ex['width']:g}; population {ex['population']}; budget 0 = the "
        "untrained surrogate). `target`: the served model's own accuracy on these records (half of them its "
        "training members).",
        "",
        "| model | mode | " + " | ".join(str(p["budget"]) for p in ex["curves"]["probabilities"]) + " |",
        "|---|---|" + "---|" * len(ex["curves"]["probabilities"]),
    ]
    for m, r in results.items():
        for mode, pts in r["extraction"]["curves"].items():
            cells = " | ".join(f"{p['fidelity']:.3f} / {p['accuracy']:.3f}" for p in pts)
            lines.append(f"| {m} (target {r['extraction']['target_accuracy']:.3f}) | {mode} | {cells} |")
    lines += [
        "",
        "Headline (largest budget, probabilities) with its 95 % bootstrap interval, on members / non-members, and "
        "the fidelity of always answering the target's most frequent answer:",
        "",
        "| model | fidelity [95% CI] | members | non-members | constant answer |",
        "|---|---|---|---|---|",
    ]
    for m, r in results.items():
        e = r["extraction"]
        lo, hi = e["fidelity_ci"]
        lines.append(
            f"| {m} | {e['fidelity']:.3f} [{lo:.3f}, {hi:.3f}] | {e['fidelity_members']:.3f} | "
            f"{e['fidelity_nonmembers']:.3f} | {e['constant_fidelity']:.3f} |"
        )
    ev = first["evasion"]
    lines += [
        "",
        f"#### Evasion: robust accuracy (white-box PGD, {ev['objective']} objective, {ev['steps']} steps, random "
        f"start) on {ev['records']} audit records; clip {ev['clip']}",
        "",
    ]
    for norm, label in (("linf", "L∞"), ("l2", "L2")):
        eps = [p["eps"] for p in ev[norm]]
        lines += [
            f"| model ({label}) | clean | " + " | ".join(f"ε={e:.4g}" for e in eps) + " | checks |",
            "|---|---|" + "---|" * len(eps) + "---|",
        ]
        for m, r in results.items():
            v = r["evasion"]
            cells = " | ".join(f"{p['robust_accuracy']:.3f}" for p in v[norm])
            ok = "passed" if v["checks_passed"] else "FAILED: " + ", ".join(v["failed_checks"])
            lines.append(f"| {m} | {v['clean_accuracy']:.3f} | {cells} | {ok} |")
        lines.append("")
    lines += [
        "#### Cost, and a cheap version as an in-loop simulator?",
        "",
        f"Cheap extraction: {CHEAP_EXTRACTION}; cheap evasion: {CHEAP_EVASION}. A SafeCompress round (rounds_s / "
        "rounds) tests 4 candidates with the simulated attackers.",
        "",
        "| model | extraction s | cheap s | cheap fidelity (full) | evasion s | cheap s | cheap robust acc L∞ 4/255 "
        "(full, 20 steps) | SafeCompress s / round |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, r in results.items():
        full_at = next((p["robust_accuracy"] for p in r["evasion"]["linf"] if abs(p["eps"] - 4 / 255) < 1e-9), None)
        per_round = f"{r['rounds_s'] / r['rounds']:.1f}" if r.get("rounds") and r.get("rounds_s") else "-"
        lines.append(
            f"| {m} | {r['extraction_s']} | {r['cheap_extraction_s']} | {r['cheap_extraction']['fidelity']:.3f} "
            f"({r['extraction']['fidelity']:.3f}) | {r['evasion_s']} | {r['cheap_evasion_s']} | "
            f"{r['cheap_evasion']['robust_accuracy']['linf']:.3f} ({full_at if full_at is None else f'{full_at:.3f}'}) "
            f"| {per_round} |"
        )
    return lines


if __name__ == "__main__":
    main()
