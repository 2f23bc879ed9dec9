"""Model files trained elsewhere: the registry of readable formats and the detection of a file's format.

A format is one class in its own module (``onnx_format``, ``pt2_format``, ``torchscript_format``,
``safetensors_format``) registered here with ``@register_format``. :func:`load_outside_model` picks the
format by the file's content (its first bytes, a zip archive's member names), the extension only breaking
ties, so a renamed file is still read as what it is and a file no format recognises is refused with the
list of supported formats.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import SafeCompressError
from ..registry import Registry

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model ready to audit: ``module`` maps a float batch to logits (N, classes) on the CPU."""

    module: nn.Module
    format: str  # the registry name of the format that read it ("onnx", "pt2", ...; "torch" in memory)
    white_box: bool  # its torch parameters and layers are reachable (gradients, the classifier head)
    input_shape: tuple[int | None, ...] | None = None  # one record's shape (None: a dynamic or unknown dim)
    source: str = ""  # the file, or a description of the object


@dataclass
class Probe:
    """What a format's ``sniff`` looks at: the first bytes of the file and, for a zip archive, its names."""

    path: Path
    head: bytes
    zip_names: list[str] | None


class ModelFormat:
    """One readable format. ``sniff`` says whether a file holds it (by content); ``load`` reads it."""

    name = ""
    suffixes: tuple[str, ...] = ()
    description = ""

    @classmethod
    def sniff(cls, probe: Probe) -> bool:
        raise NotImplementedError

    @classmethod
    def load(cls, path: Path, trust_code: bool = False) -> LoadedModel:
        """Read the file; ``trust_code``: it may import and run code the file names (a model factory)."""
        raise NotImplementedError


FORMATS: Registry[type[ModelFormat]] = Registry("model format")
register_format = FORMATS.register


def supported() -> str:
    """The formats, for error messages."""
    _import_formats()
    return "; ".join(f"{cls.description} ({', '.join(cls.suffixes)})" for _, cls in FORMATS.items())


def _import_formats() -> None:
    from . import onnx_format, pt2_format, safetensors_format, torchscript_format  # noqa: F401  (they register)


def probe_file(path: Path) -> Probe:
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise SafeCompressError(f"cannot read the model file {path} ({exc.strerror or exc})") from None
    names = None
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            names = None
    return Probe(path, head, names)


def detect_format(path: Path) -> type[ModelFormat]:
    """The format of ``path`` by content; among several matches, the one its extension names."""
    _import_formats()
    probe = probe_file(path)
    matches = [cls for _, cls in FORMATS.items() if cls.sniff(probe)]
    by_suffix = [cls for cls in matches if path.suffix.lower() in cls.suffixes]
    if by_suffix or matches:
        return (by_suffix or matches)[0]
    hint = ""
    if probe.zip_names is not None and any(n.endswith("data.pkl") for n in probe.zip_names):
        hint = (
            " It looks like a pickled torch.save file, which can run arbitrary code when loaded and is never "
            "opened here: export the model with torch.export.save, torch.jit.save or torch.onnx.export."
        )
    raise SafeCompressError(f"{path}: not a model file safecompress can read.{hint} Supported formats: {supported()}")


def load_outside_model(path: str | Path, trust_code: bool = False) -> LoadedModel:
    """Read a model file of any registered format (detected by content); ``trust_code``: a file naming a
    user model factory may import it (CLI: --trust-model-code)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SafeCompressError(f"--model {path} does not exist or is not a file")
    cls = detect_format(path)
    log.info("reading %s as %s", path, cls.name)
    try:
        loaded = cls.load(path, trust_code)
    except SafeCompressError:
        raise
    except Exception as exc:  # noqa: BLE001  (any failure of a foreign runtime on a corrupt file)
        raise SafeCompressError(
            f"{path}: looks like {cls.description} but cannot be loaded ({type(exc).__name__}: {str(exc)[:300]}); "
            f"re-export it. Supported formats: {supported()}"
        ) from None
    loaded.source = str(path)
    return loaded


class FixedBatch(nn.Module):
    """Runs ``inner`` on batches of exactly ``batch`` rows (a graph exported with a static batch size): the
    input is cut into chunks and the last one padded with copies of its first row, whose outputs are dropped.
    Without a static batch (``batch`` None) the whole input goes through at once."""

    def __init__(self, inner: nn.Module, batch: int | None):
        super().__init__()
        self.inner = inner
        self.batch = batch

    def train(self, mode: bool = True) -> "FixedBatch":
        """The graph inside has no training mode (torch.export programs refuse ``train()``): nothing to switch."""
        self.training = mode
        return self

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if not self.batch or len(X) == self.batch:
            return self.inner(X)
        outs = []
        for i in range(0, len(X), self.batch):
            chunk = X[i : i + self.batch]
            n = len(chunk)
            if n < self.batch:
                chunk = torch.cat([chunk, chunk[:1].expand(self.batch - n, *chunk.shape[1:])])
            outs.append(self.inner(chunk)[:n])
        if not outs:
            return torch.empty(0)
        return torch.cat(outs)
