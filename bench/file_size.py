"""Packed model file sizes vs dense fp32 and vs the entropy bound (issue 18).

The Purchase MLP (600-1024-512-256-128-100) and the zoo `cnn` (3x32x32, 10 classes) at densities
0.01, 0.05, 0.1, 0.2, with random masks (uniform density per layer, seeded): the bytes of the packed
file with fp32 and fp16 values (each mask in its smallest coding, and with raw 1-bit masks as before
issue 18) and of the dense fp32 file, the ratio to dense fp32, bytes per non-zero, and the entropy
bound beside each: H(d) bits per prunable weight + the value bits per kept weight + 32 bits per
unpruned parameter (no header).

    python bench/file_size.py [--seed 0] [--out bench/results]

Prints a markdown table and writes OUT/file_size.md and OUT/file_size.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
from collections import Counter
from pathlib import Path

import torch

from safecompress.checkpoint import load_tensors, read_model_file, save_model
from safecompress.models import ModelSpec, build_model
from safecompress.provenance import source_hash
from safecompress.sparse.allocation import layer_counts
from safecompress.sparse.masks import apply_masks, prunable_parameters, random_masks
from safecompress.sparse.packing import MASK_CODINGS

MODELS = {"mlp": ModelSpec("mlp", (600,), 100), "cnn": ModelSpec("cnn", (3, 32, 32), 10)}
DENSITIES = (0.01, 0.05, 0.1, 0.2)
VALUE_BITS = {"fp32": 32, "fp16": 16}


def entropy(d: float) -> float:
    """H(d) in bits."""
    return 0.0 if d <= 0 or d >= 1 else -(d * math.log2(d) + (1 - d) * math.log2(1 - d))


def sparse_model(spec: ModelSpec, density: float, seed: int):
    model = build_model(spec, seed=seed).eval()
    params = prunable_parameters(model)
    shapes = {n: tuple(p.shape) for n, p in params.items()}
    masks = random_masks(shapes, layer_counts(shapes, density, "uniform"), torch.Generator().manual_seed(seed))
    apply_masks(model, masks)
    return model, masks


def bound_bytes(model, masks, value_bits: int) -> float:
    """Entropy bound of the file's data: H(d_layer) per prunable weight, value bits per kept weight, and
    every other state-dict entry at its own size."""
    bits = 0.0
    for name, value in model.state_dict().items():
        if name in masks:
            n, k = masks[name].numel(), int(masks[name].sum())
            bits += n * entropy(k / n) + k * value_bits
        else:
            bits += value.numel() * value.element_size() * 8
    return bits / 8


def codings(path: Path) -> str:
    """How many packed weights use each mask coding, e.g. "runs 5"."""
    tensors, _ = load_tensors(path)
    used = Counter(c for k in tensors for c in MASK_CODINGS if k.endswith(f"::{c}"))
    return ", ".join(f"{c} {used[c]}" for c in MASK_CODINGS if used[c])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="seed of the weights and of the random masks")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="folder for the results")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in MODELS.items():
            for density in DENSITIES:
                model, masks = sparse_model(spec, density, args.seed)
                dense = save_model(model, spec, Path(tmp) / "dense.st").stat().st_size
                kept = sum(int(m.sum()) for m in masks.values())
                other = sum(v.numel() for k, v in model.state_dict().items() if k not in masks)
                prunable = sum(m.numel() for m in masks.values())
                for values, vbits in VALUE_BITS.items():
                    path = save_model(model, spec, Path(tmp) / f"{values}.st", masks=masks, values=values)
                    size = path.stat().st_size
                    raw = (
                        save_model(
                            model, spec, Path(tmp) / "raw.st", masks=masks, values=values, mask_codings=("bits",)
                        )
                        .stat()
                        .st_size
                    )
                    state, got, _ = read_model_file(path)
                    assert all(torch.equal(got[n], masks[n]) for n in masks)
                    if values == "fp32":  # bit-exact
                        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
                    bound = bound_bytes(model, masks, vbits)
                    rows.append(
                        {
                            "model": name,
                            "density": density,
                            "values": values,
                            "prunable": prunable,
                            "nonzeros": kept + other,
                            "dense_fp32_bytes": dense,
                            "bytes": size,
                            "header_bytes": 8 + int.from_bytes(path.read_bytes()[:8], "little"),
                            "ratio": round(dense / size, 2),
                            "bytes_per_nonzero": round(size / (kept + other), 3),
                            "raw_bits_bytes": raw,
                            "raw_bits_ratio": round(dense / raw, 2),
                            "bound_bytes": round(bound),
                            "bound_ratio": round(dense / bound, 2),
                            "bound_bytes_per_nonzero": round(bound / (kept + other), 3),
                            "above_bound_pct": round(100 * (size / bound - 1), 1),
                            "entropy_bits_per_weight": round(entropy(density), 4),
                            "codings": codings(path),
                        }
                    )
                    print(rows[-1], flush=True)
    env = {
        "code": source_hash(),  # the hashed source the numbers came from (report.json's code.source_sha256)
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "seed": args.seed,
    }
    lines = [
        f"### Packed file size vs dense fp32 and the entropy bound (code {env['code']}, torch {env['torch']}, "
        f"{env['threads']} threads, "
        f"python {env['python']}, seed {args.seed})",
        "",
        "Random masks with the same density in every prunable layer. `bytes`: the packed file (each mask in its "
        "smallest coding); `raw bits`: the same with 1-bit masks (the format before issue 18); `bound`: "
        "H(d) bits per prunable weight + value bits per kept weight + unpruned parameters as stored, no header. "
        "Ratios are dense fp32 bytes / bytes; per nnz: bytes / (kept weights + unpruned parameters); "
        "`of which header`: the file's safetensors header (tensor names, shapes, metadata), not in the bound.",
        "",
        "| model | density | values | bytes | ratio | bytes / nnz | raw bits bytes | raw bits ratio "
        "| bound bytes | bound ratio | bound / nnz | above bound | of which header | H(d) bit/weight | mask codings |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    seen = set()
    for r in rows:
        if (r["model"], r["density"]) not in seen:
            seen.add((r["model"], r["density"]))
            lines.append(
                f"| {r['model']} | {r['density']:g} | dense fp32 | {r['dense_fp32_bytes']} | 1.00 | "
                f"{r['dense_fp32_bytes'] / r['nonzeros']:.3f} | | | | | | | | | |"
            )
        lines.append(
            f"| {r['model']} | {r['density']:g} | {r['values']} | {r['bytes']} | {r['ratio']:.2f} | "
            f"{r['bytes_per_nonzero']:.3f} | {r['raw_bits_bytes']} | {r['raw_bits_ratio']:.2f} | {r['bound_bytes']} | "
            f"{r['bound_ratio']:.2f} | {r['bound_bytes_per_nonzero']:.3f} | {r['above_bound_pct']:+.1f} % | "
            f"{r['header_bytes']} B | {r['entropy_bits_per_weight']:.4f} | {r['codings']} |"
        )
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "file_size.md").write_text(text)
    (args.out / "file_size.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
