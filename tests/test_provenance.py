"""The code hash that decides whether a cached bench cell is stale."""

from safecompress import provenance


def _content(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return provenance._content(path)


def test_formatting_comments_and_docstrings_do_not_change_the_hash(tmp_path):
    base = _content(tmp_path, "a.py", 'def f(x):\n    """Old words."""\n    return x + 1\n')
    same = _content(tmp_path, "b.py", "# a comment\ndef f(\n    x,\n):\n    return (x\n            + 1)  # why\n")
    assert base == same


def test_a_changed_number_or_name_changes_the_hash(tmp_path):
    base = _content(tmp_path, "a.py", "def f(x):\n    return x + 1\n")
    assert _content(tmp_path, "b.py", "def f(x):\n    return x + 2\n") != base
    assert _content(tmp_path, "c.py", "def g(x):\n    return x + 1\n") != base
    # a string that is not a docstring is code (a message, a key)
    assert _content(tmp_path, "d.py", "def f(x):\n    'doc'\n    return 'a'\n") != _content(
        tmp_path, "e.py", "def f(x):\n    'doc'\n    return 'b'\n"
    )


def test_the_package_hash_is_stable_and_short():
    assert provenance.source_hash() == provenance.source_hash()
    assert len(provenance.source_hash()) == 16
    assert provenance.code_version()["source_sha256"] == provenance.source_hash()


def _imported_modules(path, root):
    """Absolute module names (under ``safecompress``) that the file at ``path`` imports."""
    import ast

    rel = path.relative_to(root.parent).with_suffix("")
    package = list(rel.parts[:-1])  # a module's package (for __init__.py: the package itself)
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names += [mod] + [f"{mod}.{a.name}" for a in node.names]
    return names


def test_no_hashed_module_imports_an_output_only_package():
    """export/, track/, outside/ and optional.py are left out of the code hash because no cell runs them: guard
    that."""
    from pathlib import Path

    root = Path(provenance.__file__).resolve().parent
    hashed = [
        p
        for p in root.rglob("*.py")
        if "__pycache__" not in p.parts and not provenance._presentation(p.relative_to(root))
    ]
    assert len(hashed) > 50
    offending = {
        str(p.relative_to(root)): m
        for p in hashed
        for m in _imported_modules(p, root)
        if m.split(".")[:2] in (["safecompress", pkg.removesuffix(".py")] for pkg in provenance.OUTPUT_ONLY)
    }
    assert offending == {}
    # the check sees relative imports: a hashed module importing an output-only one would be caught
    fake = root / "methods" / "rigl.py"
    assert "safecompress.export.onnx" in _imported_modules_of_text(fake, root, "from ..export import onnx\n")


def _imported_modules_of_text(path, root, text):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        # same relative place as ``path`` under a copy of the package root's name
        copy = Path(d) / root.name / path.relative_to(root)
        copy.parent.mkdir(parents=True)
        copy.write_text(text)
        return _imported_modules(copy, Path(d) / root.name)
