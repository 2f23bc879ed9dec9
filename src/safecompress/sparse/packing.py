"""Packed sparse tensors: only the active values plus the mask, the mask entropy-coded when that is smaller.

A sparse tensor ``W`` with mask ``M`` (``N`` weights, ``K`` of them kept) is stored as ``values`` =
``W[M]`` in fp32, fp16, or int8 with one fp32 ``scale`` per tensor (symmetric, max-abs), plus the mask
in whichever of three codings takes the fewest bytes for this tensor (docs/packed-format.md):

* ``bits``: ``np.packbits(M.flatten())``, 1 bit per weight (uint8, ceil(N/8) bytes);
* ``bits.zlib``: those bytes compressed with zlib;
* ``runs`` + ``rice``: the gaps between kept positions (zeros before each kept weight), Rice-coded with
  the parameter ``k`` in the one-byte tensor ``rice``: first the ``k`` low bits of every gap, then the
  high parts in unary. For a random mask of density ``d`` that is within a few percent of the entropy
  ``H(d)`` bits per weight.

A reader dispatches on the part that is present; files with only ``bits`` (the first format) read as
before. fp32 unpacking is bit-exact for the active values. Corrupt or truncated parts raise
:class:`~safecompress.errors.PackedDataError`.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch

from ..errors import PackedDataError

VALUE_TYPES = ("fp32", "fp16", "int8")
MASK_CODINGS = ("bits", "bits.zlib", "runs")  # in order of preference when two are the same size
MAX_RICE_K = 62
# A coded mask may describe at most CODED_SLACK + CODED_RATIO weights per byte of its coded mask and values
# (a raw bitmask: 8). The writer never codes a mask beyond it and readers refuse it, so a forged shape in a
# header cannot make a small file allocate huge masks. Honest masks stay far below it down to density ~1e-4.
CODED_RATIO = 1024
CODED_SLACK = 1 << 16


def _k_allowed(k: int, numel: int) -> bool:
    return 0 <= k <= MAX_RICE_K and (1 << k) <= 4 * max(numel, 1)


def coded_limit(coded_bytes: int, value_bytes: int) -> int:
    """The most weights a coded mask of ``coded_bytes`` bytes next to ``value_bytes`` bytes of values may describe."""
    return CODED_SLACK + CODED_RATIO * (coded_bytes + value_bytes)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.packbits(_flat_mask(mask)))


def unpack_bits(bits: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    numel = math.prod(shape)
    flat = np.unpackbits(bits.numpy(), count=numel).astype(bool)
    return torch.from_numpy(flat).view(shape)


def _flat_mask(mask: torch.Tensor) -> np.ndarray:
    return mask.detach().cpu().numpy().reshape(-1).astype(bool)


def rice_parameter(density: float) -> int:
    """The Rice parameter for geometric gaps of a random mask of ``density``: k ~ log2(ln 2 * mean gap)."""
    if density <= 0 or density >= 1:
        return 0
    mean_gap = (1 - density) / density
    return int(min(MAX_RICE_K, max(0, round(math.log2(max(math.log(2) * mean_gap, 1.0))))))


def _rice_bits(gaps: np.ndarray, k: int) -> int:
    return int(gaps.size * (k + 1) + np.sum(gaps >> k))


def rice_encode(positions: np.ndarray, k: int | None = None, numel: int | None = None) -> tuple[bytes, int]:
    """(coded bytes, k) of increasing kept ``positions``. Without ``k``: the one from the density
    (``positions.size / numel``) or a neighbour of it, whichever codes these gaps in the fewest bits."""
    positions = np.asarray(positions, dtype=np.int64)
    gaps = np.diff(positions, prepend=np.int64(-1)) - 1
    if k is None:
        guess = rice_parameter(positions.size / numel) if numel else 0
        candidates = [c for c in (guess - 1, guess, guess + 1, 0) if _k_allowed(c, numel or 0)]
        k = min(candidates, key=lambda c: _rice_bits(gaps, c))
    low = np.zeros(0, np.uint8)
    if k and gaps.size:
        low = ((gaps[:, None] >> np.arange(k - 1, -1, -1, dtype=np.int64)) & 1).astype(np.uint8).reshape(-1)
    stops = np.cumsum((gaps >> k) + 1) - 1  # unary: q zero bits then a one
    unary = np.zeros(int(stops[-1]) + 1 if stops.size else 0, np.uint8)
    unary[stops] = 1
    return np.packbits(low).tobytes() + np.packbits(unary).tobytes(), k


def rice_decode(coded: np.ndarray, k: int, count: int, numel: int) -> np.ndarray:
    """The ``count`` increasing positions (< ``numel``) coded by :func:`rice_encode`; PackedDataError if
    the data is truncated, has extra bytes or set padding bits, or points beyond the tensor."""
    if not _k_allowed(k, numel):
        raise PackedDataError(f"Rice parameter {k} is impossible for {numel} weights")
    low_bytes = (count * k + 7) // 8
    if coded.size < low_bytes:
        raise PackedDataError(
            f"Rice data is truncated: {coded.size} bytes, the low bits of {count} gaps need {low_bytes}"
        )
    low_bits = np.unpackbits(coded[:low_bytes])
    if low_bits[count * k :].any():
        raise PackedDataError("Rice data has set padding bits after the low bits of the gaps")
    ones = np.flatnonzero(np.unpackbits(coded[low_bytes:]))
    if ones.size != count:
        raise PackedDataError(
            f"Rice data is truncated or corrupt: {ones.size} gaps coded where the values say {count} kept weights"
        )
    if (ones[-1] // 8 + 1 if count else 0) != coded.size - low_bytes:
        raise PackedDataError("Rice data has extra bytes after its last gap")
    high = np.diff(ones, prepend=np.int64(-1)) - 1
    if count and int(high.max()) > (numel >> k):
        raise PackedDataError(f"Rice data points beyond the tensor's {numel} weights")
    gaps = high.astype(np.int64) << k
    if k:
        gaps |= low_bits[: count * k].reshape(count, k).astype(np.int64) @ (np.int64(1) << np.arange(k - 1, -1, -1))
    positions = np.cumsum(gaps + 1) - 1
    if count and int(positions[-1]) >= numel:
        raise PackedDataError(f"Rice data points beyond the tensor's {numel} weights")
    return positions


def pack_mask(
    mask: torch.Tensor, value_bytes: int = 0, codings: tuple[str, ...] = MASK_CODINGS
) -> dict[str, torch.Tensor]:
    """The mask in the smallest of ``codings``: {"bits"}, {"bits.zlib"} or {"runs", "rice"}."""
    unknown = set(codings) - set(MASK_CODINGS)
    if unknown or not codings:
        raise ValueError(f"mask codings must be among {MASK_CODINGS}, got {codings!r}")
    flat = _flat_mask(mask)
    numel = flat.size
    raw = np.packbits(flat)
    options: list[tuple[int, int, dict[str, np.ndarray]]] = []
    if "bits" in codings:
        options.append((raw.size, 0, {"bits": raw}))
    if "bits.zlib" in codings:
        z = np.frombuffer(zlib.compress(raw.tobytes(), 6), np.uint8)
        options.append((z.size, 1, {"bits.zlib": z}))
    if "runs" in codings:
        coded, k = rice_encode(np.flatnonzero(flat), numel=numel)
        runs = np.frombuffer(coded, np.uint8)
        options.append((runs.size + 1, 2, {"runs": runs, "rice": np.array([k], np.uint8)}))
    # a coded mask beyond the readers' limit would make the file unreadable: keep the raw bits then
    allowed = [o for o in options if o[1] == 0 or numel <= coded_limit(o[0], value_bytes)]
    _, _, parts = min(allowed or [(raw.size, 0, {"bits": raw})], key=lambda o: (o[0], o[1]))
    return {key: torch.from_numpy(np.array(a, dtype=np.uint8)) for key, a in parts.items()}


def mask_coding(parts: dict[str, torch.Tensor]) -> str:
    """Which coding ``parts`` holds the mask in; PackedDataError unless exactly one."""
    present = [c for c in MASK_CODINGS if c in parts]
    if len(present) != 1:
        raise PackedDataError(
            "no mask (none of ::bits, ::bits.zlib, ::runs); the file is corrupt or from a newer safecompress"
            if not present
            else f"several masks ({', '.join('::' + c for c in present)})"
        )
    return present[0]


def _bytes(parts: dict[str, torch.Tensor], key: str) -> np.ndarray:
    t = parts[key]
    if t.dtype != torch.uint8 or t.dim() != 1:
        raise PackedDataError(f"::{key} must be one flat uint8 tensor, got {t.dtype} of shape {list(t.shape)}")
    return t.numpy()


def unpack_mask(parts: dict[str, torch.Tensor], shape: tuple[int, ...]) -> torch.Tensor:
    """The boolean mask of ``shape`` held by ``parts`` in any coding (``runs`` takes its count from ``values``)."""
    numel = math.prod(shape)
    coding = mask_coding(parts)
    if coding == "bits":
        bits = _bytes(parts, "bits")
        if bits.size != (numel + 7) // 8:
            raise PackedDataError(
                f"{bits.size} mask bytes for shape {list(shape)} (which needs {(numel + 7) // 8} uint8 bytes)"
            )
        return unpack_bits(parts["bits"], shape)
    value_bytes = parts["values"].numel() * parts["values"].element_size() if "values" in parts else 0
    data = _bytes(parts, coding)
    if numel > coded_limit(data.size + (coding == "runs"), value_bytes):
        raise PackedDataError(
            f"shape {list(shape)} has {numel} weights, more than {data.size} bytes of ::{coding} may code "
            f"({coded_limit(data.size + (coding == 'runs'), value_bytes)} at most)"
        )
    if coding == "bits.zlib":
        want = (numel + 7) // 8
        inflate = zlib.decompressobj()
        try:
            raw = inflate.decompress(data.tobytes(), want + 1)
        except zlib.error as exc:
            raise PackedDataError(f"::bits.zlib is not valid zlib data ({exc})") from None
        if len(raw) != want or not inflate.eof or inflate.unused_data:
            raise PackedDataError(
                f"::bits.zlib is truncated or has extra data: it inflates to {len(raw)}"
                f"{'' if inflate.eof else '+'} bytes where shape {list(shape)} needs {want}"
            )
        flat = np.unpackbits(np.frombuffer(raw, np.uint8), count=numel).astype(bool)
        return torch.from_numpy(flat).view(shape)
    rice = _bytes(parts, "rice") if "rice" in parts else np.zeros(0, np.uint8)
    if rice.size != 1:
        raise PackedDataError("::runs needs its Rice parameter ::rice (one uint8)")
    if "values" not in parts:
        raise PackedDataError("::runs needs ::values (their number is the number of kept weights)")
    flat = np.zeros(numel, dtype=bool)
    flat[rice_decode(data, int(rice[0]), parts["values"].numel(), numel)] = True
    return torch.from_numpy(flat).view(shape)


def pack(
    weight: torch.Tensor, mask: torch.Tensor, values: str = "fp32", codings: tuple[str, ...] = MASK_CODINGS
) -> dict[str, torch.Tensor]:
    """The tensors that represent ``weight * mask``: the mask in the smallest of ``codings`` (bits,
    bits.zlib, or runs + rice), values, and scale for int8."""
    if values not in VALUE_TYPES:
        raise ValueError(f"values must be one of {VALUE_TYPES}, got {values!r}")
    w = weight.detach().cpu()
    active = w[mask.cpu()].float()
    out: dict[str, torch.Tensor] = {}
    if values == "fp32":
        out["values"] = active.clone()
    elif values == "fp16":
        out["values"] = active.half()
    else:
        amax = float(active.abs().max()) if active.numel() else 0.0
        scale = amax / 127.0 if amax > 0 else 1.0
        out["values"] = torch.clamp(torch.round(active / scale), -127, 127).to(torch.int8)
        out["scale"] = torch.tensor([scale], dtype=torch.float32)
    value_bytes = out["values"].numel() * out["values"].element_size()
    return {**pack_mask(mask, value_bytes, codings), **out}


def unpack(
    parts: dict[str, torch.Tensor],
    shape: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Rebuild the dense tensor (zeros at inactive positions); ``mask`` if it is already decoded."""
    if mask is None:
        mask = unpack_mask(parts, shape)
    values = parts["values"].float()
    if "scale" in parts:
        values = values * parts["scale"][0]
    if int(mask.sum()) != values.numel():
        raise PackedDataError(
            f"packed tensor is inconsistent: mask has {int(mask.sum())} active entries but {values.numel()} values"
        )
    dense = torch.zeros(shape, dtype=dtype)
    dense[mask] = values.to(dtype)
    return dense
