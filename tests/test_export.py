"""`safecompress export --format ...`: every format computes what the run's model computes, bad input exits 2
with a message and writes nothing, and the packed layout documented in docs/packed-format.md is what the
files hold (its numpy unpacker is run here)."""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from runargs import ci_args
from safecompress.checkpoint import load_model, read_model_file, save_model
from safecompress.cli import EXPORT_FORMATS, main
from safecompress.export import FORMATS, ExportFormat
from safecompress.models import ModelSpec, build_model

DOC = Path(__file__).resolve().parent.parent / "docs" / "packed-format.md"
RUNTIME_FORMATS = ["dense", "torch-prune", "torchscript", "pt2", "onnx"]
DENSITY = 0.2


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def run(request, tmp_path_factory):
    """A finished tiny run (static sparse training at DENSITY, one epoch) of an MLP, and of a CNN with BatchNorm."""
    out = tmp_path_factory.mktemp(f"export-{request.param}") / "run"
    settings = {"model.name": request.param, "method.name": "static", "sparse.density": DENSITY, "train.epochs": 1}
    assert main(["run", *ci_args(settings), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export-bad") / "run"
    settings = {"method.name": "static", "sparse.density": DENSITY, "train.epochs": 1}
    assert main(["run", *ci_args(settings), "--out", str(out)]) == 0
    return out


def _inputs(model_file: Path, n: int = 5) -> torch.Tensor:
    """n test inputs (not the exporter's batch of 2) of the model's recorded input shape."""
    _, _, meta = read_model_file(model_file)
    gen = torch.Generator().manual_seed(123)
    return torch.randn((n, *meta["model"]["input_shape"]), generator=gen)


def _spec(path: Path) -> ModelSpec:
    with safe_open(str(path), "pt") as f:
        return ModelSpec.from_dict(json.loads(f.metadata()["model"]))


def _exported_outputs(fmt: str, path: Path, x: torch.Tensor, run_dir: Path) -> torch.Tensor:
    """Outputs of the exported file ``path`` for ``x``, computed the way a user of that runtime would."""
    if fmt == "dense":
        model = build_model(_spec(path), seed=1)  # a fresh zoo model: every weight must come from the file
        model.load_state_dict(load_file(path))
        return model.eval()(x)
    if fmt == "torch-prune":
        from torch.nn.utils import prune

        state = load_file(path)
        with safe_open(str(path), "pt") as f:
            pruned = json.loads(f.metadata()["pruned"])
        model = build_model(_spec(path), seed=1)
        for full in pruned:
            module_name, _, name = full.rpartition(".")
            prune.custom_from_mask(model.get_submodule(module_name), name, state[f"{full}_mask"])
        model.load_state_dict(state)
        masks = {k: v for k, v in model.state_dict().items() if k.endswith("_mask")}
        _, run_masks, _ = read_model_file(run_dir / "model.safetensors")
        assert sorted(masks) == sorted(f"{k}_mask" for k in run_masks) and masks
        assert set(state) == set(model.state_dict())  # exactly prune's names, nothing else
        density = sum(float(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
        report = json.loads((run_dir / "report.json").read_text())
        assert density == pytest.approx(report["compression"]["density"], abs=1e-12)
        assert density == pytest.approx(DENSITY, abs=1e-3)
        for k, m in run_masks.items():
            assert torch.equal(masks[f"{k}_mask"].bool(), m)
        return model.eval()(x)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is in maintenance mode
            return torch.jit.load(str(path))(x)
    if fmt == "pt2":
        return torch.export.load(str(path)).module()(x)
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(path))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [18]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.HasField("dim_value")  # dynamic batch axis
    assert json.loads({p.key: p.value for p in proto.metadata_props}["safecompress.model"])["name"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


@pytest.mark.parametrize("fmt", RUNTIME_FORMATS)
def test_every_format_computes_the_runs_outputs(run, fmt, capsys):
    assert main(["export", str(run), "--format", fmt]) == 0
    path = run / FORMATS.get(fmt).filename
    assert path.is_file() and f"wrote {path}" in capsys.readouterr().out.replace("\n", "")
    model = load_model(run / "model.safetensors")
    for n in (5, 1):  # the batch dimension is free in every format
        x = _inputs(run / "model.safetensors", n)
        with torch.no_grad():
            expected = model(x)
            got = _exported_outputs(fmt, path, x, run)
        assert got.shape == expected.shape
        assert float((got - expected).abs().max()) <= 1e-5
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no temporary file left


def test_dense_file_is_the_state_dict_with_zeros_where_pruned(mlp_run):
    assert main(["export", str(mlp_run), "--format", "dense", "-o", str(mlp_run / "d.safetensors")]) == 0
    state = load_file(mlp_run / "d.safetensors")
    _, masks, meta = read_model_file(mlp_run / "model.safetensors")
    assert set(state) == set(load_model(mlp_run / "model.safetensors").state_dict())
    for name, mask in masks.items():
        assert torch.all(state[name][~mask] == 0)
    with safe_open(str(mlp_run / "d.safetensors"), "pt") as f:
        header = f.metadata()
    assert json.loads(header["model"]) == meta["model"] and header["format"] == "safecompress-dense-v1"
    assert float(header["density"]) == pytest.approx(DENSITY, abs=1e-3)


def test_cli_lists_every_registered_format():
    assert set(EXPORT_FORMATS) == {"packed", *FORMATS.names()}
    assert EXPORT_FORMATS[0] == "packed"


def test_packed_stays_the_default_and_an_existing_output_is_replaced(mlp_run):
    assert main(["export", str(mlp_run)]) == 0  # today's behaviour: fp16 packed variant
    path = mlp_run / "model-fp16.safetensors"
    assert read_model_file(path)[2]["values"] == "fp16"
    assert main(["export", str(mlp_run), "--format", "packed", "--values", "int8", "-o", str(path)]) == 0
    assert read_model_file(path)[2]["values"] == "int8"


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_a_folder_without_a_model_exits_2_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    before = _listing(tmp_path)
    for fmt in ("packed", *RUNTIME_FORMATS):
        assert main(["export", str(tmp_path), "--format", fmt]) == 2
        err = capsys.readouterr().err
        assert "no model.safetensors" in err and "finished run" in err and "Traceback" not in err
    assert _listing(tmp_path) == before


def test_an_unknown_format_exits_2_and_writes_nothing(mlp_run, capsys):
    before = _listing(mlp_run)
    assert main(["export", str(mlp_run), "--format", "tflite"]) == 2
    err = capsys.readouterr().err
    assert "tflite" in err and "onnx" in err and "Traceback" not in err  # says what is accepted
    assert _listing(mlp_run) == before


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--format", "onnx", "--values", "int8"], "--values applies to --format packed only"),
        (["--format", "dense", "-o", "{run}/model.safetensors"], "the run's own model file"),
        (["--format", "dense", "-o", "{run}"], "is a folder"),
        (["--format", "dense", "-o", "{run}/config.yaml/x.safetensors"], "is not a folder"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(mlp_run, capsys, args, needle):
    args = [a.replace("{run}", str(mlp_run)) for a in args]
    before = _listing(mlp_run)
    assert main(["export", str(mlp_run), *args]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert needle in err and "Traceback" not in err
    assert _listing(mlp_run) == before


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime", "onnxscript"])
def test_a_missing_optional_dependency_names_the_extra(mlp_run, capsys, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` raise ImportError
    before = _listing(mlp_run)
    assert main(["export", str(mlp_run), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert missing in err and "pip install 'safecompress[export]'" in err and "Traceback" not in err
    assert _listing(mlp_run) == before


def test_an_unwritable_output_or_a_failing_exporter_exits_2_and_leaves_nothing(mlp_run, capsys, monkeypatch):
    before = _listing(mlp_run)

    def denied(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    with monkeypatch.context() as m:
        m.setattr(os, "replace", denied)
        assert main(["export", str(mlp_run), "--format", "pt2"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "cannot write" in err and "model.pt2" in err and "Traceback" not in err
    assert _listing(mlp_run) == before

    def broken(model, example, source):
        raise RuntimeError("operator not supported")

    monkeypatch.setitem(FORMATS._entries, "dense", ExportFormat(broken, "model-dense.safetensors", "broken"))
    assert main(["export", str(mlp_run), "--format", "dense"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "operator not supported" in err and "try another format" in err and "Traceback" not in err
    assert _listing(mlp_run) == before


def _doc_unpacker() -> dict:
    """Execute the numpy unpacker code block of docs/packed-format.md; its namespace."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    code = [b for b in blocks if "def unpack_model" in b]
    assert len(code) == 1
    imported = set(re.findall(r"^(?:from|import) (\w+)", code[0], flags=re.M))
    assert imported == {"json", "numpy", "safetensors", "zlib"}  # numpy-only: no torch, no safecompress
    namespace: dict = {}
    exec(compile(code[0], str(DOC), "exec"), namespace)
    return namespace


def test_the_documented_numpy_unpacker_reads_every_packed_variant(mlp_run):
    unpack_model = _doc_unpacker()["unpack_model"]
    src = mlp_run / "model.safetensors"
    paths = {"fp32": src}
    for values in ("fp16", "int8"):
        paths[values] = mlp_run / f"doc-{values}.safetensors"
        assert main(["export", str(mlp_run), "--values", values, "-o", str(paths[values])]) == 0
    # every mask coding, each forced on every packed weight (and the file as written: the smallest of each)
    state, masks, meta = read_model_file(src)
    spec = ModelSpec.from_dict(meta["model"])
    model = build_model(spec, 0)
    model.load_state_dict(state)
    for coding in ("bits", "bits.zlib", "runs"):
        for values in ("fp32", "int8"):
            path = mlp_run / f"doc-{coding}-{values}.safetensors"
            save_model(model, spec, path, masks=masks, values=values, mask_codings=(coding,))
            assert all(f"{name}::{coding}" in load_file(path) for name in masks), (coding, values)
            paths[f"{coding}-{values}"] = path
    for values, path in paths.items():
        got = unpack_model(path)
        expected = {k: v.numpy() for k, v in load_model(path).state_dict().items()}
        assert set(got) == set(expected), values
        for name, array in expected.items():
            assert got[name].dtype == array.dtype and got[name].shape == array.shape, (values, name)
            assert got[name].tobytes() == array.tobytes(), (values, name)  # bit-exact
    # the layout the page describes: MSB-first bits in row-major order, values in that order
    src = paths["bits-fp32"]
    tensors = load_file(src)
    name = next(iter(meta["sparse"]))
    weight = load_model(src).state_dict()[name].numpy().reshape(-1)
    bits = tensors[f"{name}::bits"].numpy()
    first = int(np.argmax(np.unpackbits(bits)))
    assert bits[first // 8] >> (7 - first % 8) & 1
    assert tensors[f"{name}::values"][0].item() == weight[first]
    # Rice: the first kept position is the first gap, its low k bits the first k bits of ::runs
    runs = load_file(paths["runs-fp32"])
    k = int(runs[f"{name}::rice"][0])
    low = np.unpackbits(runs[f"{name}::runs"].numpy())[:k]
    assert first & ((1 << k) - 1) == int("".join(map(str, low)) or "0", 2)
    # and a file with a coded mask the unpacker's own checks refuse: points beyond the tensor
    read_mask = _doc_unpacker()["read_mask"]
    beyond = {"w::rice": np.array([0], np.uint8), "w::runs": np.array([0b00000001], np.uint8)}  # one gap of 7
    with pytest.raises(ValueError, match="beyond"):
        read_mask(beyond, "w", 4, 1)  # position 7 of a 4-weight tensor


def test_pt2_falls_back_to_the_fixed_batch_when_it_cannot_be_dynamic(caplog):
    from safecompress.export.pt2 import exported_program

    class PairsBatch(torch.nn.Module):  # reshapes with the batch size baked in: no dynamic batch possible
        def forward(self, x):
            return x.reshape(2, -1).sum(dim=1)

    example = torch.randn(2, 3)
    with caplog.at_level("WARNING", logger="safecompress.export.pt2"):
        program, dynamic = exported_program(PairsBatch(), example)
    assert not dynamic and "batch 2" in caplog.text
    assert torch.equal(program.module()(example), PairsBatch()(example))
