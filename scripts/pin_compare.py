"""Compare two folders written by scripts/pin.sh; prints PINNED or CHANGED with what differs (exit 1)."""

import json
import sys
from pathlib import Path

SKIP_KEYS = {"timing", "wall_s", "code", "seconds", "fit_s", "train_s", "total_s", "audit_s", "rounds_s"}


def strip(d):
    if isinstance(d, dict):
        return {k: strip(v) for k, v in d.items() if k not in SKIP_KEYS}
    if isinstance(d, list):
        return [strip(x) for x in d]
    return d


def main(a: Path, b: Path) -> int:
    changed = []
    for job in ("sc", "hamp", "attr"):
        for name in ("rounds.jsonl", "split.npz", "model.safetensors", "scores.npz", "canaries.npz"):
            fa, fb = a / job / name, b / job / name
            if fa.exists() != fb.exists() or (fa.exists() and fa.read_bytes() != fb.read_bytes()):
                changed.append(f"{job}/{name}")
        ra, rb = (json.loads((p / job / "report.json").read_text()) for p in (a, b))
        for key in sorted(set(ra) | set(rb)):
            if key not in ("timing", "code", "manifest") and strip(ra.get(key)) != strip(rb.get(key)):
                changed.append(f"{job}/report.json:{key}")
    print("PINNED" if not changed else "CHANGED: " + ", ".join(changed))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
