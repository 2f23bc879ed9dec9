"""Compression methods (one registered plugin per file)."""

from __future__ import annotations

from . import dense, distill, gmp, mest, oneshot, rigl, safecompress, set_, static  # noqa: F401  (each registers itself)
from .base import METHODS, Method, MethodContext, MethodResult, needed_parts, register_method

__all__ = ["METHODS", "Method", "MethodContext", "MethodResult", "needed_parts", "register_method"]
