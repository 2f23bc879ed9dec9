"""Dense vs CSR sparse inference throughput, plus packed file sizes.

For the Purchase MLP (600-1024-512-256-128-100) and the `cnn` (3x32x32, 10 classes) at densities
1, 0.2, 0.1, 0.05, 0.02 (ERK masks), batch 1 and 256, 1 and 2 threads: samples/s of the masked
dense model and of `sparse_inference(model, ...)` with every eligible layer converted (forced, to
find the break-even density honestly), and the file size of the packed fp32/fp16/int8 checkpoint.

    python bench/sparse_inference.py [--repeats 20]

Prints markdown tables and writes bench/results/sparse_inference.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from safecompress.checkpoint import save_model
from safecompress.models import ModelSpec, build_model
from safecompress.sparse.allocation import layer_counts
from safecompress.sparse.inference import CSRConv2d, CSRLinear, sparse_inference
from safecompress.sparse.masks import apply_masks, prunable_parameters, random_masks

MODELS = {"mlp": ModelSpec("mlp", (600,), 100), "cnn": ModelSpec("cnn", (3, 32, 32), 10)}
DENSITIES = (1.0, 0.2, 0.1, 0.05, 0.02)


def sparse_model(spec: ModelSpec, density: float):
    model = build_model(spec, seed=0).eval()
    params = prunable_parameters(model)
    shapes = {n: tuple(p.shape) for n, p in params.items()}
    masks = random_masks(shapes, layer_counts(shapes, density, "erk"), torch.Generator().manual_seed(0))
    apply_masks(model, masks)
    return model, masks


@torch.no_grad()
def throughput(model, x, repeats: int) -> float:
    for _ in range(3):
        model(x)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeats):
            model(x)
        best = min(best, (time.perf_counter() - t) / repeats)
    return x.shape[0] / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    rows, sizes = [], []
    for name, spec in MODELS.items():
        for density in DENSITIES:
            model, masks = sparse_model(spec, density)
            fast = sparse_inference(model, linear_max_density=1.01, conv_max_density=1.01)
            converted = sum(isinstance(m, (CSRLinear, CSRConv2d)) for m in fast.modules())
            with tempfile.TemporaryDirectory() as tmp:
                size = {
                    v: save_model(model, spec, Path(tmp) / f"{v}.st", masks=masks if density < 1 else None, values=v)
                    .stat()
                    .st_size
                    for v in ("fp32", "fp16", "int8")
                }
            sizes.append({"model": name, "density": density, **{f"{k}_bytes": v for k, v in size.items()}})
            for threads in (1, 2):
                torch.set_num_threads(threads)
                for batch in (1, 256):
                    x = torch.randn(batch, *spec.input_shape)
                    reps = args.repeats * (20 if batch == 1 else 1)
                    dense_sps = throughput(model, x, reps)
                    sparse_sps = throughput(fast, x, reps)
                    rows.append(
                        {
                            "model": name,
                            "density": density,
                            "threads": threads,
                            "batch": batch,
                            "csr_layers": converted,
                            "dense_samples_s": round(dense_sps),
                            "sparse_samples_s": round(sparse_sps),
                            "speedup": round(sparse_sps / dense_sps, 2),
                        }
                    )
                    print(rows[-1], flush=True)
    print("\n### Throughput (samples/s; all eligible layers forced to CSR)\n")
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    print("\n### Packed checkpoint size (bytes)\n")
    cols = list(sizes[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in sizes:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    out = Path(__file__).parent / "results" / "sparse_inference.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"throughput": rows, "sizes": sizes}, indent=2))


if __name__ == "__main__":
    main()
