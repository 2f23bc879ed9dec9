"""Which code produced a result: the package version and a hash of its source files.

Every report carries it, and ``safecompress bench`` re-runs a cached cell whose code hash differs, so a
table under ``bench/results/`` is never assembled from cells that older code computed."""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

from ._version import __version__


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """sha256 (first 16 hex digits) over the package's .py and .yaml files that compute a run's numbers, by
    relative path and content (see :func:`_presentation` for what is left out). A .py file counts by its
    syntax tree without docstrings, so formatting, comments and docstrings never make a cached cell stale."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(
        p
        for p in root.rglob("*")
        if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts and not _presentation(p.relative_to(root))
    ):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(_content(path))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _content(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix != ".py":
        return raw
    tree = ast.parse(raw, filename=str(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False).encode()


# packages that only act on a finished run and that no cell ever runs: writing its model for other runtimes
# (export), logging it to an experiment tracker (track), auditing a model trained elsewhere (outside), and the
# check for their optional dependencies (optional.py). A test guards that no hashed module imports them.
OUTPUT_ONLY = ("export", "track", "outside", "optional.py")


def _presentation(rel: Path) -> bool:
    # presets and suites only feed configuration values, and a cell's resolved config.yaml is compared on
    # resume anyway; the CLI, the bench driver and report rendering only schedule and show
    return rel.parts[0] in ("report", "suites", "presets", *OUTPUT_ONLY) or rel.name in (
        "cli.py",
        "benchmark.py",
        "provenance.py",
    )


def code_version() -> dict[str, str]:
    return {"version": __version__, "source_sha256": source_hash()}


# Hash the files once, when the package is imported: a long process (a bench worker) then reports the
# code it is running, even if the files on disk change while it runs.
source_hash()
