"""``dense``: a plain safetensors state dict, zeros where the run pruned.

Any PyTorch code loads it without safecompress::

    from safetensors.torch import load_file
    model.load_state_dict(load_file("model-dense.safetensors"))

The header's metadata (``safetensors.safe_open(path, "pt").metadata()``) names the architecture:
``model`` is the JSON of the model spec (name, input_shape, n_classes, width, norm), so
``safecompress.models.build_model(ModelSpec.from_dict(json.loads(meta["model"])), seed=0)`` rebuilds the
module the weights fit.
"""

from __future__ import annotations

from typing import Any

import torch
from safetensors.torch import save as st_save
from torch import nn

from .base import ExportSource, register_format

FORMAT = "safecompress-dense-v1"


@register_format("dense", "model-dense.safetensors", "safetensors state dict, dense tensors (zeros where pruned)")
def write_dense(model: nn.Module, example: torch.Tensor, source: ExportSource) -> tuple[bytes, dict[str, Any]]:
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    return st_save(state, metadata=source.header(FORMAT)), {"tensors": len(state)}
