"""Compression methods (one registered plugin per file).

Every module of this package is imported here (sorted), so a new method is one new file with
``@register_method``; see :mod:`safecompress.plugins` for methods that live outside the package."""

from __future__ import annotations

from ..plugins import import_package
from .base import METHODS, Method, MethodContext, MethodResult, needed_parts, register_method

import_package(__name__, __path__)  # each module registers its method(s)

__all__ = ["METHODS", "Method", "MethodContext", "MethodResult", "needed_parts", "register_method"]
