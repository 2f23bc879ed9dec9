"""Read one object from an R *lazy-load database* (``Rdata.rdx`` + ``Rdata.rdb``) without R.

Installed R packages whose ``DESCRIPTION`` says ``LazyData: yes`` (``survival`` among them) ship their
data sets not as ``.rda`` files but as one lazy-load database in ``data/``:

- ``Rdata.rdx``: a gzip-compressed serialized R list with ``variables`` (name → ``c(offset, length)``
  into the ``.rdb`` file), ``references`` and ``compressed`` (``TRUE``/1 = zlib, 2 = bzip2, 3 = xz);
- ``Rdata.rdb``: the objects one after another, each a 4-byte big-endian uncompressed length, then
  (types 2 and 3 only) one byte saying how the rest is stored (``'Z'`` raw LZMA2, ``'2'`` bzip2,
  ``'0'`` not compressed), then the compressed serialization.

The serialized bytes are parsed by the ``rdata`` package (pure Python; nothing in the file is run).
Every offset, length and decompressed size is checked, so a truncated or hostile file raises
:class:`~safecompress.errors.DataError` instead of reading out of bounds or filling memory. Objects
that refer to environments (``references``) are not supported; data frames never need them.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

MAX_INDEX_BYTES = 16 << 20  # a package's .rdx is a few kB
MAX_OBJECT_BYTES = 256 << 20  # one decompressed data set


def _rdata():
    try:
        import rdata
    except ImportError:
        raise DataError("reading R data files needs the rdata package: pip install 'safecompress[tables]'") from None
    return rdata


def _parse(body: bytes, where: str) -> Any:
    rdata = _rdata()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unknown file type: assumed RDS": a bare serialization is one
            return rdata.conversion.convert(rdata.parser.parse_data(body))
    except Exception as exc:  # rdata raises several types on malformed input
        raise DataError(f"{where} is not a readable R serialization ({type(exc).__name__}: {exc})") from None


def read_index(rdx: Path) -> tuple[dict[str, tuple[int, int]], int]:
    """({object name: (offset, length) in the .rdb}, compression type 1, 2 or 3) of an ``.rdx`` file."""
    if not rdx.is_file():
        raise DataError(f"{rdx} does not exist (an R lazy-load database is the pair Rdata.rdx + Rdata.rdb)")
    try:
        with gzip.open(rdx, "rb") as fh:
            raw = fh.read(MAX_INDEX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{rdx} is not a gzip-compressed R index ({exc})") from None
    if len(raw) > MAX_INDEX_BYTES:
        raise DataError(f"{rdx} decompresses to more than {MAX_INDEX_BYTES} bytes; not an R lazy-load index")
    index = _parse(raw, str(rdx))
    if not isinstance(index, dict) or "variables" not in index or "compressed" not in index:
        raise DataError(f"{rdx} is not an R lazy-load index (no 'variables' and 'compressed' entries)")
    if not isinstance(index["variables"], dict):
        raise DataError(f"{rdx}: 'variables' is not a named list of (offset, length) pairs")
    entries: dict[str, tuple[int, int]] = {}
    for name, pos in index["variables"].items():
        try:
            offset, length = (int(v) for v in pos)
        except (TypeError, ValueError):
            raise DataError(f"{rdx}: the entry of {name!r} is not an (offset, length) pair") from None
        entries[str(name)] = (offset, length)
    flag = np.asarray(index["compressed"]).ravel()
    if flag.size != 1 or flag.dtype.kind not in "biuf":
        raise DataError(f"{rdx}: 'compressed' must be one number (1, 2 or 3), got {flag!r}")
    compressed = int(flag[0])
    if compressed not in (1, 2, 3):
        raise DataError(f"{rdx}: unknown compression type {compressed} (R writes 1 = zlib, 2 = bzip2, 3 = xz)")
    return entries, compressed


def _decompress(payload: bytes, kind: bytes, size: int, where: str) -> bytes:
    """``payload`` decompressed as ``kind`` (b'1' zlib, b'2' bzip2, b'Z' raw LZMA2, b'0' stored), at most
    ``size`` + 1 bytes produced, so a lying length is caught rather than filling memory."""
    try:
        if kind == b"0":
            return payload[: size + 1]
        if kind == b"1":
            return zlib.decompressobj().decompress(payload, size + 1)
        if kind == b"2":
            return bz2.BZ2Decompressor().decompress(payload, size + 1)
        if kind == b"Z":
            # R's R_compress3: a raw LZMA2 stream (no .xz container), preset 9 | extreme
            filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
            return lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters).decompress(payload, size + 1)
    except (zlib.error, OSError, lzma.LZMAError, ValueError, EOFError) as exc:
        raise DataError(f"{where}: the compressed object is damaged ({exc})") from None
    raise DataError(f"{where}: unknown storage byte {kind!r} (R writes '0', '2' or 'Z')")


def read_object(folder: Path, name: str, base: str = "Rdata") -> Any:
    """The R object ``name`` of the lazy-load database ``folder/base.rdx`` + ``.rdb``, converted by
    ``rdata`` (a data.frame becomes a pandas DataFrame, a factor a Categorical)."""
    rdx, rdb = folder / f"{base}.rdx", folder / f"{base}.rdb"
    entries, compressed = read_index(rdx)
    if name not in entries:
        raise DataError(f"{rdx} holds no object {name!r} (found: {', '.join(sorted(entries)) or 'none'})")
    offset, length = entries[name]
    where = f"{rdb} (object {name!r})"
    try:
        total = rdb.stat().st_size
    except OSError as exc:
        raise DataError(f"{rdb} cannot be read ({exc})") from None
    head = 4 if compressed == 1 else 5
    if offset < 0 or length < head or offset + length > total:
        raise DataError(
            f"{where}: the index points at bytes {offset}..{offset + length} of a {total}-byte file; "
            "the .rdb and .rdx files do not belong together or one is truncated"
        )
    with open(rdb, "rb") as fh:
        fh.seek(offset)
        chunk = fh.read(length)
    (size,) = struct.unpack(">I", chunk[:4])
    if size > MAX_OBJECT_BYTES:
        raise DataError(f"{where}: claims {size} bytes uncompressed, more than the {MAX_OBJECT_BYTES} accepted")
    kind = b"1" if compressed == 1 else chunk[4:5]
    body = _decompress(chunk[head:], kind, size, where)
    if len(body) != size:
        raise DataError(f"{where}: decompressed to {len(body)} bytes, the header says {size}; the file is damaged")
    return _parse(body, where)
