"""torch.export programs (``.pt2``, written by ``torch.export.save``), run as their ``.module()``.

The program is a graph of aten operators, not the author's ``nn.Module``: its layers are not reachable, so
white-box attacks do not apply to it."""

from __future__ import annotations

from pathlib import Path

from .formats import FixedBatch, LoadedModel, ModelFormat, Probe, register_format


@register_format("pt2")
class Pt2Format(ModelFormat):
    suffixes = (".pt2",)
    description = "torch.export program"

    @classmethod
    def sniff(cls, probe: Probe) -> bool:
        names = probe.zip_names or []
        return any(n.endswith("serialized_exported_program.json") for n in names) or (
            any(n.endswith("/archive_format") for n in names) and any("/models/" in n for n in names)
        )

    @classmethod
    def load(cls, path: Path, trust_code: bool = False) -> LoadedModel:
        import torch

        program = torch.export.load(str(path))
        user_inputs = list(program.graph_signature.user_inputs)
        from ..errors import SafeCompressError

        if len(user_inputs) != 1:
            raise SafeCompressError(
                f"{path}: the exported program takes {len(user_inputs)} inputs {user_inputs}; an audited model "
                "takes one input (a batch of records)"
            )
        shape: tuple = ()
        for node in program.graph.nodes:
            if node.op == "placeholder" and node.name == user_inputs[0] and "val" in node.meta:
                shape = tuple(node.meta["val"].shape)
        dims = tuple(d if isinstance(d, int) else None for d in shape)
        module = FixedBatch(program.module(), dims[0] if dims else None)
        return LoadedModel(module, "pt2", False, dims[1:] if dims else None)
