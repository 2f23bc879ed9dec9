"""``texas100``: Shokri et al.'s Texas-100 hospital discharge records (6169 binary features, 100 classes).

A folder with ``feats`` (one comma-separated row of 0/1 values per record) and ``labels`` (one
integer per line, 1..100 in the original release, 0..99 in some re-releases; detected).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ArrayDataset, DataContext, DatasetSource, not_found, register_dataset
from .purchase100 import read_numeric_table

log = logging.getLogger(__name__)

N_FEATURES = 6169


def _has_files(folder: Path) -> bool:
    return (folder / "feats").is_file() and (folder / "labels").is_file()


@register_dataset("texas100")
class Texas100(DatasetSource):
    kind = "tabular"
    shape = (N_FEATURES,)
    n_classes = 100
    synthetic = False
    description = (
        "Texas-100 (Shokri et al.), 67330 hospital records x 6169 binary features, 100 classes (feats + labels)"
    )

    def _dirs(self, ctx: DataContext) -> list[Path]:
        dirs = [Path(ctx.path)] if ctx.path is not None else []
        for d in ctx.search_dirs("texas100"):
            dirs += [d, d / "texas" / "100"]  # the original archive unpacks to texas/100/
        return dirs

    def locate(self, ctx: DataContext) -> Path | None:
        return next((d for d in self._dirs(ctx) if _has_files(d)), None)

    def load(self, ctx: DataContext) -> ArrayDataset:
        folder = self.locate(ctx)
        if folder is None:
            raise not_found(
                self.name,
                "files 'feats' and 'labels'",
                self._dirs(ctx),
                "Get Texas-100 (Shokri et al., 'Membership Inference Attacks against Machine Learning "
                "Models') and pass its folder with --data-dir or data.path",
            )
        labels = read_numeric_table(folder / "labels", 1, binary_from=1, first_range=(0, 100))[:, 0].astype(np.int64)
        if (labels == 0).any():
            if labels.max() > 99:
                raise DataError(
                    f"{folder / 'labels'}: labels span 0..{labels.max()}, i.e. more than 100 classes; "
                    "expected 1..100 or 0..99"
                )
        else:
            labels -= 1  # the original release numbers classes 1..100
        X = read_numeric_table(folder / "feats", N_FEATURES)
        if len(X) != len(labels):
            raise DataError(
                f"{folder}: 'feats' has {len(X)} rows but 'labels' has {len(labels)}; "
                "the two files must describe the same records line by line (re-download them)"
            )
        log.info("loaded texas100 from %s: %d records", folder, len(X))
        return ArrayDataset(
            name=self.name,
            X=X,
            y=labels,
            n_classes=self.n_classes,
            kind=self.kind,
            synthetic=False,
            source=str(folder),
        )
