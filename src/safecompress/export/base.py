"""What every export format shares: the registry, the description of the source model, and the helpers
that check optional dependencies and outputs.

A format is an :class:`ExportFormat` registered under its name in :data:`FORMATS`. Its ``write``
function receives the run's model (eval mode, pruned weights already zero), an example input of the
model's shape (batch 2), and an :class:`ExportSource`, and returns the bytes of the file to write
plus a few details to report (opset, whether the batch dimension is dynamic, ...). Writing the bytes
is left to :func:`safecompress.export.export_run`, which does it atomically, so a failed export never
leaves a half-written file behind.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..errors import SafeCompressError
from ..optional import unusable_modules
from ..registry import Registry

log = logging.getLogger(__name__)

EXTRA = "pip install 'safecompress[export]'"


@dataclass(frozen=True)
class ExportSource:
    """The run model's description: the architecture (``ModelSpec.to_dict()``), the masks of its pruned
    weights (bool, True = kept) and the metadata of the file it came from."""

    spec: dict[str, Any]
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def header(self, fmt: str) -> dict[str, str]:
        """String metadata for the exported file's header: what the file is and which model it holds."""
        from .._version import __version__

        return {
            "format": fmt,
            "safecompress_version": __version__,
            "model": json.dumps(self.spec, sort_keys=True),
            "method": str(self.meta.get("method", "")),
            "density": json.dumps(self.density()),
        }

    def density(self) -> float:
        """Fraction of the masked weights that are kept (1.0 for a model without masks)."""
        total = sum(m.numel() for m in self.masks.values())
        return sum(int(m.sum()) for m in self.masks.values()) / total if total else 1.0


@dataclass(frozen=True)
class ExportFormat:
    """A target format: ``write(model, example, source) -> (bytes, details)``."""

    write: Callable[[nn.Module, torch.Tensor, ExportSource], tuple[bytes, dict[str, Any]]]
    filename: str  # default name inside the run folder
    description: str
    requires: tuple[str, ...] = ()  # optional modules the format needs (from the ``export`` extra)


FORMATS: Registry[ExportFormat] = Registry("export format")


def register_format(name: str, filename: str, description: str, requires: tuple[str, ...] = ()):
    def decorator(fn):
        FORMATS.register(name)(ExportFormat(fn, filename, description, requires))
        return fn

    return decorator


def require(fmt: str, modules: tuple[str, ...]) -> None:
    """Raise a SafeCompressError naming the extra to install when a module ``fmt`` needs is missing or broken."""
    missing = unusable_modules(modules)
    if missing:
        raise SafeCompressError(
            f"the {fmt} format needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            f"installed or cannot be imported; (re)install the export extra with: {EXTRA}"
        )


def outputs_match(
    what: str, expected: torch.Tensor, got: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-5
) -> float:
    """Max abs difference of ``got`` from ``expected``; SafeCompressError when it exceeds the tolerance (the
    exported model would not compute what the run's model computes)."""
    got = torch.as_tensor(got).to(expected.dtype)
    if got.shape != expected.shape:
        raise SafeCompressError(
            f"the {what} export gives outputs of shape {list(got.shape)}, the model {list(expected.shape)}; "
            "this architecture cannot be exported to that format (please report it)"
        )
    diff = float((got - expected).abs().max()) if got.numel() else 0.0
    if not torch.allclose(got, expected, atol=atol, rtol=rtol):
        raise SafeCompressError(
            f"the {what} export computes different outputs than the model (max difference {diff:.3g}); "
            "this architecture cannot be exported to that format faithfully (please report it)"
        )
    return diff
