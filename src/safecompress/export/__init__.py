"""Write a finished run's model for other runtimes: dense safetensors, torch.nn.utils.prune safetensors,
TorchScript, torch.export (.pt2) and ONNX.

Each format is one module that registers itself in :data:`FORMATS` (see :mod:`.base`); :func:`export_run`
loads a run's ``model.safetensors``, builds the example input from the model's recorded input shape and
writes the chosen format atomically.

This package only acts on a finished run, so it is left out of the code hash (``provenance.OUTPUT_ONLY``):
no hashed module may import it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..errors import SafeCompressError
from ..plugins import import_package
from .base import FORMATS, ExportFormat, ExportSource, register_format, require

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "ExportFormat", "ExportSource", "example_input", "export_run", "register_format", "require"]

EXAMPLE_BATCH = 2  # not 1: torch.export would specialise a batch of 1


def example_input(input_shape: tuple[int, ...] | list[int], like: torch.nn.Module | None = None, seed: int = 0):
    """A deterministic standard-normal batch of ``EXAMPLE_BATCH`` inputs of ``input_shape``, on the device
    (and in the floating dtype) of ``like``'s parameters."""
    param = next(iter(like.parameters()), None) if like is not None else None
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((EXAMPLE_BATCH, *input_shape), generator=gen)
    if param is not None:
        x = x.to(device=param.device, dtype=param.dtype if param.dtype.is_floating_point else x.dtype)
    return x


def load_source(src: str | Path, trust_code: bool = False) -> tuple[torch.nn.Module, ExportSource]:
    """(model in eval mode, its description) of the model file ``src``."""
    from ..checkpoint import load_model, read_model_file

    model = load_model(src, trust_code=trust_code)  # checks the file and refuses untrusted factories
    _, masks, meta = read_model_file(src)
    return model, ExportSource(spec=dict(meta["model"]), masks=masks, meta=meta)


def export_run(src: str | Path, fmt: str, dest: str | Path, trust_code: bool = False) -> tuple[Path, dict[str, Any]]:
    """Write the model file ``src`` (a run's ``model.safetensors``) to ``dest`` in format ``fmt``.

    Returns (path written, details such as the ONNX opset or whether the batch dimension is dynamic).
    The file is written atomically: nothing is left at ``dest`` when the export fails."""
    from ..fileio import atomic_write_bytes

    entry = FORMATS.get(fmt)
    require(fmt, entry.requires)  # before the (slower) model load
    model, source = load_source(src, trust_code)
    example = example_input(tuple(source.spec["input_shape"]), like=model)
    try:
        data, details = entry.write(model, example, source)
    except SafeCompressError:
        raise
    except Exception as exc:  # noqa: BLE001  (a runtime's exporter refusing this architecture)
        raise SafeCompressError(
            f"exporting {src} as {fmt} failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "try another format (dense always works) and please report it"
        ) from exc
    path = atomic_write_bytes(dest, data)
    log.info("wrote %s (%s, %d bytes): %s", path, fmt, len(data), details)
    return path, details


import_package(__name__, __path__)  # each module registers its format
