"""Model files: safetensors with the architecture in the metadata, so no pickle is ever needed.

Sparse weights (those with a mask) are stored packed — active values plus the mask, as a bitmask or
entropy-coded (zlib or Rice-coded gaps), whichever is smallest — so the file really shrinks with the
density; other tensors are stored as they are.

Opening a model file never runs code and never allocates more than the file's own data implies:

* :func:`load_model` builds registered zoo models only. A file whose metadata names a user factory
  (``"package.module:function"``, called as ``function(input_shape=, n_classes=, width=)``, or with the
  keyword arguments recorded under ``factory_kwargs`` for a :mod:`~safecompress.pretrained` folder's model)
  is refused unless the caller passes ``trust_code=True`` (CLI:
  ``--trust-model-code``), or this process already trusts that factory because the user's own config
  named it (:func:`trust_model_factory`).
* Every shape in the metadata is checked against the stored tensors before anything is allocated, and
  the architecture is first built on the ``meta`` device (no memory) and compared with the weights.
"""

from __future__ import annotations

import json
import math
import pkgutil
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from . import __version__
from .errors import PackedDataError, SafeCompressError, UntrustedCodeError
from .fileio import atomic_write_bytes
from .models import MODELS, ModelSpec, build_model
from .sparse.packing import MASK_CODINGS, VALUE_TYPES, pack, unpack, unpack_mask

FORMAT = "safecompress-v1"
_SEP = "::"  # packed tensors: NAME::values, the mask as NAME::bits, NAME::bits.zlib or NAME::runs + NAME::rice
_PARTS = (*MASK_CODINGS, "rice", "values", "scale")  # (and NAME::scale for int8; docs/packed-format.md)
_MAX_DIMS = 8
_TRUSTED_FACTORIES: set[str] = set()
FACTORY_KWARGS = "factory_kwargs"  # metadata of a user factory called as factory(**kwargs) (a pretrained folder)


def trust_model_factory(name: str) -> None:
    """Let :func:`load_model` build the user factory ``name`` in this process without ``trust_code``:
    called for the model of a config the user gave (their own code, already imported by then)."""
    if isinstance(name, str) and ":" in name:
        _TRUSTED_FACTORIES.add(name)


def check_model_name(name: Any, source: str, trust_code: bool = False) -> None:
    """Raise unless ``name`` is a registered model, or a factory path the caller trusts."""
    if not isinstance(name, str) or not name:
        raise SafeCompressError(f"{source}: the model name {name!r} is not a model of the zoo")
    if ":" not in name:
        if name not in MODELS:
            raise SafeCompressError(
                f"{source}: unknown model {name!r} (known: {', '.join(MODELS.names())}); the file was "
                "written by another version or edited"
            )
        return
    if not (trust_code or name in _TRUSTED_FACTORIES):
        raise UntrustedCodeError(
            f"{source} names the model factory {name!r}: building it would import that module and run its code. "
            "Pass --trust-model-code (trust_code=True in Python) only if you trust where the file came from"
        )


def serialize(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> bytes:
    return st_save({k: v.contiguous() for k, v in tensors.items()}, metadata={"json": json.dumps(meta)})


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write tensors plus JSON metadata (under the key 'json') as safetensors."""
    return atomic_write_bytes(path, serialize(tensors, meta))


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    try:
        raw = path.read_bytes()
        tensors = st_load(raw)
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get("json", "{}"))
    except (OSError, SafetensorError, ValueError, json.JSONDecodeError) as exc:
        raise SafeCompressError(f"cannot read {path}: {exc}; the file is missing or corrupt") from None
    return tensors, meta


def model_tensors(
    model: nn.Module,
    masks: dict[str, torch.Tensor] | None,
    values: str = "fp32",
    mask_codings: tuple[str, ...] = MASK_CODINGS,
):
    """(tensors, sparse-entry shapes) of a model with its sparse weights packed, each mask in the
    smallest of ``mask_codings``."""
    if values not in VALUE_TYPES:
        raise SafeCompressError(f"--values must be one of {', '.join(VALUE_TYPES)}, got {values!r}")
    masks = masks or {}
    tensors: dict[str, torch.Tensor] = {}
    sparse: dict[str, list[int]] = {}
    for name, value in model.state_dict().items():
        if name in masks:
            for key, part in pack(value, masks[name], values, mask_codings).items():
                tensors[f"{name}{_SEP}{key}"] = part
            sparse[name] = list(value.shape)
        else:
            tensors[name] = value.detach().cpu()
    return tensors, sparse


def save_model(
    model: nn.Module,
    spec: ModelSpec,
    path: str | Path,
    masks: dict[str, torch.Tensor] | None = None,
    values: str = "fp32",
    extra: dict[str, Any] | None = None,
    mask_codings: tuple[str, ...] = MASK_CODINGS,
) -> Path:
    """Write the model; weights with a mask are packed (values + the mask in the smallest of
    ``mask_codings``; ``("bits",)`` writes files that readers before the coded masks can open), the rest
    stored dense."""
    return atomic_write_bytes(path, model_bytes(model, spec, masks, values, extra, mask_codings))


def model_bytes(
    model: nn.Module,
    spec: ModelSpec,
    masks: dict[str, torch.Tensor] | None = None,
    values: str = "fp32",
    extra: dict[str, Any] | None = None,
    mask_codings: tuple[str, ...] = MASK_CODINGS,
) -> bytes:
    """The bytes :func:`save_model` writes."""
    tensors, sparse = model_tensors(model, masks, values, mask_codings)
    meta = {
        "format": FORMAT,
        "version": __version__,
        "model": spec.to_dict(),
        "values": values,
        "sparse": sparse,
        **(extra or {}),
    }
    return serialize(tensors, meta)


def _shape(value: Any, name: str, path: Path) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or len(value) > _MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d for d in value)
    ):
        raise SafeCompressError(f"{path}: the metadata gives {name} the shape {value!r}; the file is corrupt")
    return tuple(value)


def read_model_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """(dense state dict, masks of the packed weights, metadata) of a model file.

    Shapes in the metadata are checked against the stored data first: a packed weight of shape S
    with a raw mask needs exactly ceil(prod(S)/8) mask bytes, a coded mask (zlib or Rice) may describe
    at most 65536 + 1024 weights per byte of its mask and values (``packing.coded_limit``), and there
    must be as many values as kept weights, so no header can make this allocate more than a bounded
    multiple of what the file holds (x 32 for raw bits, a few thousand for coded masks)."""
    path = Path(path)
    tensors, meta = load_tensors(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise SafeCompressError(f"{path} is not a safecompress model file (format {got!r})")
    state: dict[str, torch.Tensor] = {k: v for k, v in tensors.items() if _SEP not in k}
    masks: dict[str, torch.Tensor] = {}
    sparse = meta.get("sparse", {})
    if not isinstance(sparse, dict):
        raise SafeCompressError(f"{path}: the metadata's sparse entry is not a mapping; the file is corrupt")
    name = ""
    try:
        for name, raw_shape in sparse.items():
            shape = _shape(raw_shape, name, path)
            parts = {key: tensors[f"{name}{_SEP}{key}"] for key in _PARTS if f"{name}{_SEP}{key}" in tensors}
            if "values" not in parts:
                raise PackedDataError("no ::values")
            if parts["values"].dim() != 1 or ("scale" in parts and parts["scale"].numel() != 1):
                raise PackedDataError("values must be one flat tensor (and one scale)")
            mask = unpack_mask(parts, shape)
            state[name] = unpack(parts, shape, mask=mask)
            masks[name] = mask
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise PackedDataError(f"{path}: packed weight {name!r} is corrupt ({exc}); re-export the model") from None
    return state, masks, meta


def _spec(meta: dict[str, Any], path: Path, trust_code: bool) -> ModelSpec:
    raw = meta.get("model")
    if not isinstance(raw, dict):
        raise SafeCompressError(f"{path}: the metadata holds no model description; the file is corrupt")
    check_model_name(raw.get("name"), str(path), trust_code)
    try:
        spec = ModelSpec.from_dict(raw)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise SafeCompressError(f"{path}: the model description is corrupt ({exc!r})") from None
    if (
        len(spec.input_shape) > _MAX_DIMS
        or any(d <= 0 for d in spec.input_shape)
        or spec.n_classes < 1
        or not math.isfinite(spec.width)
        or spec.width <= 0
        or not 0 <= spec.vocab_size <= 2**24
    ):
        raise SafeCompressError(f"{path}: the model description {raw!r} is impossible; the file is corrupt")
    return spec


def call_factory(
    fn: Callable[..., Any], name: str, kwargs: dict[str, Any], error: type[Exception], where: str = ""
) -> nn.Module:
    """``fn(**kwargs)`` with seed 0 (the caller's random state is left as it was), checked to be a module; the
    user's code failing becomes ``error``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model = fn(**kwargs)
        except Exception as exc:  # noqa: BLE001  (the user's code: any failure is theirs to fix)
            why = f"{type(exc).__name__}: {exc}"
            raise error(f"{where}the factory {name} raised {why} (called with {kwargs})") from None
    if not isinstance(model, nn.Module):
        raise error(f"{where}the factory {name} returned {type(model).__name__}, not a torch nn.Module")
    return model


def _recorded_build(spec: ModelSpec, meta: dict[str, Any], path: Path) -> Callable[[], nn.Module] | None:
    """How to build a user factory recorded with its own keyword arguments (``meta["factory_kwargs"]``: a
    :mod:`~safecompress.pretrained` save), called as ``factory(**kwargs)`` with seed 0; None for the zoo models
    and config factories, which :func:`~safecompress.models.build_model` builds. The caller has checked that
    the factory is trusted (:func:`check_model_name`)."""
    if FACTORY_KWARGS not in meta or ":" not in spec.name:
        return None
    kwargs = meta[FACTORY_KWARGS]
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise SafeCompressError(f"{path}: the metadata's {FACTORY_KWARGS} is not a mapping; the file is corrupt")

    def build() -> nn.Module:
        try:
            fn = pkgutil.resolve_name(spec.name)
        except Exception as exc:  # noqa: BLE001  (ImportError, or whatever the user's module raises on import)
            raise SafeCompressError(f"{path}: cannot import the model factory {spec.name!r} ({exc})") from None
        return call_factory(fn, spec.name, kwargs, SafeCompressError, f"{path}: ")

    return build


def state_differences(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> list[str]:
    """The keys one state dict has and the other lacks, else those whose shapes differ (empty: they fit)."""
    want = {k: tuple(v.shape) for k, v in expected.items()}
    have = {k: tuple(v.shape) for k, v in got.items()}
    return sorted(set(want) ^ set(have)) or [k for k in want if want[k] != have[k]]


def _build_checked(
    spec: ModelSpec, state: dict[str, torch.Tensor], path: Path, build: Callable[[], nn.Module] | None = None
) -> nn.Module:
    """Build the model for ``state``: first on the meta device (no memory), compared key by key and shape
    by shape with the stored weights, and only then for real. ``build`` makes the architecture (default: the
    zoo model or config factory that ``spec`` names, seed 0)."""
    build = build or (lambda: build_model(spec, seed=0))
    try:
        with torch.device("meta"):
            skeleton = build()
    except SafeCompressError:
        raise
    except Exception as exc:  # noqa: BLE001  (any failure of a corrupt description)
        raise SafeCompressError(f"{path}: cannot build the saved architecture ({type(exc).__name__}: {exc})") from None
    diff = state_differences(skeleton.state_dict(), state)
    if diff:
        raise SafeCompressError(
            f"{path}: weights do not fit the saved architecture (differences at "
            f"{', '.join(diff[:5])}); the file is corrupt or was edited"
        )
    model = build()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise SafeCompressError(f"{path}: weights do not fit the saved architecture ({exc})") from None
    return model


def export_model(src: str | Path, dest: str | Path, values: str, trust_code: bool = False) -> Path:
    """Re-save a model file with its packed weights' values as fp32, fp16 or int8."""
    src = Path(src)
    state, masks, meta = read_model_file(src)
    spec = _spec(meta, src, trust_code)
    model = _build_checked(spec, state, src, _recorded_build(spec, meta, src))
    extra = {k: v for k, v in meta.items() if k not in ("format", "version", "model", "values", "sparse")}
    return save_model(model, spec, dest, masks=masks, values=values, extra=extra)


def read_model(
    path: str | Path, trust_code: bool = False, build: Callable[[ModelSpec], nn.Module] | None = None
) -> tuple[nn.Module, dict[str, torch.Tensor], dict[str, Any]]:
    """(model, masks of its packed weights, metadata) of the file at ``path``, checked like :func:`load_model`;
    ``build(spec)`` makes the architecture instead of the zoo model or config factory the metadata names
    (the factory a :mod:`~safecompress.pretrained` folder records, with its own arguments)."""
    path = Path(path)
    state, masks, meta = read_model_file(path)
    spec = _spec(meta, path, trust_code)
    built = (lambda: build(spec)) if build else _recorded_build(spec, meta, path)
    return _build_checked(spec, state, path, built), masks, meta


def load_model(path: str | Path, device: str | torch.device = "cpu", trust_code: bool = False) -> nn.Module:
    """Rebuild the model saved at ``path`` (architecture from the metadata, weights from the tensors).

    Only registered models are built, unless ``trust_code`` (see the module docstring)."""
    return read_model(path, trust_code)[0].to(device).eval()


def compression_summary(
    model: nn.Module, masks: dict[str, torch.Tensor] | None, file_bytes: int, spec: ModelSpec
) -> dict[str, Any]:
    """report.json's ``compression``: density of the prunable weights, non-zero parameters (active
    sparse weights + dense parameters), file bytes,
    the bytes of the same model saved dense (fp32, same container) and their ratio."""
    masks = masks or {}
    state = model.state_dict()
    prunable = sum(m.numel() for m in masks.values())
    active = sum(int(m.sum()) for m in masks.values())
    other = sum(p.numel() for k, p in model.named_parameters() if k not in masks)
    dense_meta = {"format": FORMAT, "version": __version__, "model": spec.to_dict(), "values": "fp32", "sparse": {}}
    dense_bytes = len(serialize({k: v.detach().cpu() for k, v in state.items()}, dense_meta))
    return {
        "density": active / prunable if prunable else 1.0,
        "nonzeros": active + other,
        "parameters": sum(p.numel() for p in model.parameters()),
        "file_bytes": int(file_bytes),
        "dense_bytes": int(dense_bytes),
        "ratio": round(dense_bytes / file_bytes, 3) if file_bytes else None,
    }
