"""The `flchain` medical table (R survival package), read without R from a lazy-load database written
here as a fixture: the same Rdata.rdx + Rdata.rdb layout as Debian's r-cran-survival, tiny."""

import bz2
import gzip
import json
import lzma
import struct
import zlib

import numpy as np
import pandas as pd
import pytest

from safecompress.cli import main
from safecompress.data import DataContext, load_dataset
from safecompress.data import flchain as flchain_mod
from safecompress.data.flchain import encode_frame, sensitive_codes
from safecompress.data.rlazyload import read_object
from safecompress.errors import DataError

rdata = pytest.importorskip("rdata")
from rdata.conversion import convert_python_to_r_data  # noqa: E402
from rdata.unparser import unparse_data  # noqa: E402

DATA = flchain_mod.PACKAGE_DATA


def _frame(n=80, seed=0):
    """A table with flchain's columns and types (float, factor, Int32), values in realistic ranges."""
    rng = np.random.default_rng(seed)
    death = rng.integers(0, 2, n).astype(float)
    return pd.DataFrame(
        {
            "age": rng.integers(50, 95, n).astype(float),
            "sex": pd.Categorical(rng.choice(["F", "M"], n)),
            "sample.yr": rng.integers(1995, 2004, n).astype(float),
            "kappa": rng.lognormal(0.3, 0.5, n),
            "lambda": rng.lognormal(0.5, 0.5, n),
            "flc.grp": rng.integers(1, 11, n).astype(float),
            "creatinine": rng.lognormal(0.0, 0.3, n),
            "mgus": (rng.random(n) < 0.05).astype(float),
            "futime": pd.array(rng.integers(0, 5000, n), dtype="Int32"),
            "death": death,
            "chapter": pd.Categorical(np.where(death == 1, rng.choice(["Circulatory", "Neoplasms"], n), None)),
        }
    )


def _serialize(obj) -> bytes:
    return unparse_data(convert_python_to_r_data(obj))


def _compress(body: bytes, compressed: int) -> bytes:
    """One .rdb record as R writes it: big-endian length, then (types 2 and 3) a storage byte."""
    head = struct.pack(">I", len(body))
    if compressed == 1:
        return head + zlib.compress(body)
    if compressed == 2:
        return head + b"2" + bz2.compress(body)
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 6}]  # R uses preset 9e; 6 needs less memory to write
    return head + b"Z" + lzma.compress(body, format=lzma.FORMAT_RAW, filters=filters)


def write_lazyload(folder, objects: dict, compressed: int = 3):
    """Write ``objects`` (name -> python object) as folder/Rdata.rdx + Rdata.rdb."""
    folder.mkdir(parents=True, exist_ok=True)
    blob, variables = b"", {}
    for name, obj in objects.items():
        record = _compress(_serialize(obj), compressed)
        variables[name] = np.array([len(blob), len(record)], dtype=np.int32)
        blob += record
    (folder / "Rdata.rdb").write_bytes(blob)
    index = {"variables": variables, "references": {}, "compressed": compressed}
    (folder / "Rdata.rdx").write_bytes(gzip.compress(_serialize(index)))
    return folder


@pytest.fixture
def survival_dir(tmp_path):
    """A folder laid out like an unpacked r-cran-survival .deb (pass it as --data-dir)."""
    write_lazyload(tmp_path / "pkg" / DATA, {"aml": pd.DataFrame({"time": [1.0, 2.0]}), "flchain": _frame()})
    return tmp_path / "pkg"


@pytest.fixture(autouse=True)
def _no_system_copy(monkeypatch):
    """Tests never see an r-cran-survival installed on the machine."""
    monkeypatch.setattr(flchain_mod, "SYSTEM_DIRS", ())


@pytest.mark.parametrize("compressed", [1, 2, 3])
def test_reader_gets_the_table_back_whatever_compression_r_used(tmp_path, compressed):
    df = _frame(20)
    folder = write_lazyload(tmp_path, {"other": pd.DataFrame({"x": [1.0]}), "flchain": df}, compressed)
    back = read_object(folder, "flchain")
    assert list(back.columns) == list(df.columns) and len(back) == 20
    assert np.allclose(back["kappa"].to_numpy(), df["kappa"].to_numpy())
    assert list(back["sex"]) == list(df["sex"])


def test_loader_encodes_standardises_and_leaves_out_the_outcome_columns(survival_dir):
    ds = load_dataset("flchain", DataContext(data_dir=survival_dir))
    df = _frame()
    assert len(ds) == 80 and ds.kind == "tabular" and ds.n_classes == 2 and ds.class_names == ["alive", "died"]
    assert np.array_equal(ds.y, df["death"].to_numpy().astype(np.int64))
    X, _, names = encode_frame(df)
    assert np.array_equal(ds.X, X)
    assert names == [
        "age", "sample.yr", "flc.grp", "mgus", "kappa", "lambda", "creatinine", "sex=F", "sex=M", "sex=missing",
    ]  # fmt: skip
    assert not any(n.startswith(("futime", "chapter", "death")) for n in names)  # follow-up and cause of death
    numeric = X[:, :7]
    assert np.allclose(numeric.mean(0), 0, atol=1e-5) and np.allclose(numeric.std(0), 1, atol=1e-4)
    log_kappa = np.log(df["kappa"].to_numpy())
    assert np.allclose(X[:, 4], (log_kappa - log_kappa.mean()) / log_kappa.std(), atol=1e-5)  # log, then z
    sex = X[:, 7:]
    assert np.array_equal(sex.sum(1), np.ones(80)) and np.array_equal(sex[:, 1], (df["sex"] == "M").to_numpy())


def test_missing_values_get_an_indicator_and_the_median_and_unlabelled_rows_are_dropped():
    df = _frame(10)
    df["creatinine"] = df["creatinine"].astype(float)
    df.loc[df.index[[0, 3]], "creatinine"] = np.nan
    df.loc[df.index[1], "death"] = np.nan
    df.loc[df.index[2], "sex"] = np.nan
    X, y, names = encode_frame(df)
    assert len(y) == 9  # the row without a death status is gone
    kept = df.drop(index=df.index[1])
    ind = X[:, names.index("creatinine=missing")]
    assert ind.tolist() == kept["creatinine"].isna().astype(float).tolist()
    col = X[:, names.index("creatinine")]
    present = kept["creatinine"].notna().to_numpy()
    slope, intercept = np.polyfit(np.log(kept["creatinine"].to_numpy()[present]), col[present], 1)  # the scaling
    median = np.median(np.log(kept["creatinine"].dropna().to_numpy()))
    assert np.allclose(col[~present], slope * median + intercept, atol=1e-4)  # imputed with the median
    assert X[1, names.index("sex=missing")] == 1.0  # original row 2 (row 1 was dropped)


def test_bad_tables_raise_data_errors_saying_what_is_wrong():
    df = _frame(10)
    with pytest.raises(DataError, match="no column.*'kappa'"):
        encode_frame(df.drop(columns=["kappa"]))
    bad = df.copy()
    bad.loc[bad.index[0], "death"] = 2.0
    with pytest.raises(DataError, match="'death' must be 0 or 1"):
        encode_frame(bad)
    bad = df.copy()
    bad.loc[bad.index[0], "lambda"] = -1.0
    with pytest.raises(DataError, match="'lambda' is a lab value and must be positive"):
        encode_frame(bad)
    with pytest.raises(DataError, match="no row has a death status"):
        encode_frame(df.assign(death=np.nan))


def test_damaged_files_raise_a_data_error_naming_the_fetch_script(survival_dir):
    data = survival_dir / DATA
    rdb = data / "Rdata.rdb"
    whole = rdb.read_bytes()
    ctx = DataContext(data_dir=survival_dir)
    rdb.write_bytes(whole[: len(whole) // 2])  # truncated download
    with pytest.raises(DataError, match="truncated.*\n.*fetch-flchain.sh"):
        load_dataset("flchain", ctx)
    rdb.write_bytes(whole[:-40] + bytes(40))  # right length, damaged end
    with pytest.raises(DataError, match="fetch-flchain.sh"):
        load_dataset("flchain", ctx)
    rdb.write_bytes(whole)
    (data / "Rdata.rdx").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a gzip-compressed R index(.|\n)*fetch-flchain.sh"):
        load_dataset("flchain", ctx)
    write_lazyload(data, {"aml": pd.DataFrame({"time": [1.0]})})
    with pytest.raises(DataError, match="holds no object 'flchain'"):
        load_dataset("flchain", ctx)


def test_a_lying_length_header_is_refused_before_it_fills_memory(tmp_path):
    folder = write_lazyload(tmp_path, {"flchain": _frame(5)})
    rdb = folder / "Rdata.rdb"
    blob = bytearray(rdb.read_bytes())
    blob[:4] = struct.pack(">I", 2**31)
    rdb.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="more than"):
        read_object(folder, "flchain")


def test_list_datasets_shows_where_flchain_comes_from(survival_dir, capsys):
    assert main(["list", "datasets", "--data-dir", str(survival_dir), "--json"]) == 0
    row = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["flchain"]
    assert row["here"] == "yes" and row["where"].endswith("Rdata.rdb")
    assert "r-cran-survival" in row["provenance"] and "LGPL" in row["provenance"]
    assert main(["list", "datasets"]) == 0
    assert "flchain comes from: data set flchain of R's survival package" in capsys.readouterr().out


def test_a_run_on_flchain_and_exit_2_without_the_files(survival_dir, tmp_path, capsys):
    args = [
        "--preset", "ci",
        "--set", "data.name=flchain",
        "--set", "method.name=dense",
        "--set", "audit.enabled=false",
        "--set", "train.epochs=1",
        "--set", "data.split.train=0.4",
        "--set", "data.split.population=0.1",
    ]  # fmt: skip
    assert main(["run", *args, "--set", f"data.data_dir={survival_dir}", "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["dataset"] == "flchain" and 0.0 <= report["task"]["accuracy"] <= 1.0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["run", *args, "--set", f"data.data_dir={empty}", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "flchain" in err and "scripts/fetch-flchain.sh" in err and "Traceback" not in err


@pytest.mark.parametrize("column,names", [("sex", ["F", "M"]), ("mgus", ["no", "yes"])])
def test_a_sensitive_attribute_is_held_out_of_the_inputs(survival_dir, column, names):
    """data.sensitive_column=sex|mgus: the attribute leaves the model's inputs and becomes the codes an attribute
    inference attack tries to recover; without it the table is encoded exactly as before."""
    df = _frame()
    ds = load_dataset("flchain", DataContext(data_dir=survival_dir, sensitive_column=column))
    plain = load_dataset("flchain", DataContext(data_dir=survival_dir))
    assert plain.sensitive is None and np.array_equal(plain.X, encode_frame(df)[0])
    assert ds.sensitive_names == names and ds.sensitive.dtype == np.int64
    truth = (df["sex"] == "M").to_numpy() if column == "sex" else (df["mgus"] == 1.0).to_numpy()
    assert np.array_equal(ds.sensitive, truth.astype(np.int64))
    _, _, kept = encode_frame(df, exclude=(column,))
    assert not any(n == column or n.startswith(f"{column}=") for n in kept)
    assert ds.X.shape[1] == len(kept) == plain.X.shape[1] - (3 if column == "sex" else 1)
    assert np.array_equal(ds.y, plain.y)


def test_a_sensitive_attribute_must_be_known_and_complete(survival_dir):
    with pytest.raises(DataError, match="must be one of sex, mgus"):
        load_dataset("flchain", DataContext(data_dir=survival_dir, sensitive_column="age"))
    df = _frame(20)
    df.loc[df.index[4], "sex"] = np.nan
    df.loc[df.index[7], "mgus"] = np.nan
    df.loc[df.index[9], "death"] = np.nan  # dropped like encode_frame drops it: its sex does not count
    with pytest.raises(DataError, match="1 rows have no usable 'sex'"):
        sensitive_codes(df, "sex")
    with pytest.raises(DataError, match="1 rows have no usable 'mgus'"):
        sensitive_codes(df, "mgus")
    df.loc[df.index[4], "sex"] = "F"
    codes, _ = sensitive_codes(df, "sex")
    assert len(codes) == len(encode_frame(df)[1]) == 19
