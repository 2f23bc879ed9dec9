"""Property-based (hypothesis): malformed configs, csv/npz datasets and model files thrown at the CLI
always get exit code 2 and a message — never a traceback, never a change to a file that was there
(model files whose edited header still describes a valid model may be exported: exit 0).

Every generated input carries at least one defect by construction, so no example can start a real
run. Bounded: 25 examples per property, no deadline; the whole file takes seconds.
"""

import contextlib
import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from safecompress.checkpoint import load_tensors, save_model, save_tensors  # noqa: E402
from safecompress.cli import main  # noqa: E402
from safecompress.models import ModelSpec, build_model  # noqa: E402

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RUN = [
    "run",
    "--preset",
    "ci",
    "--set",
    "model.name=mlp",
    "--set",
    "method.name=dense",
    "--set",
    "train.epochs=1",
    "--set",
    "train.augment=false",
    "--set",
    "audit.enabled=false",
]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _cli(root: Path, args: list[str], may_succeed: bool = False) -> int:
    """Run the CLI in-process on ``args``: exit 2, a message, no traceback, pre-existing files unchanged,
    nothing left at ``root/out``. With ``may_succeed`` exit 0 is accepted too (a mutation that happens
    to leave a valid file), and then ``root/out`` must be a model that loads."""
    before = _files(root)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    text = err.getvalue()
    assert "Traceback" not in text, text
    after = _files(root)
    assert {k: v for k, v in after.items() if k in before} == before
    if code == 0 and may_succeed:
        from safecompress.checkpoint import load_model

        load_model(root / "out")
        return code
    assert code == 2, (code, text)
    assert "error" in text, text
    assert not (root / "out").exists()
    return code


# --- configs ----------------------------------------------------------------------------------------------

VALID_YAML = "seed: 3\ndata:\n  split:\n    train: 0.3\ntrain:\n  lr: 0.01\n  epochs: 1\naudit:\n  enabled: false\n"
yaml_text = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.builds(lambda cut, junk: VALID_YAML[:cut] + junk, st.integers(0, len(VALID_YAML)), st.text(max_size=40)),
    st.builds(
        lambda n: "".join(
            f"k{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9 if i else ["x"] * 9) + "]\n" for i in range(n)
        ),
        st.integers(6, 12),
    ),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    ).map(json.dumps),
)


@FUZZ
@given(content=yaml_text)
def test_malformed_config_files(content):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bad = root / "bad.npz"
        bad.write_bytes(b"not an npz")
        cfg = root / "c.yaml"
        cfg.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
        # whatever the config says, the data it must read is broken: no example can start a run
        _cli(
            root,
            [
                *RUN,
                "--config",
                str(cfg),
                "--set",
                "data.name=npz",
                "--set",
                f"data.path={bad}",
                "--out",
                str(root / "out"),
            ],
        )


@FUZZ
@given(
    value=st.text(max_size=60),
    key=st.sampled_from(
        ["seed", "train.lr", "data.split.train", "audit.attacks", "model.width", "sparse.density", "data.max_samples"]
    ),
)
def test_malformed_overrides(value, key):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bad = root / "bad.csv"
        bad.write_bytes(b"f,label\n1,\n")  # an empty label: refused after the config
        _cli(
            root,
            [
                *RUN,
                "--set",
                f"{key}={value}",
                "--set",
                "data.name=csv",
                "--set",
                f"data.path={bad}",
                "--out",
                str(root / "out"),
            ],
        )


# --- csv ------------------------------------------------------------------------------------------------

CSV_DEFECTS = {
    "latin1": lambda rows: rows + [b"1,2,caf\xe9"],
    "empty label": lambda rows: rows + [b"1,2,"],
    "huge label": lambda rows: rows + [b"1,2,123456789012345678901234567890"],
    "text feature": lambda rows: rows + [b"one,2,1"],
    "nan feature": lambda rows: rows + [b"nan,2,1"],
    "ragged": lambda rows: rows + [b"1,2"],
    "one class": lambda rows: [r.rsplit(b",", 1)[0] + b",7" for r in rows],
    "no rows": lambda rows: [],
    "nul byte": lambda rows: rows + [b"1,\x002,1"],
}


@FUZZ
@given(
    values=st.lists(st.tuples(st.floats(-1e6, 1e6), st.integers(-5, 5), st.integers(0, 3)), min_size=0, max_size=30),
    defect=st.sampled_from(sorted(CSV_DEFECTS)),
    header=st.sampled_from([b"f1,f2,label", b"\xef\xbb\xbff1,f2,label"]),
    position=st.floats(0, 1),
)
def test_malformed_csv(values, defect, header, position):
    rows = [f"{a!r},{b},{c}".encode() for a, b, c in values]
    rows = CSV_DEFECTS[defect](rows)
    if rows and defect not in ("one class", "no rows"):
        bad = rows.pop()
        rows.insert(int(position * len(rows)), bad)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "d.csv").write_bytes(b"\n".join([header, *rows]) + b"\n")
        _cli(root, [*RUN, "--set", "data.name=csv", "--set", f"data.path={root / 'd.csv'}", "--out", str(root / "out")])


# --- npz ------------------------------------------------------------------------------------------------


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npz_case(kind: str, n: int, cut: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, 3)).astype(np.float32), np.arange(n) % 3
    cases = {
        "object X": lambda: _npz_bytes({"X": np.array([{"a": 1}] * n, dtype=object), "y": y}),
        "nan X": lambda: _npz_bytes(
            {"X": np.where(X > 1, np.nan, X).astype(np.float32) if (X > 1).any() else np.full_like(X, np.nan), "y": y}
        ),
        "fractional y": lambda: _npz_bytes({"X": X, "y": y + 0.25}),
        "huge float y": lambda: _npz_bytes({"X": X, "y": np.where(y == 0, 2.0**60, y).astype(float)}),
        "length mismatch": lambda: _npz_bytes({"X": X, "y": np.append(y, 1)}),
        "no y": lambda: _npz_bytes({"X": X}),
        "1-D X": lambda: _npz_bytes({"X": X[:, 0], "y": y}),
        "5-D X": lambda: _npz_bytes({"X": X.reshape(n, 3, 1, 1, 1), "y": y}),
        "one class": lambda: _npz_bytes({"X": X, "y": np.zeros(n, dtype=np.int64)}),
        "string X": lambda: _npz_bytes({"X": np.array([["a"] * 3] * n), "y": y}),
        "truncated": lambda: (lambda b: b[: int(cut * (len(b) - 1))])(_npz_bytes({"X": X, "y": y})),
        "garbage": lambda: rng.bytes(int(cut * 400)),
        "npy not npz": lambda: (lambda buf: (np.save(buf, X), buf.getvalue())[1])(io.BytesIO()),
        "forged header": lambda: _forged_npz(X, y),
    }
    return cases[kind]()


def _forged_npz(X, y) -> bytes:
    """An npz whose X header claims 10^13 rows (40 TB) while holding a few bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        header = np.lib.format.header_data_from_array_1_0(X)
        header["shape"] = (10**13, 3)
        npy = io.BytesIO()
        np.lib.format.write_array_header_1_0(npy, header)
        zf.writestr("X.npy", npy.getvalue() + X.tobytes())
        npy = io.BytesIO()
        np.lib.format.write_array(npy, y)
        zf.writestr("y.npy", npy.getvalue())
    return buf.getvalue()


NPZ_KINDS = [
    "object X",
    "nan X",
    "fractional y",
    "huge float y",
    "length mismatch",
    "no y",
    "1-D X",
    "5-D X",
    "one class",
    "string X",
    "truncated",
    "garbage",
    "npy not npz",
    "forged header",
]


@FUZZ
@given(kind=st.sampled_from(NPZ_KINDS), n=st.integers(4, 40), cut=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_malformed_npz(kind, n, cut, seed):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "d.npz").write_bytes(_npz_case(kind, n, cut, seed))
        _cli(root, [*RUN, "--set", "data.name=npz", "--set", f"data.path={root / 'd.npz'}", "--out", str(root / "out")])


# --- model files ------------------------------------------------------------------------------------------


def _model_file(path: Path) -> Path:
    spec = ModelSpec("mlp", (6,), 3, 0.02)
    model = build_model(spec, 0)
    masks = {
        n: torch.arange(p.numel()).reshape(p.shape) % 2 == 0
        for n, p in model.named_parameters()
        if n.endswith("weight")
    }
    return save_model(model, spec, path, masks=masks)


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
META_FIELDS = [
    "format",
    "model",
    "model.name",
    "model.input_shape",
    "model.n_classes",
    "model.width",
    "model.norm",
    "sparse",
    "sparse.first",
]


@FUZZ
@given(
    how=st.sampled_from(["truncate", "header bytes", "metadata"]),
    cut=st.floats(0, 1),
    field=st.sampled_from(META_FIELDS),
    value=json_value,
    noise=st.binary(min_size=1, max_size=8),
)
def test_malformed_model_files(how, cut, field, value, noise):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = root / "run"
        path = _model_file(run / "model.safetensors")
        raw = path.read_bytes()
        header_len = int.from_bytes(raw[:8], "little")
        if how == "truncate":
            path.write_bytes(raw[: int(cut * (len(raw) - 1))])
        elif how == "header bytes":  # overwrite part of the length or the JSON header
            at = int(cut * (8 + header_len - len(noise)))
            mutated = raw[:at] + noise + raw[at + len(noise) :]
            assume(mutated != raw)
            path.write_bytes(mutated)
        else:
            tensors, meta = load_tensors(path)
            keys = field.split(".")
            node = meta
            for k in keys[:-1]:
                node = node[k]
            last = keys[-1] if keys[-1] != "first" else next(iter(node))
            assume(node.get(last) != value)
            node[last] = value
            save_tensors(path, tensors, meta)
        # a truncated file is always refused; an edited header or metadata may by chance still describe
        # the same model (norm "none" for the MLP, n_classes 3.0, a changed version string)
        _cli(root, ["export", str(run), "--out", str(root / "out")], may_succeed=how != "truncate")
