"""Compare two folders written by scripts/pin.sh; prints PINNED or CHANGED with what differs (exit 1).

Model files are compared by their decoded tensors, masks and metadata, not their bytes, and report.json's
compression file_bytes / ratio are only noted: a change of the packed file format (e.g. how masks are
coded) is not a change of behaviour."""

import hashlib
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import yaml
from safetensors.numpy import load_file

FILE_SIZE_KEYS = {"file_bytes", "ratio"}  # report.json -> compression: depend on the packed format only
SKIP_KEYS = {"timing", "wall_s", "code", "seconds", "fit_s", "train_s", "total_s", "audit_s", "rounds_s"}


def strip(d):
    if isinstance(d, dict):
        return {k: strip(v) for k, v in d.items() if k not in SKIP_KEYS}
    if isinstance(d, list):
        return [strip(x) for x in d]
    return d


# The one relocation allowed between the two sides: the single-method ``sparse.*`` keys moved to
# ``method.params`` (under these names, only where the run's method takes them).
RELOCATED = {
    "mest_grad_weight": "grad_weight",
    "prune_start": "prune_start",
    "prune_end": "prune_end",
    "distill_alpha": "alpha",
    "distill_temperature": "temperature",
    "dmp_keep": "keep",
}
TAKES = {
    "mest": {"grad_weight"},
    "gmp": {"prune_start", "prune_end"},
    "oneshot": {"prune_end"},
    "defend_then_compress": {"prune_end"},
    "distill": {"alpha", "temperature"},
    "dmp": {"temperature", "keep"},
}


def relocate(cfg: dict) -> dict:
    """An old-layout resolved config in the new layout (a config already in it is returned unchanged)."""
    if "params" in cfg.get("method", {}):
        return cfg
    sparse = dict(cfg["sparse"])
    moved = {RELOCATED[k]: sparse.pop(k) for k in list(sparse) if k in RELOCATED}
    takes = TAKES.get(cfg["method"]["name"], set())
    method = {**cfg["method"], "params": {k: v for k, v in moved.items() if k in takes}}
    return {**cfg, "method": method, "sparse": sparse}


def metadata(path: Path) -> dict:
    """The safecompress JSON document in a safetensors file's header (key "json")."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(json.loads(raw[8 : 8 + n]).get("__metadata__", {}).get("json", "{}"))


def rice_positions(runs: np.ndarray, k: int, count: int) -> np.ndarray:
    """Kept positions from Rice-coded gaps (docs/packed-format.md): k-bit remainders, then unary quotients."""
    low_bytes = (count * k + 7) // 8
    low = np.unpackbits(runs[:low_bytes])[: count * k].reshape(count, k).astype(np.int64)
    ones = np.flatnonzero(np.unpackbits(runs[low_bytes:]))
    if ones.size != count:
        raise ValueError(f"{ones.size} Rice-coded gaps for {count} values")
    gaps = ((np.diff(ones, prepend=-1) - 1).astype(np.int64) << k) + low @ (
        np.int64(1) << np.arange(k - 1, -1, -1, dtype=np.int64)
    )
    return np.cumsum(gaps + 1) - 1


def decoded_model(path: Path) -> dict[str, tuple[str, tuple, bytes]]:
    """{name: (dtype, shape, bytes)} of every tensor as the model holds it (packed weights dense, plus
    their masks under NAME::mask), whichever mask coding (raw bits, zlib, Rice gaps) the file used: a
    change of the packed format alone changes nothing here."""
    tensors, meta = load_file(str(path)), metadata(path)
    out = {k: v for k, v in tensors.items() if "::" not in k}
    for name, shape in meta.get("sparse", {}).items():
        numel = int(np.prod(shape, dtype=np.int64))
        values = tensors[name + "::values"].astype(np.float32)
        if name + "::scale" in tensors:
            values = values * tensors[name + "::scale"][0]
        if name + "::runs" in tensors:
            mask = np.zeros(numel, dtype=bool)
            mask[rice_positions(tensors[name + "::runs"], int(tensors[name + "::rice"][0]), values.size)] = True
        else:
            bits = tensors.get(name + "::bits")
            if bits is None:
                bits = np.frombuffer(zlib.decompress(tensors[name + "::bits.zlib"].tobytes()), np.uint8)
            mask = np.unpackbits(bits, count=numel).astype(bool)
        weight = np.zeros(numel, dtype=np.float32)
        weight[mask] = values
        out[name] = weight.reshape(shape)
        out[name + "::mask"] = mask.reshape(shape)  # a kept weight may be 0.0: the mask is compared too
    return {k: (str(v.dtype), tuple(v.shape), v.tobytes()) for k, v in out.items()}


def same_model(fa: Path, fb: Path, config_hashes: set[tuple[str, str]]) -> bool:
    """Identical decoded tensors (and masks) and metadata, except that the config.yaml hash in the
    metadata's run_manifest may be one of ``config_hashes`` (old, new): the hashes of two config.yaml that
    differ only by RELOCATED. The bytes of the files may differ (another mask coding)."""
    try:
        if decoded_model(fa) != decoded_model(fb):
            return False
    except (OSError, KeyError, ValueError, zlib.error) as exc:  # unreadable or corrupt: not the same model
        print(f"cannot decode {fa} or {fb}: {exc!r}")
        return False
    ma, mb = metadata(fa), metadata(fb)
    pair = (ma.get("run_manifest", {}).get("config.yaml"), mb.get("run_manifest", {}).get("config.yaml"))
    if pair in config_hashes:
        for m in (ma, mb):
            m["run_manifest"].pop("config.yaml")
    return ma == mb


def main(a: Path, b: Path) -> int:
    changed, notes = [], []
    for job in ("sc", "hamp", "attr"):
        ca, cb = (p / job / "config.yaml" for p in (a, b))
        hashes = set()
        if relocate(yaml.safe_load(ca.read_text())) == relocate(yaml.safe_load(cb.read_text())):
            hashes = {tuple(hashlib.sha256(p.read_bytes()).hexdigest() for p in (ca, cb))}
        else:
            changed.append(f"{job}/config.yaml")
        for name in ("rounds.jsonl", "split.npz", "model.safetensors", "scores.npz", "canaries.npz"):
            fa, fb = a / job / name, b / job / name
            if fa.exists() != fb.exists():
                changed.append(f"{job}/{name}")
            elif name == "model.safetensors" and fa.exists():
                if not same_model(fa, fb, hashes):
                    changed.append(f"{job}/{name}")
            elif fa.exists() and fa.read_bytes() != fb.read_bytes():
                changed.append(f"{job}/{name}")
        ra, rb = (json.loads((p / job / "report.json").read_text()) for p in (a, b))
        for key in sorted(set(ra) | set(rb)):
            va, vb = strip(ra.get(key)), strip(rb.get(key))
            if key == "compression" and isinstance(va, dict) and isinstance(vb, dict):
                sizes = [f"{k} {va.get(k)} -> {vb.get(k)}" for k in sorted(FILE_SIZE_KEYS) if va.get(k) != vb.get(k)]
                if sizes:
                    notes.append(f"{job}/report.json:compression ({', '.join(sizes)})")
                va, vb = ({k: v for k, v in d.items() if k not in FILE_SIZE_KEYS} for d in (va, vb))
            if key not in ("timing", "code", "manifest") and va != vb:
                changed.append(f"{job}/report.json:{key}")
    for note in notes:
        print(f"file size only (format, not behaviour): {note}")
    print("PINNED" if not changed else "CHANGED: " + ", ".join(changed))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
