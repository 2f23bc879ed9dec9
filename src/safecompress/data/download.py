"""Fetch a file over HTTP(S), verify its SHA-256 and write it atomically.

The destination either does not exist afterwards or holds exactly the verified bytes: the download
is held in memory, checked, and only then written via a temporary file and an atomic rename.
"""

from __future__ import annotations

import http.client
import logging
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Literal

from ..errors import DataError
from ..fileio import atomic_write_bytes, sha256_bytes
from .idx import decompress_if_gzip

log = logging.getLogger(__name__)

OFFLINE_HINT = "download the files yourself (or copy them from another machine) and pass their folder with --data-dir"


def download_file(
    url: str,
    dest: str | Path,
    expected_sha256: str,
    *,
    timeout: float = 60.0,
    checksum_of: Literal["file", "payload"] = "file",
) -> Path:
    """Download ``url`` to ``dest`` after checking its SHA-256; return ``dest``.

    ``checksum_of="payload"`` hashes the decompressed content of a gzip file (mirrors recompress
    the same payload differently); for a non-gzip file it is the same as ``"file"``.
    Raises DataError on a network failure or a checksum mismatch; ``dest`` is then left untouched.
    """
    if checksum_of not in ("file", "payload"):
        raise ValueError(f"checksum_of must be 'file' or 'payload', got {checksum_of!r}")
    dest = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise DataError(f"refusing to download {url!r}: only http and https URLs are supported")
    log.info("downloading %s -> %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except urllib.error.HTTPError as exc:
        raise DataError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}; {OFFLINE_HINT}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"downloading {url} failed ({reason}); check the network connection or {OFFLINE_HINT}"
        ) from None
    hashed = decompress_if_gzip(data, url) if checksum_of == "payload" else data
    actual = sha256_bytes(hashed)
    if actual.lower() != expected_sha256.lower():
        what = "decompressed content" if hashed is not data else "file"
        raise DataError(
            f"downloaded {url} but the SHA-256 of its {what} is {actual}, expected {expected_sha256}; "
            f"the server sent a different or damaged file and nothing was saved to {dest}. "
            f"Retry later, or {OFFLINE_HINT}"
        )
    atomic_write_bytes(dest, data)
    log.info("saved %s (%d bytes, SHA-256 verified)", dest, len(data))
    return dest
