"""Datasets (one registered plugin per file) and the membership split."""

from __future__ import annotations

from ..plugins import import_package
from .base import DATASETS, ArrayDataset, DataContext, DatasetSource, register_dataset

# Every module of this package is imported (sorted) and registers its dataset(s) on import: adding a
# dataset is one new file with @register_dataset (see safecompress.plugins for datasets outside it).
import_package(__name__, __path__)


def load_dataset(name: str, ctx: DataContext) -> ArrayDataset:
    """Load a registered dataset and check it against the contract."""
    return DATASETS.get(name)().load(ctx).validate()


__all__ = ["DATASETS", "ArrayDataset", "DataContext", "DatasetSource", "register_dataset", "load_dataset"]
