"""Compression methods (one registered plugin per file)."""

from __future__ import annotations

from . import dense  # noqa: F401  (registers "dense")
from .base import METHODS, Method, MethodContext, MethodResult, register_method

__all__ = ["METHODS", "Method", "MethodContext", "MethodResult", "register_method"]
