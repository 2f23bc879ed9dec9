"""Datasets (one registered plugin per file) and the membership split."""

from __future__ import annotations

import importlib

from .base import DATASETS, ArrayDataset, DataContext, DatasetSource, register_dataset

# Every module below registers its dataset(s) on import; adding a dataset = one new file + one name here.
_PLUGINS = (
    "digits",
    "fashion_mnist",
    "cifar",
    "purchase100",
    "texas100",
    "imagenet100",
    "byod",
    "income",
    "synth_shoppers",
    "synth_images",
    "synth_attr",
)
for _module in _PLUGINS:
    importlib.import_module(f"{__name__}.{_module}")


def load_dataset(name: str, ctx: DataContext) -> ArrayDataset:
    """Load a registered dataset and check it against the contract."""
    return DATASETS.get(name)().load(ctx).validate()


__all__ = ["DATASETS", "ArrayDataset", "DataContext", "DatasetSource", "register_dataset", "load_dataset"]
