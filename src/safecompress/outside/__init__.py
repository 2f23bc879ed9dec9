"""Audit a model trained outside safecompress: an ONNX, torch.export (.pt2), TorchScript or safecompress
model file, a torch ``nn.Module`` or any callable returning logits — or only its precomputed outputs — with
the membership attacks that need no reference model, and, given the model's training recipe (:mod:`.recipe`)
and a population, those that do.

Left out of the code hash (see :mod:`safecompress.provenance`): nothing here computes a run's numbers."""

from __future__ import annotations

from .audit import OutsideAudit, audit, audit_scores
from .formats import FORMATS, LoadedModel, load_outside_model

__all__ = ["FORMATS", "LoadedModel", "OutsideAudit", "audit", "audit_scores", "load_outside_model"]
