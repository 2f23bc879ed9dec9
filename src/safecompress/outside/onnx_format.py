"""ONNX models, run with onnxruntime on the CPU (the ``export`` extra installs it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import SafeCompressError
from .formats import FixedBatch, LoadedModel, ModelFormat, Probe, register_format

# onnxruntime's element types -> numpy dtypes of the input we feed
_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


class OnnxModule(nn.Module):
    """An onnxruntime session as a module: float batch in, the first output (logits) out, as float32."""

    def __init__(self, session, input_name: str, dtype):
        super().__init__()
        self.session = session
        self.input_name = input_name
        self.dtype = dtype

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        feed = {self.input_name: X.detach().cpu().numpy().astype(self.dtype, copy=False)}
        out = self.session.run(None, feed)[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


def _dim(d) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


@register_format("onnx")
class OnnxFormat(ModelFormat):
    suffixes = (".onnx",)
    description = "ONNX"

    @classmethod
    def sniff(cls, probe: Probe) -> bool:
        # a ModelProto starts with field 1 (ir_version, varint: 0x08) or, rarely, another small field tag;
        # the parse decides, so only files that are not something else are tried
        if probe.zip_names is not None or probe.head[:1] not in (b"\x08", b"\x12", b"\x1a", b"\x3a"):
            return False
        try:
            import onnx

            model = onnx.load_model(str(probe.path), load_external_data=False)
        except Exception:  # noqa: BLE001  (not a protobuf, or not an ONNX one)
            return False
        return len(model.graph.node) > 0 and len(model.graph.input) > 0

    @classmethod
    def load(cls, path: Path, trust_code: bool = False) -> LoadedModel:
        try:
            import onnxruntime as ort
        except ImportError:
            raise SafeCompressError(
                f"{path} is an ONNX model and onnxruntime is not installed: pip install 'safecompress[export]'"
            ) from None
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        inputs = session.get_inputs()
        if len(inputs) != 1:
            names = [i.name for i in inputs]
            raise SafeCompressError(
                f"{path}: the ONNX graph takes {len(inputs)} inputs {names}; an audited model takes one input "
                "(a batch of records) — export a wrapper that takes a single tensor"
            )
        spec = inputs[0]
        if spec.type not in _INPUT_TYPES:
            raise SafeCompressError(
                f"{path}: the ONNX input {spec.name!r} is {spec.type}; an audited model takes floating-point "
                f"features ({', '.join(_INPUT_TYPES)})"
            )
        shape = list(spec.shape or [])
        if not shape:
            raise SafeCompressError(f"{path}: the ONNX input {spec.name!r} has no shape; export it with one")
        module = FixedBatch(OnnxModule(session, spec.name, _INPUT_TYPES[spec.type]), _dim(shape[0]))
        return LoadedModel(module.eval(), "onnx", False, tuple(_dim(d) for d in shape[1:]))
