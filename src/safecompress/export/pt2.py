"""``pt2``: a ``torch.export`` program (ExportedProgram) saved with ``torch.export.save``.

Load it with ``torch.export.load(path).module()`` (a ``torch.fx.GraphModule``; also the input of
AOTInductor and ExecuTorch lowering). The batch dimension is exported dynamic (a symbolic ``batch`` of
at least 1); if the architecture does not allow that, the program is exported for the fixed batch of
the example (2) and the log says so. ``safecompress.json`` among the archive's extra files holds the
architecture::

    extra = {"safecompress.json": ""}
    program = torch.export.load(path, extra_files=extra)
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import torch
from torch import nn

from .base import ExportSource, outputs_match, register_format

log = logging.getLogger(__name__)

EXTRA_FILE = "safecompress.json"


def exported_program(model: nn.Module, example: torch.Tensor) -> tuple[Any, bool]:
    """(ExportedProgram, dynamic batch?) of ``model``: batch dimension dynamic when torch.export allows it."""
    batch = torch.export.Dim("batch", min=1)
    try:
        return torch.export.export(model, (example,), dynamic_shapes=({0: batch},)), True
    except Exception as exc:  # noqa: BLE001  (any constraint violation: fall back to the fixed batch)
        log.warning(
            "the batch dimension cannot be dynamic in torch.export (%s: %s); exporting for batch %d",
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
            example.shape[0],
        )
        return torch.export.export(model, (example,)), False


@register_format("pt2", "model.pt2", "torch.export program (dynamic batch), load with torch.export.load")
def write_pt2(model: nn.Module, example: torch.Tensor, source: ExportSource) -> tuple[bytes, dict[str, Any]]:
    with torch.no_grad():
        program, dynamic = exported_program(model, example)
        module = program.module()
        outputs_match("pt2", model(example), module(example))
        if dynamic:
            other = torch.cat([example, example[:1]])
            outputs_match("pt2", model(other), module(other))
    buf = io.BytesIO()
    torch.export.save(program, buf, extra_files={EXTRA_FILE: json.dumps(source.header("pt2"))})
    return buf.getvalue(), {"dynamic_batch": dynamic}
