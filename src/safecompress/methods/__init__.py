"""Compression methods (one registered plugin per file)."""

from __future__ import annotations

from . import (defend_then_compress, dense, distill, dmp, gmp, mest, oneshot, rigl, rigl_select,  # noqa: F401
               safecompress, set_, static)  # (each registers itself)
from .base import METHODS, Method, MethodContext, MethodResult, needed_parts, register_method

__all__ = ["METHODS", "Method", "MethodContext", "MethodResult", "needed_parts", "register_method"]
