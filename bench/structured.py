"""Structured (channel) vs unstructured sparsity on a CNN: CPU latency and test accuracy at equal weight counts.

Trains, with the project's own pipeline (the bench's cell runner, audit off, a short Adam recipe), on Fashion-MNIST
(the `fashion-mnist` dataset when its files are under /usr/share/datasets/fashion-mnist, else `digits`):

* (a) the dense `cnn`;
* (b) unstructured RigL at each density (the model as it is served: full-size tensors with zeros);
* (c) channel RigL (`sparse.structure: channel`) at the same densities, exported as the smaller dense network
  (`safecompress.sparse.shrink.shrink`, the `structured` export format).

Density is kept weights / prunable weights in both sparse modes (channel masks also prune the input columns that
read a pruned unit, so they count exactly the smaller network's weights). For every model it records the test
accuracy (of the served / exported network itself, on the run's test rows), its parameter counts and its
latency per batch (best of 5 timed blocks after warm-up, the models taking turns) at batch 1 and 256 with 1 and 2
torch threads.

    python bench/structured.py [--densities 0.25,0.5] [--epochs 3] [--max-samples 8000] [--note TEXT]

Prints a markdown table and writes bench/results/structured.md and structured.json.
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

from safecompress.benchmark import run_cell
from safecompress.checkpoint import load_model, read_model_file
from safecompress.config import load_config
from safecompress.data import load_dataset
from safecompress.data.split import MembershipSplit
from safecompress.models import count_parameters
from safecompress.provenance import source_hash
from safecompress.runsetup import data_context
from safecompress.sparse.masks import prunable_parameters
from safecompress.sparse.shrink import shrink

RESULTS = Path(__file__).parent / "results"
FMNIST = Path("/usr/share/datasets/fashion-mnist")
SPLIT = [  # most rows to train and test: the audit is off, so the membership parts only need a few rows each
    "data.split.train=0.6",
    "data.split.test=0.2",
    "data.split.val=0.05",
    "data.split.population=0.05",
    "data.split.probe_nonmembers=0.05",
    "data.split.audit_nonmembers=0.05",
]


def dataset_name() -> str:
    return "fashion-mnist" if (FMNIST / "train-images-idx3-ubyte.gz").is_file() else "digits"


@torch.no_grad()
def latencies_ms(models: dict[str, torch.nn.Module], x: torch.Tensor, repeats: int, rounds: int) -> dict[str, float]:
    """Per model, the best over ``rounds`` timed blocks of ``repeats`` batches (ms per batch). The models take
    turns block by block, so a change in the machine's load falls on all of them alike."""
    for model in models.values():
        for _ in range(3):
            model(x)
    best = dict.fromkeys(models, float("inf"))
    for _ in range(rounds):
        for name, model in models.items():
            t = time.perf_counter()
            for _ in range(repeats):
                model(x)
            best[name] = min(best[name], (time.perf_counter() - t) / repeats * 1e3)
    return best


@torch.no_grad()
def accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    pred = torch.cat([model(X[i : i + 512]).argmax(1) for i in range(0, len(X), 512)])
    return float((pred == y).float().mean())


def train(name: str, overrides: list[str], folder: Path) -> Path:
    """The model of one run, trained by the bench's cell runner in ``folder`` (reused while the code is the same,
    trained again when it changes, resumed when interrupted)."""
    cfg = load_config(preset="cpu", overrides=overrides)
    t0 = time.perf_counter()
    run_cell((cfg, folder, torch.get_num_threads()))
    print(f"{name}: ready in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder / "model.safetensors"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--densities", default="0.25,0.5")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-samples", type=int, default=8000)
    ap.add_argument("--repeats", type=int, default=5, help="batches per timed block at batch 256 (x20 at batch 1)")
    ap.add_argument("--rounds", type=int, default=5, help="timed blocks per model and setting (the best counts)")
    ap.add_argument("--note", default="", help="a line on the machine's state, written into the results")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--cells", type=Path, default=None, help="keep the trained runs here for reuse (default: a temporary folder)"
    )
    args = ap.parse_args()
    threads_available = torch.get_num_threads()
    data = dataset_name()
    common = [
        f"data.name={data}",
        f"data.max_samples={args.max_samples}",
        *SPLIT,
        "model.name=cnn",
        f"train.epochs={args.epochs}",
        "audit.enabled=false",
        "sparse.update_every=20",
        "seed=0",
    ]
    models: dict[str, dict] = {}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"dense": ["method.name=dense"]}
        for d in (float(s) for s in args.densities.split(",")):
            runs[f"rigl d={d:g}"] = ["method.name=rigl", f"sparse.density={d}"]
            runs[f"rigl-channel d={d:g}"] = ["method.name=rigl", f"sparse.density={d}", "sparse.structure=channel"]
        split_file = None
        for name, extra in runs.items():
            folder = (args.cells or Path(tmp)) / name.replace(" ", "_").replace("=", "")
            path = train(name, [*common, *extra], folder)
            split_file = folder / "split.npz"
            model = load_model(path).eval()
            _, masks, _ = read_model_file(path)
            prunable = prunable_parameters(model)
            entry = {"served": "masked full-size model" if masks else "dense model", "units": None}
            weights = sum(p.numel() for p in prunable.values())
            kept = sum(int(m.sum()) for m in masks.values()) if masks else weights
            if "channel" in name:
                small, units = shrink(model, masks)
                entry.update(served="exported smaller dense network", units=units)
                model = small.eval()
            entry.update(
                density=round(kept / weights, 4),
                kept_weights=kept,
                parameters=count_parameters(model),
                nonzero_parameters=int(sum(int((p != 0).sum()) for p in model.parameters())),
                model=model,
            )
            models[name] = entry
        ds = load_dataset(data, data_context(load_config(preset="cpu", overrides=common)))
        split = MembershipSplit.load(split_file, n_total=len(ds))  # every run has the same split (same seed)
        test = np.asarray(split["test"])
        X, y = torch.as_tensor(ds.X[test]), torch.as_tensor(ds.y[test]).long()
    train_s = time.perf_counter() - t_start
    nets = {name: entry.pop("model") for name, entry in models.items()}
    rows = {
        name: {"model": name, **{k: v for k, v in entry.items() if k != "units"}, "test_accuracy": accuracy(net, X, y)}
        for (name, entry), net in zip(models.items(), nets.values())
    }
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch in (1, 256):
            x = torch.randn(batch, *X.shape[1:], generator=torch.Generator().manual_seed(0))
            reps = args.repeats * (20 if batch == 1 else 1)
            for name, ms in latencies_ms(nets, x, reps, args.rounds).items():
                rows[name][f"ms_b{batch}_t{threads}"] = round(ms, 3)
    rows = [{**row, "units": models[name]["units"]} for name, row in rows.items()]
    for row in rows:
        print(row, flush=True)
    dense = rows[0]
    for row in rows:
        for key in [k for k in row if k.startswith("ms_")]:
            row[f"speedup_{key[3:]}"] = round(dense[key] / row[key], 2)
    env = {
        "dataset": data,
        "n_train": len(split["train"]),
        "n_test": len(test),
        "epochs": args.epochs,
        "recipe": "preset cpu (Adam 1e-3, cosine, batch 128), sparse.update_every=20, seed 0",
        "torch": torch.__version__,
        "threads_available": threads_available,
        "cpu": platform.processor() or platform.machine(),
        "code": source_hash(),
        "train_s": round(train_s),
        "total_s": round(time.perf_counter() - t_start),
        "note": args.note,
    }
    write(args.out, env, rows)


SPEEDUPS = ("b1_t1", "b256_t1", "b1_t2", "b256_t2")


def write(out: Path, env: dict, rows: list[dict]) -> None:
    cols = ["model", "served", "density", "parameters", "test_accuracy"]
    cols += [f"ms_b{b}_t{t}" for t in (1, 2) for b in (1, 256)]
    lines = [
        "# Structured (channel) vs unstructured sparsity: CNN latency and accuracy",
        "",
        f"`python bench/structured.py` — {env['dataset']}, {env['n_train']} training / {env['n_test']} test images, "
        f"`cnn`, {env['epochs']} epochs ({env['recipe']}); torch {env['torch']}, code {env['code']}, "
        f"{env['threads_available']} threads available. {env['note']}".rstrip(),
        "",
        "Latency in ms per batch (best of the timed blocks, models taking turns), batch b and t torch threads; "
        "speed-up = dense latency / this model's. `parameters` counts every parameter of the network as served "
        "(the unstructured model keeps its full-size tensors; the channel model is the exported smaller "
        "network). Density = kept / prunable weights (channel masks also drop the input columns that read a "
        "pruned unit).",
        "",
        "| " + " | ".join([*cols, *(f"speed-up {k}" for k in SPEEDUPS)]) + " |",
        "|" + "---|" * (len(cols) + len(SPEEDUPS)),
    ]
    for r in rows:
        cells = [f"{r[c]:.4f}" if c == "test_accuracy" else str(r[c]) for c in cols]
        cells += [f"{r[f'speedup_{k}']}x" for k in SPEEDUPS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Units kept per layer by the channel models ([kept, of]):", ""]
    lines += [f"- {r['model']}: {r['units']}" for r in rows if r["units"]]
    text = "\n".join(lines) + "\n"
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "structured.md").write_text(text)
    (out / "structured.json").write_text(json.dumps({"env": env, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
