"""``income``: the census "income" table shipped with R's kernlab package (8,993 records, 14
categorical columns). Task: the income band (9 classes). The sensitive attribute for attribute
inference (``data.sensitive_column``, default ``SEX``) is *not* a model input: the model sees the
other 12 columns one-hot encoded (a missing value is its own category); ``ArrayDataset.sensitive``
holds the attribute's codes.

Offline source: Debian's ``r-cran-kernlab`` package (``/usr/lib/R/site-library/kernlab/data/income.rda``),
or ``apt-get download r-cran-kernlab && dpkg-deb -x r-cran-kernlab_*.deb DIR`` and pass that folder.
The ``.rda`` file is read without R by the ``rdata`` package (``pip install 'safecompress[tables]'``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ArrayDataset, DataContext, DatasetSource, not_found, register_dataset

log = logging.getLogger(__name__)

SYSTEM_DIRS = ("/usr/lib/R/site-library/kernlab/data",)
LABEL = "INCOME"
DEFAULT_SENSITIVE = "SEX"


def encode_frame(df, label: str = LABEL, sensitive: str = DEFAULT_SENSITIVE):
    """(X float32 one-hot, y int64, sensitive int64, sensitive category names, feature names) of a
    DataFrame of categorical columns. Rows without a label or sensitive value are dropped."""
    for col in (label, sensitive):
        if col not in df.columns:
            raise DataError(f"income table has no column {col!r}; columns: {', '.join(map(str, df.columns))}")
    df = df[df[label].notna() & df[sensitive].notna()]
    if len(df) == 0:
        raise DataError("income table: no rows with both a label and a sensitive value")
    y = df[label].astype("category").cat.codes.to_numpy().astype(np.int64)
    s_cat = df[sensitive].astype("category")
    blocks, names = [], []
    for col in df.columns:
        if col in (label, sensitive):
            continue
        cat = df[col].astype("category")
        codes = cat.cat.codes.to_numpy()  # -1 = missing
        k = len(cat.cat.categories)
        onehot = np.zeros((len(df), k + 1), dtype=np.float32)
        onehot[np.arange(len(df)), np.where(codes < 0, k, codes)] = 1.0
        blocks.append(onehot)
        names += [f"{col}={c}" for c in cat.cat.categories] + [f"{col}=missing"]
    X = np.concatenate(blocks, axis=1)
    return X, y, s_cat.cat.codes.to_numpy().astype(np.int64), [str(c) for c in s_cat.cat.categories], names


@register_dataset("income")
class Income(DatasetSource):
    kind = "tabular"
    shape = ()  # depends on the encoded categories
    n_classes = 9
    synthetic = False
    description = (
        "census income table from R's kernlab (r-cran-kernlab): 9 income bands; sensitive "
        "attribute (default SEX) held out of the inputs for attribute inference"
    )

    def _dirs(self, ctx: DataContext) -> list[Path]:
        dirs = [Path(ctx.path)] if ctx.path is not None else []
        for d in ctx.search_dirs("income", SYSTEM_DIRS):
            dirs += [d, d / "usr/lib/R/site-library/kernlab/data"]
        return dirs

    def locate(self, ctx: DataContext) -> Path | None:
        for d in self._dirs(ctx):
            f = d if d.suffix == ".rda" else d / "income.rda"
            if f.is_file():
                return f
        return None

    def load(self, ctx: DataContext) -> ArrayDataset:
        path = self.locate(ctx)
        if path is None:
            raise not_found(
                self.name,
                "income.rda",
                self._dirs(ctx),
                "Install Debian's r-cran-kernlab (apt-get install r-cran-kernlab), or "
                "apt-get download r-cran-kernlab && dpkg-deb -x r-cran-kernlab_*.deb DIR and pass --data-dir DIR",
            )
        try:
            import rdata
        except ImportError:
            raise DataError("reading income.rda needs the rdata package: pip install 'safecompress[tables]'") from None
        try:
            frames = rdata.read_rda(str(path))
        except Exception as exc:  # rdata raises several types on malformed files
            raise DataError(f"{path} is not a readable R data file ({exc})") from None
        if "income" not in frames:
            raise DataError(f"{path} holds no 'income' table (found: {', '.join(frames)})")
        X, y, s, s_names, _ = encode_frame(frames["income"], LABEL, ctx.sensitive_column or DEFAULT_SENSITIVE)
        n_classes = int(y.max()) + 1
        if n_classes > self.n_classes:
            raise DataError(f"{path}: {n_classes} income bands, expected at most {self.n_classes}")
        log.info(
            "income: %d records, %d one-hot features, sensitive %s (%s)",
            len(y),
            X.shape[1],
            ctx.sensitive_column or DEFAULT_SENSITIVE,
            ", ".join(s_names),
        )
        return ArrayDataset(
            self.name, X, y, self.n_classes, "tabular", False, str(path), sensitive=s, sensitive_names=s_names
        )
