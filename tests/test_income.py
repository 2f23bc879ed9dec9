"""The kernlab `income` table (attribute-inference data), read without R, tested on a fixture file."""

import numpy as np
import pandas as pd
import pytest

from safecompress.cli import main
from safecompress.data import DataContext, load_dataset
from safecompress.data.income import encode_frame
from safecompress.errors import DataError

rdata = pytest.importorskip("rdata")


def _frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "INCOME": pd.Categorical(rng.choice(["[0-10)", "[10-15)", "[15-20)"], n)),
            "SEX": pd.Categorical(rng.choice(["F", "M"], n)),
            "AGE": pd.Categorical(rng.choice(["14-17", "18-24", "25-34", "35-44"], n)),
            "LANGUAGE": pd.Categorical(rng.choice(["English", "Spanish"], n)),
        }
    )


@pytest.fixture
def income_dir(tmp_path):
    rdata.write_rda(str(tmp_path / "income.rda"), {"income": _frame()})
    return tmp_path


def test_loader_reads_the_rda_fixture_and_holds_the_sensitive_attribute_out(income_dir):
    ds = load_dataset("income", DataContext(data_dir=income_dir))
    df = _frame()
    assert len(ds) == 60 and ds.kind == "tabular" and ds.n_classes == 9
    assert ds.X.shape == (60, (4 + 1) + (2 + 1))  # AGE and LANGUAGE one-hot, each with a 'missing' slot
    assert np.array_equal(ds.y, df["INCOME"].cat.codes.to_numpy())
    assert np.array_equal(ds.sensitive, df["SEX"].cat.codes.to_numpy()) and ds.sensitive_names == ["F", "M"]
    assert np.allclose(ds.X.sum(1), 2.0)  # exactly one hot per remaining column: SEX is not an input


def test_missing_values_get_their_own_category_and_unlabelled_rows_are_dropped():
    df = _frame(10)
    df.loc[0, "AGE"] = np.nan
    df.loc[1, "INCOME"] = np.nan
    X, y, s, _, names = encode_frame(df)
    assert len(y) == 9 and X[0, names.index("AGE=missing")] == 1.0
    with pytest.raises(DataError, match="no column 'ETHNIC'"):
        encode_frame(df, sensitive="ETHNIC")


def test_a_run_on_income_and_a_clear_error_without_the_file(income_dir, tmp_path, capsys):
    args = [
        "--preset",
        "ci",
        "--set",
        "data.name=income",
        "--set",
        "method.name=dense",
        "--set",
        "audit.enabled=false",
        "--set",
        "train.epochs=1",
        "--set",
        "data.split.train=0.4",
        "--set",
        "data.split.population=0.1",
    ]
    assert main(["run", *args, "--set", f"data.data_dir={income_dir}", "--out", str(tmp_path / "r")]) == 0
    from pathlib import Path

    from safecompress.data.income import SYSTEM_DIRS

    if (Path(SYSTEM_DIRS[0]) / "income.rda").is_file():
        return  # r-cran-kernlab is installed here, so the file is always found
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["run", *args, "--set", f"data.path={empty}", "--out", str(tmp_path / "x")]) == 2
    assert "r-cran-kernlab" in capsys.readouterr().err
