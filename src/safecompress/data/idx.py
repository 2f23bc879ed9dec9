"""Reader for IDX files (the MNIST file format), gzip-compressed or plain.

Layout: two zero bytes, a dtype code, the number of dimensions ``d``, then ``d`` big-endian uint32
sizes, then the values in big-endian C order. Every check failure raises :class:`DataError` naming
the file, so a truncated download is reported instead of silently yielding garbage.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

# IDX dtype code -> big-endian numpy dtype
IDX_DTYPES: dict[int, str] = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"


FIX_HINT = "re-download it, or reinstall the package that provides it"


def _corrupt(source: str, problem: str) -> DataError:
    return DataError(f"{source}: truncated or corrupt IDX file ({problem}); {FIX_HINT}")


def decompress_if_gzip(data: bytes, source: str) -> bytes:
    """Return ``data`` unchanged, or its decompressed payload if it is gzip-compressed."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{source}: truncated or corrupt gzip file ({exc}); {FIX_HINT}") from None


def read_payload(path: str | Path) -> bytes:
    """The bytes of ``path``, decompressed if the file is gzip-compressed (detected by content)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decompress_if_gzip(data, str(path))


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the (uncompressed) bytes of an IDX file into an array in native byte order."""
    if len(data) < 4:
        raise _corrupt(source, f"only {len(data)} bytes, no header")
    if data[0] != 0 or data[1] != 0:
        raise _corrupt(source, f"bad magic number 0x{data[:4].hex()}")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise _corrupt(source, f"unknown dtype code 0x{code:02x}")
    if ndim == 0:
        raise _corrupt(source, "0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _corrupt(source, "header cut short")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[code])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise _corrupt(source, f"dims {dims} need {expected} bytes, found {len(data)}")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return values.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into an array; DataError if it is corrupt."""
    return parse_idx(read_payload(path), str(path))


def find_idx(folder: Path, stem: str) -> Path | None:
    """``folder/stem.gz`` or ``folder/stem`` (in that order), whichever exists, else None."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None
