"""``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np

from .base import ArrayDataset, DataContext, DatasetSource, register_dataset


@register_dataset("digits")
class Digits(DatasetSource):
    hflip = False  # a mirrored 2 is not a 2
    kind = "image"
    shape = (1, 8, 8)
    n_classes = 10
    synthetic = False
    description = "scikit-learn's 8x8 handwritten digits, 1797 grey images, 10 classes (ships with scikit-learn)"

    def locate(self, ctx: DataContext) -> Path | None:
        path = Path(str(importlib.resources.files("sklearn.datasets.data") / "digits.csv.gz"))
        return path if path.is_file() else None

    def load(self, ctx: DataContext) -> ArrayDataset:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        X = (np.asarray(bunch.data, dtype=np.float32) / 16.0).reshape(-1, 1, 8, 8)
        return ArrayDataset(
            name=self.name,
            X=X,
            y=np.asarray(bunch.target, dtype=np.int64),
            n_classes=self.n_classes,
            kind=self.kind,
            synthetic=False,
            source=str(self.locate(ctx) or "scikit-learn"),
            class_names=[str(c) for c in bunch.target_names],
            hflip=False,  # a mirrored 2 is not a 2
        )
