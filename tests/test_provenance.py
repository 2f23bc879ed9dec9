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
