"""Packed masks (issue 18): raw bits, zlib-compressed bits and Rice-coded gaps round-trip bit for bit, the
smallest is chosen, old files (only ::bits) still load, and corrupt coded data raises PackedDataError."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save

from safecompress.checkpoint import FORMAT, load_model, load_tensors, read_model_file, save_model, save_tensors
from safecompress.errors import PackedDataError, SafeCompressError
from safecompress.models import ModelSpec, build_model
from safecompress.sparse.masks import prunable_parameters
from safecompress.sparse.packing import (
    MASK_CODINGS,
    mask_coding,
    pack,
    rice_decode,
    rice_encode,
    rice_parameter,
    unpack,
    unpack_mask,
)

SHAPES = [(1,), (7,), (37, 11), (3, 5, 7), (257, 129)]
DENSITIES = [0.001, 0.01, 0.05, 0.2, 0.5, 0.9]
FORCED = [(c,) for c in MASK_CODINGS] + [MASK_CODINGS]


def _case(shape, density, seed=0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(shape, generator=g)
    if density == "empty":
        mask = torch.zeros(shape, dtype=torch.bool)
    elif density == "full":
        mask = torch.ones(shape, dtype=torch.bool)
    else:
        mask = torch.rand(shape, generator=g) < density
    return weight, mask


def _mask_bytes(parts):
    return sum(v.numel() for k, v in parts.items() if k in (*MASK_CODINGS, "rice"))


@pytest.mark.parametrize("codings", FORCED, ids=["+".join(c) for c in FORCED])
@pytest.mark.parametrize("density", [*DENSITIES, "empty", "full"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_coding_round_trips_bit_for_bit(shape, density, codings):
    weight, mask = _case(shape, density)
    weight[mask & (torch.rand(shape) < 0.1)] = 0.0  # kept weights may be 0.0 themselves
    parts = pack(weight, mask, "fp32", codings)
    assert mask_coding(parts) in codings or mask_coding(parts) == "bits"  # bits: the fallback
    assert torch.equal(unpack_mask(parts, shape), mask)
    back = unpack(parts, shape)
    expected = torch.where(mask, weight, torch.zeros(()))
    assert back.dtype == torch.float32 and back.numpy().tobytes() == expected.numpy().tobytes()


@pytest.mark.parametrize("density", DENSITIES)
def test_the_smallest_coding_is_chosen(density):
    weight, mask = _case((300, 200), density, seed=1)
    sizes = {c: _mask_bytes(pack(weight, mask, "fp16", (c,))) for c in MASK_CODINGS}
    chosen = pack(weight, mask, "fp16")
    assert _mask_bytes(chosen) == min(sizes.values())
    if density <= 0.2:  # sparse: the Rice-coded gaps, within 3 % of the entropy for d >= 0.01
        assert mask_coding(chosen) == "runs"
        h = -(density * math.log2(density) + (1 - density) * math.log2(1 - density))
        assert _mask_bytes(chosen) < (1.03 if density >= 0.01 else 1.15) * h * mask.numel() / 8 + 2
    if density == 0.9:
        assert mask_coding(chosen) == "bits.zlib"


def test_rice_parameter_follows_the_density():
    assert [rice_parameter(d) for d in (0.5, 0.2, 0.1, 0.05, 0.01, 0.001)] == [0, 1, 3, 4, 6, 9]
    positions = np.array([0, 5, 6, 300, 999], dtype=np.int64)
    for k in range(0, 11):
        coded, _ = rice_encode(positions, k=k)
        assert np.array_equal(rice_decode(np.frombuffer(coded, np.uint8), k, 5, 1000), positions)


def _old_format_file(path, model, spec, masks):
    """A file exactly as safecompress wrote it before coded masks: NAME::bits + NAME::values, by hand."""
    tensors, sparse = {}, {}
    for name, value in model.state_dict().items():
        if name in masks:
            flat = masks[name].numpy().reshape(-1)
            tensors[f"{name}::bits"] = torch.from_numpy(np.packbits(flat.astype(np.uint8)))
            tensors[f"{name}::values"] = value[masks[name]].float().clone()
            sparse[name] = list(value.shape)
        else:
            tensors[name] = value.clone()
    meta = {"format": FORMAT, "version": "0.1.0", "model": spec.to_dict(), "values": "fp32", "sparse": sparse}
    path.write_bytes(st_save(tensors, metadata={"json": __import__("json").dumps(meta)}))
    return path


def _sparse_mlp(density=0.05, seed=0):
    spec = ModelSpec("mlp", (60,), 10, 0.25)
    model = build_model(spec, seed).eval()
    g = torch.Generator().manual_seed(seed)
    masks = {n: torch.rand(p.shape, generator=g) < density for n, p in prunable_parameters(model).items()}
    with torch.no_grad():
        for n, p in prunable_parameters(model).items():
            p.mul_(masks[n])
    return spec, model, masks


def test_a_file_in_the_old_format_still_loads(tmp_path):
    spec, model, masks = _sparse_mlp()
    path = _old_format_file(tmp_path / "old.safetensors", model, spec, masks)
    assert all(k.endswith(("::bits", "::values")) for k in load_tensors(path)[0] if "::" in k)
    state, got_masks, _ = read_model_file(path)
    assert all(torch.equal(got_masks[n], masks[n]) for n in masks)
    expected = {k: torch.where(masks[k], v, 0.0) if k in masks else v for k, v in model.state_dict().items()}
    assert all(state[k].numpy().tobytes() == expected[k].numpy().tobytes() for k in expected)  # (+0.0 where pruned)
    x = torch.randn(3, 60)
    assert torch.equal(load_model(path)(x), model(x))


def test_new_files_are_smaller_and_load_the_same_as_old_ones(tmp_path):
    spec, model, masks = _sparse_mlp()
    old = _old_format_file(tmp_path / "old.safetensors", model, spec, masks)
    new = save_model(model, spec, tmp_path / "new.safetensors", masks=masks)
    assert any(k.endswith("::runs") for k in load_tensors(new)[0])
    assert new.stat().st_size < 0.85 * old.stat().st_size
    (sa, ma, _), (sb, mb, _) = read_model_file(old), read_model_file(new)
    assert all(sa[k].numpy().tobytes() == sb[k].numpy().tobytes() for k in sa)
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    compat = save_model(model, spec, tmp_path / "compat.safetensors", masks=masks, mask_codings=("bits",))
    assert not any(k.endswith(("::runs", "::bits.zlib")) for k in load_tensors(compat)[0])


# --- corrupt data -----------------------------------------------------------------------------------------------


def _with(parts, **changes):
    out = dict(parts)
    for k, v in changes.items():
        if v is None:
            out.pop(k)
        else:
            out[k] = torch.from_numpy(np.array(v))
    return out


def _corruptions():
    w, m = _case((200, 100), 0.05, seed=2)
    runs = pack(w, m, "fp32", ("runs",))
    assert mask_coding(runs) == "runs"
    r = runs["runs"].numpy()
    w9, m9 = _case((200, 100), 0.9, seed=2)
    zl = pack(w9, m9, "fp32", ("bits.zlib",))
    assert mask_coding(zl) == "bits.zlib"
    z = zl["bits.zlib"].numpy()
    bits = pack(w, m, "fp32", ("bits",))
    k = int(runs["rice"][0])
    low = (m.sum().item() * k + 7) // 8
    return {
        "runs truncated": (runs, _with(runs, runs=r[:-3]), "truncated"),
        "runs one byte short": (runs, _with(runs, runs=r[:-1]), "truncated|corrupt"),
        "runs only low bits": (runs, _with(runs, runs=r[:low]), "truncated"),
        "runs empty": (runs, _with(runs, runs=r[:0]), "truncated"),
        "runs extra byte": (runs, _with(runs, runs=np.append(r, np.uint8(0))), "extra bytes"),
        "runs beyond the tensor": (runs, _with(runs, runs=np.append(r[:-1], np.uint8(0xFF))), "beyond|corrupt"),
        "runs without rice": (runs, _with(runs, rice=None), "Rice parameter"),
        "rice impossible": (runs, _with(runs, rice=np.array([60], np.uint8)), "Rice parameter 60"),
        "runs as int32": (runs, _with(runs, runs=r.astype(np.int32)), "flat uint8"),
        "runs values missing one": (runs, _with(runs, values=runs["values"].numpy()[:-1]), "corrupt|truncated|extra"),
        "zlib truncated": (zl, _with(zl, **{"bits.zlib": z[:-5]}), "truncated|not valid zlib"),
        "zlib garbage": (zl, _with(zl, **{"bits.zlib": np.full(50, 7, np.uint8)}), "not valid zlib"),
        "zlib extra data": (zl, _with(zl, **{"bits.zlib": np.append(z, np.uint8(1))}), "extra data"),
        "zlib of too much": (
            zl,
            _with(zl, **{"bits.zlib": np.frombuffer(zlib.compress(bytes(3000)), np.uint8)}),
            "inflates to 2501",
        ),
        "zlib of too little": (zl, _with(zl, **{"bits.zlib": np.frombuffer(zlib.compress(bytes(10)), np.uint8)}), "10"),
        "bits short": (bits, _with(bits, bits=bits["bits"].numpy()[:-1]), "mask bytes"),
        "two masks": (bits, {**bits, "runs": runs["runs"], "rice": runs["rice"]}, "several masks"),
        "no mask": (bits, _with(bits, bits=None), "no mask"),
    }


CORRUPTIONS = _corruptions()


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_coded_masks_raise_packed_data_error(case):
    _, parts, message = CORRUPTIONS[case]
    with pytest.raises(PackedDataError, match=message):
        unpack(parts, (200, 100))


@pytest.mark.parametrize("coding", MASK_CODINGS)
def test_random_damage_never_escapes_as_an_obscure_error(coding):
    w, m = _case((64, 50), 0.05 if coding == "runs" else 0.9, seed=3)
    parts = pack(w, m, "fp32", (coding,))
    assert mask_coding(parts) == coding
    data = parts[coding].numpy()
    rng = np.random.default_rng(0)
    for _ in range(300):
        damaged = data.copy()
        if rng.random() < 0.5:
            damaged[rng.integers(data.size)] ^= np.uint8(1 << int(rng.integers(8)))
        else:
            damaged = damaged[: int(rng.integers(data.size))]
        try:
            back = unpack(_with(parts, **{coding: damaged}), (64, 50))
        except PackedDataError as exc:
            assert str(exc)
        else:
            assert back.shape == (64, 50) and int((back != 0).sum()) <= parts["values"].numel()


def test_a_corrupt_file_names_the_file_and_the_weight(tmp_path):
    spec, model, masks = _sparse_mlp()
    path = save_model(model, spec, tmp_path / "m.safetensors", masks=masks)
    tensors, meta = load_tensors(path)
    name = next(k for k in tensors if k.endswith("::runs"))
    tensors[name] = tensors[name][:-4].clone()
    save_tensors(path, tensors, meta)
    with pytest.raises(SafeCompressError, match=rf"m.safetensors: packed weight '{name[:-6]}' is corrupt .*truncated"):
        load_model(path)


def test_a_forged_shape_next_to_a_coded_mask_is_refused_before_allocating(tmp_path):
    spec, model, masks = _sparse_mlp()
    path = save_model(model, spec, tmp_path / "m.safetensors", masks=masks)
    tensors, meta = load_tensors(path)
    name = next(k for k in tensors if k.endswith("::runs"))[:-6]
    meta["sparse"][name] = [10**7, 4 * 10**6]  # 4e13 weights from a few hundred bytes of gaps
    save_tensors(path, tensors, meta)
    with pytest.raises(SafeCompressError, match="more than .* bytes of ::runs may code"):
        read_model_file(path)


def test_an_empty_mask_of_a_huge_layer_falls_back_to_raw_bits():
    # zlib/Rice would code it in a few bytes, beyond what readers accept per byte: the writer keeps raw bits
    weight, mask = _case((1000, 1000), "empty")
    parts = pack(weight, mask)
    assert mask_coding(parts) == "bits" and torch.equal(unpack(parts, (1000, 1000)), torch.zeros(1000, 1000))
    small = pack(*_case((100, 100), "empty"))
    assert mask_coding(small) == "runs" and small["runs"].numel() == 0


def _pin_compare():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "pin_compare.py"
    spec = importlib.util.spec_from_file_location("pin_compare", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pin_compare_compares_decoded_models_not_bytes(tmp_path):
    pin = _pin_compare()
    spec, model, masks = _sparse_mlp()
    old = _old_format_file(tmp_path / "old.safetensors", model, spec, masks)
    paths = {c: save_model(model, spec, tmp_path / f"{c}.st", masks=masks, mask_codings=(c,)) for c in MASK_CODINGS}
    paths["auto"] = save_model(model, spec, tmp_path / "auto.st", masks=masks)
    for coding, path in paths.items():
        assert path.read_bytes() != old.read_bytes() or coding == "bits"
        assert pin.same_model(old, path, set()), coding
    name = next(iter(masks))
    flipped = {**masks, name: masks[name].clone()}
    off = (~flipped[name]).nonzero()[0]
    flipped[name][tuple(off)] = True  # one more kept weight, of value 0.0: same dense weights, another mask
    assert not pin.same_model(old, save_model(model, spec, tmp_path / "mask.st", masks=flipped), set())
    other = {n: p.clone() for n, p in model.state_dict().items()}
    other[name][tuple(masks[name].nonzero()[0])] += 1.0
    model.load_state_dict(other)
    assert not pin.same_model(old, save_model(model, spec, tmp_path / "value.st", masks=masks), set())
