"""Optional dependencies (the ``export`` and ``track`` extras): which of a feature's modules are missing here.

Checked before any work starts, so a missing extra is reported with the command that installs it instead of
failing half-way. Nothing that computes a run's numbers uses this module (it is left out of the code hash).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Iterable


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The names in ``modules`` that cannot be found on this interpreter's path (without importing them)."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a dotted name whose parent package is missing, or a broken spec
            found = False
        if not found:
            missing.append(name)
    return missing


def unusable_modules(modules: Iterable[str]) -> list[str]:
    """Like :func:`missing_modules`, but each module found is also imported: an installed but broken package
    (an ABI or version mismatch) is named with its error instead of failing half-way through the work."""
    missing = missing_modules(modules)
    out = list(missing)
    for name in modules:
        if name in missing:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001  (whatever a broken package raises on import)
            out.append(
                f"{name} (installed but broken: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            )
    return out
