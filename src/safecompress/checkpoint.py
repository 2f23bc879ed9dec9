"""Model files: safetensors with the architecture in the metadata, so no pickle is ever needed.

Sparse weights (those with a mask) are stored packed — active values plus a bitmask — so the file
really shrinks with the density; other tensors are stored as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from . import __version__
from .errors import SafeCompressError
from .fileio import atomic_write_bytes
from .models import ModelSpec, build_model
from .sparse.packing import VALUE_TYPES, pack, unpack, unpack_bits

FORMAT = "safecompress-v1"
_SEP = "::"  # packed tensors are stored as NAME::bits, NAME::values (and NAME::scale for int8)


def serialize(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> bytes:
    return st_save({k: v.contiguous() for k, v in tensors.items()}, metadata={"json": json.dumps(meta)})


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write tensors plus JSON metadata (under the key 'json') as safetensors."""
    return atomic_write_bytes(path, serialize(tensors, meta))


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    try:
        raw = path.read_bytes()
        tensors = st_load(raw)
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get("json", "{}"))
    except (OSError, SafetensorError, ValueError, json.JSONDecodeError) as exc:
        raise SafeCompressError(f"cannot read {path}: {exc}; the file is missing or corrupt") from None
    return tensors, meta


def model_tensors(model: nn.Module, masks: dict[str, torch.Tensor] | None, values: str = "fp32"):
    """(tensors, sparse-entry shapes) of a model with its sparse weights packed."""
    if values not in VALUE_TYPES:
        raise SafeCompressError(f"--values must be one of {', '.join(VALUE_TYPES)}, got {values!r}")
    masks = masks or {}
    tensors: dict[str, torch.Tensor] = {}
    sparse: dict[str, list[int]] = {}
    for name, value in model.state_dict().items():
        if name in masks:
            for key, part in pack(value, masks[name], values).items():
                tensors[f"{name}{_SEP}{key}"] = part
            sparse[name] = list(value.shape)
        else:
            tensors[name] = value.detach().cpu()
    return tensors, sparse


def save_model(
    model: nn.Module, spec: ModelSpec, path: str | Path, masks: dict[str, torch.Tensor] | None = None,
    values: str = "fp32", extra: dict[str, Any] | None = None,
) -> Path:
    """Write the model; weights with a mask are packed (values + bitmask), the rest stored dense."""
    tensors, sparse = model_tensors(model, masks, values)
    meta = {"format": FORMAT, "version": __version__, "model": spec.to_dict(), "values": values,
            "sparse": sparse, **(extra or {})}
    return save_tensors(path, tensors, meta)


def read_model_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """(dense state dict, masks of the packed weights, metadata) of a model file."""
    tensors, meta = load_tensors(path)
    if meta.get("format") != FORMAT:
        raise SafeCompressError(f"{path} is not a safecompress model file (format {meta.get('format')!r})")
    state: dict[str, torch.Tensor] = {k: v for k, v in tensors.items() if _SEP not in k}
    masks: dict[str, torch.Tensor] = {}
    try:
        for name, shape in meta.get("sparse", {}).items():
            parts = {key: tensors[f"{name}{_SEP}{key}"] for key in ("bits", "values", "scale") if f"{name}{_SEP}{key}" in tensors}
            state[name] = unpack(parts, tuple(shape))
            masks[name] = unpack_bits(parts["bits"], tuple(shape))
    except (KeyError, ValueError) as exc:
        raise SafeCompressError(f"{path}: packed weights are corrupt ({exc}); re-export the model") from None
    return state, masks, meta


def export_model(src: str | Path, dest: str | Path, values: str) -> Path:
    """Re-save a model file with its packed weights' values as fp32, fp16 or int8."""
    state, masks, meta = read_model_file(src)
    spec = ModelSpec.from_dict(meta["model"])
    model = build_model(spec, seed=0)
    model.load_state_dict(state)
    extra = {k: v for k, v in meta.items() if k not in ("format", "version", "model", "values", "sparse")}
    return save_model(model, spec, dest, masks=masks, values=values, extra=extra)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved at ``path`` (architecture from the metadata, weights from the tensors)."""
    state, _, meta = read_model_file(path)
    model = build_model(ModelSpec.from_dict(meta["model"]), seed=0)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise SafeCompressError(f"{path}: weights do not fit the saved architecture ({exc})") from None
    return model.to(device).eval()


def compression_summary(model: nn.Module, masks: dict[str, torch.Tensor] | None, file_bytes: int,
                        spec: ModelSpec) -> dict[str, Any]:
    """report.json's ``compression``: density of the prunable weights, non-zero parameters (active
    sparse weights + dense parameters), file bytes,
    the bytes of the same model saved dense (fp32, same container) and their ratio."""
    masks = masks or {}
    state = model.state_dict()
    prunable = sum(m.numel() for m in masks.values())
    active = sum(int(m.sum()) for m in masks.values())
    other = sum(p.numel() for k, p in model.named_parameters() if k not in masks)
    dense_meta = {"format": FORMAT, "version": __version__, "model": spec.to_dict(), "values": "fp32", "sparse": {}}
    dense_bytes = len(serialize({k: v.detach().cpu() for k, v in state.items()}, dense_meta))
    return {
        "density": active / prunable if prunable else 1.0,
        "nonzeros": active + other,
        "parameters": sum(p.numel() for p in model.parameters()),
        "file_bytes": int(file_bytes),
        "dense_bytes": int(dense_bytes),
        "ratio": round(dense_bytes / file_bytes, 3) if file_bytes else None,
    }
