"""``onnx``: an ONNX model (``torch.onnx.export``, the torch.export-based exporter) with a dynamic batch axis.

The graph's input is ``input`` of shape ``[batch, *input_shape]`` (float32) and its output ``logits``
``[batch, n_classes]``; the opset is :data:`OPSET` (recorded in the file's ``opset_import`` and in the
report line). Before the file is written it is loaded into onnxruntime and its outputs are compared
with the model's on two batch sizes, so a written file is known to run. The model's ``metadata_props``
hold the architecture (``safecompress.model``, JSON) and the source run's method and density::

    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": x.astype("float32")})[0]

Needs the ``export`` extra (onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any

import torch
from torch import nn

from ..errors import SafeCompressError
from .base import ExportSource, outputs_match, register_format, require

log = logging.getLogger(__name__)

OPSET = 18  # supported by every current runtime (onnxruntime >= 1.14, TensorRT, OpenVINO, ...)
REQUIRES = ("onnx", "onnxruntime", "onnxscript")


@contextlib.contextmanager
def _quiet(*names: str):
    """Raise the exporter's loggers to ERROR for the duration (it logs its passes and which optional
    torchvision operators it skips, which says nothing about this model)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def run_onnx(data: bytes, x: torch.Tensor):
    """The outputs of the serialized ONNX model ``data`` for input ``x``, computed by onnxruntime (CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: x.detach().cpu().numpy()})[0])


@register_format("onnx", "model.onnx", f"ONNX (opset {OPSET}, dynamic batch), checked with onnxruntime", REQUIRES)
def write_onnx(model: nn.Module, example: torch.Tensor, source: ExportSource) -> tuple[bytes, dict[str, Any]]:
    require("onnx", REQUIRES)
    import onnx

    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad(), warnings.catch_warnings(), _quiet("torch.onnx", "onnx_ir", "onnxscript"):
        warnings.simplefilter("ignore")  # the exporter's own deprecation/future notices
        program = torch.onnx.export(
            model,
            (example,),
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            dynamo=True,
            optimize=True,
            verbose=False,
        )
    proto = program.model_proto
    for key, value in source.header("onnx").items():
        if key != "format":
            entry = proto.metadata_props.add()
            entry.key, entry.value = f"safecompress.{key}", value
    proto.producer_name = "safecompress"
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise SafeCompressError(f"the exported ONNX model is invalid ({exc}); please report it") from None
    data = proto.SerializeToString()
    other = torch.cat([example, example[:1]])
    with torch.no_grad():
        diff = max(outputs_match("onnx", model(x), run_onnx(data, x), atol=1e-5) for x in (example, other))
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), OPSET)
    log.info("onnxruntime runs the exported model; max difference from torch %.3g", diff)
    return data, {"opset": opset, "dynamic_batch": True}
