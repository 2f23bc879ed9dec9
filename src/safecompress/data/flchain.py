"""``flchain``: serum free light chain and mortality, 7,874 residents of Olmsted County (Minnesota).
Task: did the person die during follow-up (2 classes: alive at last contact / died; 27.5 % died).

Why this table. It is a real medical table that installs offline from the Debian archive, it is
large enough for every part of the membership split (members, probes, audit, population, val, test
need a few thousand rows; scikit-learn's breast_cancer has 569, mlbench's Pima diabetes 768), and its
target is clinically meaningful. Other tables of the same package were set aside: ``nwtco`` (4,028
Wilms-tumour patients, relapse) has 5 coarse inputs, so most records share their inputs with others;
``rotterdam`` (2,982 breast-cancer patients) is smaller; ``nafld1`` (17,549) has only age, sex, weight,
height and BMI.

Provenance. R's ``survival`` package (T. Therneau, LGPL >= 2), data set ``flchain``: "a stratified random
sample containing 1/2 of the subjects from a study of the relationship between serum free light chain
(FLC) and mortality" (Kyle et al., NEJM 2006; Dispenzieri et al., Mayo Clin. Proc. 2012), Mayo Clinic.
Offline source: Debian's ``r-cran-survival`` (``/usr/lib/R/library/survival/data/Rdata.rdb``, a lazy-load
database read by :mod:`safecompress.data.rlazyload`), or ``scripts/fetch-flchain.sh``, which runs
``apt-get download r-cran-survival`` and unpacks it into the safecompress cache.

Inputs (11 columns on the released table, one row per person):

- ``age``, ``sample.yr`` (year of the blood sample), ``flc.grp`` (the study's FLC decile, 1-10) and
  ``mgus`` (0/1, diagnosed with monoclonal gammopathy): standardised;
- ``kappa``, ``lambda`` (the two FLC portions, mg/dl) and ``creatinine`` (mg/dl): log-transformed, then
  standardised (lab values are right-skewed: kappa reaches 14 times its median);
- ``sex``: one-hot (F, M, and a ``missing`` slot as for ``income``).

Left out: ``futime`` (days of follow-up, known only once the outcome is: the dead have shorter
follow-up) and ``chapter`` (cause of death, recorded only for the dead: it *is* the label).

Missing values. Rows without a label are dropped (none in the released table). A numeric input that
is missing somewhere in the table (``creatinine``: 1,350 of 7,874 rows) gets a 0/1 column
``<name>=missing`` and the missing value is replaced by the column's median; missingness is itself
informative here (15 % of those without creatinine died, 30 % of the others), so the indicator stays
an input. A missing category is its own one-hot slot.

Scaling. Loaders return the whole table before the membership split (see ``base.py``), so the
medians, means and standard deviations are computed over all 7,874 rows — never over member rows
only, and without the labels. Members, non-members, the attacker's population and the test rows all
go through one fixed transform, so the transform itself carries no membership signal; like the
published preprocessing of Purchase-100 and Texas-100 it is a property of the released data set.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ArrayDataset, DataContext, DatasetSource, not_found, register_dataset
from .rlazyload import read_object

log = logging.getLogger(__name__)

PACKAGE_DATA = "usr/lib/R/library/survival/data"  # r-cran-survival is an R "recommended" package
SYSTEM_DIRS = ("/" + PACKAGE_DATA,)
LABEL = "death"
CLASS_NAMES = ["alive", "died"]
NUMERIC = ("age", "sample.yr", "flc.grp", "mgus")
LOG_NUMERIC = ("kappa", "lambda", "creatinine")
CATEGORICAL = ("sex",)
LEFT_OUT = ("futime", "chapter")
FETCH = "scripts/fetch-flchain.sh"
SENSITIVE = ("sex", "mgus")  # the attributes data.sensitive_column may hold out (attribute inference)


def encode_frame(df, exclude: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(X float32, y int64, feature names) of the flchain DataFrame (see the module docstring), without the
    input columns in ``exclude`` (a sensitive attribute held out of the model's inputs)."""
    import pandas as pd

    wanted = (LABEL, *NUMERIC, *LOG_NUMERIC, *CATEGORICAL)
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise DataError(
            f"flchain table has no column(s) {', '.join(map(repr, missing))}; "
            f"columns: {', '.join(map(str, df.columns))}"
        )
    label = pd.to_numeric(df[LABEL], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    keep = ~np.isnan(label)
    if not keep.all():
        log.info("flchain: %d rows without a death status dropped", int((~keep).sum()))
    df, label = df[keep], label[keep]
    if len(df) == 0:
        raise DataError("flchain table: no row has a death status")
    if not np.isin(label, (0.0, 1.0)).all():
        raise DataError(f"flchain: 'death' must be 0 or 1, found {sorted(set(label.tolist()) - {0.0, 1.0})[:5]}")
    blocks, names = [], []
    for col in (c for c in (*NUMERIC, *LOG_NUMERIC) if c not in exclude):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        absent = ~np.isfinite(values)
        if absent.all():
            raise DataError(f"flchain: column {col!r} has no usable value")
        if col in LOG_NUMERIC:
            if (values[~absent] <= 0).any():
                raise DataError(f"flchain: {col!r} is a lab value and must be positive; found {values[~absent].min()}")
            values = np.log(values)
        values = np.where(absent, np.median(values[~absent]), values)
        std = values.std()
        blocks.append(((values - values.mean()) / (std if std > 0 else 1.0))[:, None])
        names.append(col)
        if absent.any():
            blocks.append(absent.astype(np.float64)[:, None])
            names.append(f"{col}=missing")
    for col in (c for c in CATEGORICAL if c not in exclude):
        cat = df[col].astype("category")
        codes = cat.cat.codes.to_numpy()  # -1 = missing
        k = len(cat.cat.categories)
        onehot = np.zeros((len(df), k + 1))
        onehot[np.arange(len(df)), np.where(codes < 0, k, codes)] = 1.0
        blocks.append(onehot)
        names += [f"{col}={c}" for c in cat.cat.categories] + [f"{col}=missing"]
    X = np.concatenate(blocks, axis=1).astype(np.float32)
    return X, label.astype(np.int64), names


def sensitive_codes(df, column: str) -> tuple[np.ndarray, list[str]]:
    """(int64 codes, names) of a sensitive attribute of the flchain table (rows as :func:`encode_frame` keeps
    them: those with a death status). ``sex``: F / M; ``mgus``: no / yes (diagnosed with monoclonal gammopathy,
    a medical condition a person may not want revealed)."""
    import pandas as pd

    if column not in SENSITIVE:
        raise DataError(
            f"flchain: data.sensitive_column must be one of {', '.join(SENSITIVE)} (got {column!r}): the attribute "
            "held out of the inputs for attribute inference"
        )
    label = pd.to_numeric(df[LABEL], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    df = df[~np.isnan(label)]
    if column == "sex":
        values = df[column].astype(str).to_numpy()
        names = ["F", "M"]
        known = np.isin(values, names)
        codes = np.where(values == "M", 1, 0)
    else:
        raw = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        names = ["no", "yes"]
        known = np.isin(raw, (0.0, 1.0))
        codes = np.where(raw == 1.0, 1, 0)
    if not known.all():
        raise DataError(
            f"flchain: {int((~known).sum())} rows have no usable {column!r} ({names[0]}/{names[1]}), which attribute "
            "inference needs for every record; leave data.sensitive_column unset or use the other attribute"
        )
    return codes.astype(np.int64), names


@register_dataset("flchain")
class FreeLightChain(DatasetSource):
    kind = "tabular"
    shape = ()  # 11 columns on the released table: a missing-value indicator only where values are missing
    n_classes = 2
    synthetic = False
    description = (
        "medical: death during follow-up of 7874 Olmsted County residents from serum free light chains, "
        "creatinine, age and sex (2 classes, 27.5 % died)"
    )
    provenance = (
        "data set flchain of R's survival package (T. Therneau, LGPL >= 2): a Mayo Clinic study "
        "(Kyle et al., NEJM 2006; Dispenzieri et al., Mayo Clin. Proc. 2012), via Debian's r-cran-survival; "
        f"get it with sh {FETCH}"
    )

    def _dirs(self, ctx: DataContext) -> list[Path]:
        dirs = [Path(ctx.path)] if ctx.path is not None else []
        for d in ctx.search_dirs("flchain", SYSTEM_DIRS):
            dirs += [d, d / PACKAGE_DATA]
        return dirs

    def locate(self, ctx: DataContext) -> Path | None:
        for d in self._dirs(ctx):
            if (d / "Rdata.rdx").is_file() and (d / "Rdata.rdb").is_file():
                return d / "Rdata.rdb"
        return None

    def load(self, ctx: DataContext) -> ArrayDataset:
        path = self.locate(ctx)
        if path is None:
            raise not_found(
                self.name,
                "Rdata.rdx + Rdata.rdb of R's survival package",
                self._dirs(ctx),
                f"Run {FETCH} (apt-get download r-cran-survival, unpacked into the safecompress cache), "
                "or apt-get install r-cran-survival, or unpack it with dpkg-deb -x r-cran-survival_*.deb DIR "
                "and pass --data-dir DIR",
            )
        try:
            frame = read_object(path.parent, "flchain")
        except DataError as exc:
            raise DataError(f"{exc}\nThe file looks damaged: delete it and run {FETCH} again") from None
        if not hasattr(frame, "columns"):
            raise DataError(f"{path}: 'flchain' is not a data frame; delete it and run {FETCH} again")
        sensitive = ctx.sensitive_column
        s, s_names = sensitive_codes(frame, sensitive) if sensitive is not None else (None, None)
        X, y, names = encode_frame(frame, exclude=(sensitive,) if sensitive is not None else ())
        log.info(
            "flchain: %d people, %d died (%.1f %%), %d inputs (%s)",
            len(y),
            int(y.sum()),
            100 * y.mean(),
            X.shape[1],
            ", ".join(names),
        )
        return ArrayDataset(
            self.name,
            X,
            y,
            self.n_classes,
            "tabular",
            False,
            str(path),
            class_names=CLASS_NAMES,
            sensitive=s,
            sensitive_names=s_names,
        )
