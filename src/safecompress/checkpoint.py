"""Model files: safetensors with the architecture in the metadata, so no pickle is ever needed."""

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

FORMAT = "safecompress-dense-v1"


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write tensors plus JSON metadata (under the key 'json') as safetensors."""
    data = st_save({k: v.contiguous() for k, v in tensors.items()}, metadata={"json": json.dumps(meta)})
    return atomic_write_bytes(path, data)


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


def save_model(model: nn.Module, spec: ModelSpec, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    tensors = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "version": __version__, "model": spec.to_dict(), **(extra or {})}
    return save_tensors(path, tensors, meta)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved at ``path`` (architecture from the metadata, weights from the tensors)."""
    tensors, meta = load_tensors(path)
    if meta.get("format") != FORMAT:
        raise SafeCompressError(f"{path} is not a safecompress model file (format {meta.get('format')!r})")
    model = build_model(ModelSpec.from_dict(meta["model"]), seed=0)
    model.load_state_dict(tensors)
    return model.to(device).eval()
