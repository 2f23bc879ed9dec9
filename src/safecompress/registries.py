"""Every plugin registry, one function each, imported when first asked for.

:mod:`~safecompress.config` checks plugin names against these registries while it validates a config, but
cannot import them when it is itself imported: the plugins import torch, and they import ``config``. Each
function here imports its registry late, so ``config`` names its registries in code (no module strings)
and stays light."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .registry import Registry


def datasets() -> Registry[Any]:
    from .data import DATASETS

    return DATASETS


def models() -> Registry[Any]:
    from .models import MODELS

    return MODELS


def methods() -> Registry[Any]:
    from .methods import METHODS

    return METHODS


def defences() -> Registry[Any]:
    from .defences import DEFENCES

    return DEFENCES


def attacks() -> Registry[Any]:
    from .attacks import ATTACKS

    return ATTACKS


def prune_criteria() -> Registry[Any]:
    from .sparse.criteria import PRUNE

    return PRUNE


def grow_criteria() -> Registry[Any]:
    from .sparse.criteria import GROW

    return GROW


def allocations() -> Registry[Any]:
    from .sparse.allocation import ALLOCATIONS

    return ALLOCATIONS


def structures() -> Registry[Any]:
    from .sparse.structures import STRUCTURES

    return STRUCTURES


def objectives() -> Registry[Any]:
    from .methods.safecompress.objectives import OBJECTIVES

    return OBJECTIVES
