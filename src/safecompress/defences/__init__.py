"""Privacy defences (registry ``DEFENCES``), one registered plugin per file.

Every module of this package is imported here (sorted), so a new defence is one new file with
``@register_defence``; see :mod:`safecompress.plugins` for defences that live outside the package."""

from __future__ import annotations

from ..plugins import import_package
from .base import DEFENCES, Defence, Deployed, build_defence, register_defence, unwrap

import_package(__name__, __path__)  # each module registers its defence(s)

__all__ = ["DEFENCES", "Defence", "Deployed", "build_defence", "register_defence", "unwrap"]
