"""Plugin discovery: adding a dataset, method, attack or defence is one new file.

Built-in plugins are found by scanning their package (:func:`import_package`): every module of
``safecompress.attacks``, ``.methods``, ``.defences`` and ``.data`` is imported in sorted order, and
each registers itself with its decorator (``@register_attack``, ...). There is no import list to edit.

Third-party plugins are modules that register themselves the same way. They are named by

* an entry point in the group ``safecompress.plugins`` (its value is the module to import), or
* the environment variable ``SAFECOMPRESS_PLUGINS``: comma-separated module names (importable from
  ``sys.path``) or paths of ``.py`` files, so a plugin can be a single file anywhere.

They are loaded once, lazily, the first time any registry is looked up (see :mod:`.registry`), so
importing safecompress never fails because of a plugin; a broken one raises :class:`PluginError`
naming it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import pkgutil
import sys
from pathlib import Path
from typing import Iterable

from .errors import PluginError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "safecompress.plugins"
ENV_VAR = "SAFECOMPRESS_PLUGINS"

_state = "unloaded"  # "unloaded" -> "loading" -> "loaded"
_loaded: list[str] = []  # what was loaded, for messages and tests


def import_package(package: str, path: Iterable[str]) -> list[str]:
    """Import every module of a package (``__path__``) in sorted order, skipping ``_private`` ones.

    Sorted order keeps registration order the same on every machine (registries list names sorted
    anyway)."""
    names = sorted(m.name for m in pkgutil.iter_modules(list(path)) if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names


def _env_entries() -> list[str]:
    return [part.strip() for part in os.environ.get(ENV_VAR, "").split(",") if part.strip()]


def _import_file(path: Path):
    """Import a single ``.py`` file as a module (once per file)."""
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    module_name = f"safecompress_plugin_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _load_one(label: str, load) -> None:
    try:
        load()
    except Exception as exc:
        log.debug("plugin %s failed to load", label, exc_info=True)
        raise PluginError(f"plugin {label} failed to load: {type(exc).__name__}: {exc}") from exc
    _loaded.append(label)
    log.debug("loaded plugin %s", label)


def load_plugins() -> None:
    """Import the third-party plugins once (entry points, then ``SAFECOMPRESS_PLUGINS`` in order).

    Re-entrant: a plugin that looks a registry up while it is being imported does not recurse. On a
    failure the state is reset, so the next registry lookup raises the same clear error again."""
    global _state
    if _state != "unloaded":
        return
    _state = "loading"
    _loaded.clear()
    try:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            _load_one(f"{ep.name!r} (entry point {ep.value!r} of group {ENTRY_POINT_GROUP!r})", ep.load)
        for entry in _env_entries():
            label = f"{entry!r} (from ${ENV_VAR})"
            if entry.endswith(".py") or os.sep in entry or "/" in entry:
                _load_one(label, lambda entry=entry: _import_file(Path(entry).expanduser()))
            else:
                _load_one(label, lambda entry=entry: importlib.import_module(entry))
    except BaseException:
        _state = "unloaded"
        raise
    _state = "loaded"


def loaded_plugins() -> list[str]:
    """Labels of the third-party plugins loaded so far."""
    return list(_loaded)


def reset() -> None:
    """Forget that plugins were loaded (tests: load again after changing ``SAFECOMPRESS_PLUGINS``).
    Registered entries stay registered; modules already imported are not imported again."""
    global _state
    _state = "unloaded"
    _loaded.clear()
