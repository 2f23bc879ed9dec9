"""TorchScript archives (``torch.jit.save``), loaded with ``torch.jit.load`` on the CPU.

A scripted module's code is TorchScript, not Python; its input shape is not recorded, so it is checked by
querying the model with the data. Its parameters are reachable but not its layers as ``nn`` modules, so
white-box attacks (which read the classifier head) do not apply."""

from __future__ import annotations

from pathlib import Path

from .formats import LoadedModel, ModelFormat, Probe, register_format


@register_format("torchscript")
class TorchScriptFormat(ModelFormat):
    suffixes = (".ts", ".torchscript", ".jit", ".pt")
    description = "TorchScript"

    @classmethod
    def sniff(cls, probe: Probe) -> bool:
        names = probe.zip_names or []
        return any("/code/" in n for n in names) and any(n.endswith("data.pkl") for n in names)

    @classmethod
    def load(cls, path: Path, trust_code: bool = False) -> LoadedModel:
        import torch

        module = torch.jit.load(str(path), map_location="cpu")
        return LoadedModel(module.eval(), "torchscript", False, None)
