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
