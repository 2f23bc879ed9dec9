"""safecompress's own model files (``model.safetensors`` of a run), rebuilt by ``checkpoint.load_model``:
registered zoo architectures only unless the caller trusts the file's model factory (``trust_code``,
CLI --trust-model-code), so opening one runs no code it was not allowed to. They are full ``nn.Module`` s, so
white-box attacks apply."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from .formats import LoadedModel, ModelFormat, Probe, register_format


@register_format("safetensors")
class SafetensorsFormat(ModelFormat):
    suffixes = (".safetensors",)
    description = "safecompress model file (safetensors)"

    @classmethod
    def sniff(cls, probe: Probe) -> bool:
        if len(probe.head) < 9 or probe.head[8:9] != b"{":
            return False
        (size,) = struct.unpack("<Q", probe.head[:8])
        return 0 < size < (100 << 20) and size + 8 <= probe.path.stat().st_size

    @classmethod
    def load(cls, path: Path, trust_code: bool = False) -> LoadedModel:
        from ..checkpoint import load_model

        model = load_model(path, "cpu", trust_code)  # checks the file thoroughly, so the header below is well formed
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            meta = json.loads(json.loads(fh.read(size))["__metadata__"]["json"])
        shape = tuple(int(d) for d in meta["model"]["input_shape"])
        return LoadedModel(model, "safetensors", True, shape)
