"""The scripts under bench/ run as their docstrings say (`python bench/NAME.py ...`)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def test_no_bench_script_shadows_the_package():
    # python puts bench/ first on sys.path, so a bench/safecompress.py would hide the package from every script
    assert not (BENCH / "safecompress.py").exists() and not (BENCH / "safecompress").exists()


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_bench_script_imports_and_explains_itself(script):
    proc = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120, cwd=BENCH.parent
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage" in proc.stdout.lower()


def _beyond(folder: Path, seed: int, fidelity: float, code: str = "abc") -> None:
    import json

    env = {"code": code, "torch": "t", "dataset": "d", "epochs": 1, "density": 0.05, "max_queries": 10, "seed": seed}
    evasion = {"linf": [{"eps": 0.1, "robust_accuracy": 0.5 + fidelity / 10}], "l2": []}
    results = {
        m: {"test_accuracy": 0.6 + i / 100, "extraction": {"fidelity": fidelity + i / 10}, "evasion": evasion}
        for i, m in enumerate(("dense", "rigl", "safecompress"))
    }
    name = "beyond_curves.json" if seed == 0 else f"beyond_curves-s{seed}.json"
    (folder / name).write_text(json.dumps({"env": env, "results": results}))


def test_beyond_seeds_summarises_paired_differences_and_refuses_mixed_code(tmp_path):
    for seed, fidelity in ((0, 0.5), (1, 0.6), (2, 0.7)):
        _beyond(tmp_path, seed, fidelity)
    proc = subprocess.run(
        [sys.executable, str(BENCH / "beyond_seeds.py"), "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = (tmp_path / "beyond_seeds.md").read_text()
    assert "over seeds 0, 1, 2" in table
    # rigl's fidelity is 0.1 above dense's on every seed: a zero-width interval; mean of 0.6, 0.7, 0.8 = 0.700
    assert "| extraction fidelity | 0.600 [" in table and "| 0.100 [0.100, 0.100] |" in table
    _beyond(tmp_path, 3, 0.8, code="other")
    proc = subprocess.run(
        [sys.executable, str(BENCH / "beyond_seeds.py"), "--results", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "['code']" in proc.stderr
