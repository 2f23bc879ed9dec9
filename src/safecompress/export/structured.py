"""``structured``: the physically smaller dense network of a channel-sparse run, as a safetensors state dict.

A run trained with ``sparse.structure: channel`` prunes whole filters / features; this format drops them (with
the next layer's matching input channels, biases and BatchNorm entries, :func:`safecompress.sparse.shrink.shrink`)
so any runtime computes the smaller network at its dense speed. The file holds the smaller state dict; its header
holds the architecture (``model``, as in :mod:`.dense`) and the units each layer keeps (``units``: weight name ->
[kept, of]). Rebuild it with :func:`load_structured`, or by hand::

    from safecompress.models import ModelSpec, build_model
    from safecompress.sparse.shrink import resize, widths

    model = build_model(ModelSpec.from_dict(json.loads(meta["model"])), seed=0)
    small = resize(model, widths({k: v[0] for k, v in json.loads(meta["units"]).items()}, model))
    small.load_state_dict(safetensors.torch.load_file(path))

The export checks that the smaller network's outputs equal the run model's (1e-5), and refuses architectures
that cannot be cut exactly (residual nets, custom forwards, GroupNorm) with the reason.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as st_save
from torch import nn

from ..errors import ConfigError, SafeCompressError
from ..models import ModelSpec, build_model, count_parameters
from ..sparse.shrink import resize, shrink, widths
from .base import ExportSource, outputs_match, register_format

log = logging.getLogger(__name__)

FORMAT = "safecompress-structured-v1"


@register_format(
    "structured",
    "model-structured.safetensors",
    "channel-sparse runs: the smaller dense network (pruned filters/features removed), safetensors",
)
def write_structured(model: nn.Module, example: torch.Tensor, source: ExportSource) -> tuple[bytes, dict[str, Any]]:
    try:
        small, units = shrink(model, source.masks)
    except ConfigError as exc:
        raise SafeCompressError(
            f"{exc.problems[0].split(';')[0]}; the structured format cannot cut it, export it with another format "
            "(dense, onnx, ...)"
        ) from None
    small.eval()
    with torch.no_grad():
        diff = outputs_match("structured", model(example), small(example))
    removed = sum(of - kept for kept, of in units.values())
    if not removed:
        log.warning(
            "no unit of this model can be removed (train with sparse.structure=channel to prune whole units): the "
            "structured file holds a network as large as the run's"
        )
    state = {k: v.detach().cpu().clone().contiguous() for k, v in small.state_dict().items()}
    header = {**source.header(FORMAT), "units": json.dumps(units)}
    details = {
        "parameters": count_parameters(small),
        "parameters_before": count_parameters(model),
        "units_removed": removed,
        "max_difference": diff,
    }
    return st_save(state, metadata=header), details


def load_structured(path: str | Path) -> nn.Module:
    """The smaller network of a ``structured`` file (eval mode), rebuilt from its header and loaded strictly."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise SafeCompressError(f"{path} is not a structured export (format {meta.get('format')!r}, want {FORMAT})")
    model = build_model(ModelSpec.from_dict(json.loads(meta["model"])), seed=0)
    units = {name: int(kept) for name, (kept, _) in json.loads(meta["units"]).items()}
    small = resize(model, widths(units, model))
    small.load_state_dict(load_file(str(path)))
    return small.eval()
