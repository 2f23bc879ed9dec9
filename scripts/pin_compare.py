"""Compare two folders written by scripts/pin.sh; prints PINNED or CHANGED with what differs (exit 1)."""

import hashlib
import json
import struct
import sys
from pathlib import Path

import yaml

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


def safetensors_parts(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def same_model(fa: Path, fb: Path, config_hashes: set[tuple[str, str]]) -> bool:
    """Identical tensors and header, except that the config.yaml hash in the metadata's run_manifest may
    be one of ``config_hashes`` (old, new): the hashes of two config.yaml that differ only by RELOCATED."""
    (ha, ta), (hb, tb) = safetensors_parts(fa), safetensors_parts(fb)
    if ta != tb:
        return False
    ma, mb = (json.loads(h.get("__metadata__", {}).get("json", "{}")) for h in (ha, hb))
    pair = (ma.get("run_manifest", {}).get("config.yaml"), mb.get("run_manifest", {}).get("config.yaml"))
    if pair in config_hashes:
        for m in (ma, mb):
            m["run_manifest"].pop("config.yaml")
        for h, m in ((ha, ma), (hb, mb)):
            h["__metadata__"] = {**h["__metadata__"], "json": json.dumps(m, sort_keys=True)}
    return ha == hb


def main(a: Path, b: Path) -> int:
    changed = []
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
            if key not in ("timing", "code", "manifest") and strip(ra.get(key)) != strip(rb.get(key)):
                changed.append(f"{job}/report.json:{key}")
    print("PINNED" if not changed else "CHANGED: " + ", ".join(changed))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
