"""``torchscript``: the model traced with ``torch.jit.trace`` and saved with ``torch.jit.save``.

Load it with ``torch.jit.load(path)`` (no safecompress, no Python model code needed; C++ via
``torch::jit::load``). The trace is checked against the model on a second batch size, so the batch
dimension is free. ``safecompress.json`` among the archive's extra files holds the architecture::

    extra = {"safecompress.json": ""}
    module = torch.jit.load(path, _extra_files=extra)
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

import torch
from torch import nn

from .base import ExportSource, outputs_match, register_format

EXTRA_FILE = "safecompress.json"


@register_format("torchscript", "model-torchscript.pt", "TorchScript (torch.jit.trace), load with torch.jit.load")
def write_torchscript(model: nn.Module, example: torch.Tensor, source: ExportSource) -> tuple[bytes, dict[str, Any]]:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is in maintenance mode; it still works
        traced = torch.jit.trace(model, example, check_trace=True)
        other = torch.cat([example, example[:1]])  # another batch size: the trace must not have fixed it
        outputs_match("torchscript", model(other), traced(other))
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={EXTRA_FILE: json.dumps(source.header("torchscript"))})
    return buf.getvalue(), {"dynamic_batch": True}
