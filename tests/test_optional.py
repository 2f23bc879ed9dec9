"""Missing optional dependencies are named, with the extra that installs them, before any work starts."""

from __future__ import annotations

import pytest

from safecompress.errors import SafeCompressError
from safecompress.optional import missing_modules


def test_missing_modules_names_only_what_cannot_be_found():
    assert missing_modules(["json", "torch", "no_such_module_xyz", "no_such_pkg_xyz.sub", "os.path"]) == [
        "no_such_module_xyz",
        "no_such_pkg_xyz.sub",
    ]


def test_export_and_track_name_the_extra_to_install(monkeypatch):
    from safecompress.export import FORMATS, require
    from safecompress.track import TRACKERS, TrackError, parse_trackers

    with pytest.raises(SafeCompressError, match=r"onnx format needs no_such_module_xyz.*safecompress\[export\]"):
        require("onnx", ("no_such_module_xyz",))
    require("dense", FORMATS.get("dense").requires)  # nothing missing: no error
    monkeypatch.setattr(TRACKERS.get("mlflow"), "requires", ("no_such_module_xyz",))
    with pytest.raises(TrackError, match=r"no_such_module_xyz.*safecompress\[track\].*drop --track mlflow"):
        parse_trackers("mlflow")


def test_a_broken_package_is_named_with_its_error(tmp_path, monkeypatch):
    from safecompress.export import require
    from safecompress.optional import unusable_modules

    (tmp_path / "broken_pkg_xyz.py").write_text("raise ImportError('compiled against another numpy')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert unusable_modules(["json", "broken_pkg_xyz"]) == [
        "broken_pkg_xyz (installed but broken: ImportError: compiled against another numpy)"
    ]
    with pytest.raises(SafeCompressError, match=r"broken_pkg_xyz \(installed but broken.*safecompress\[export\]"):
        require("onnx", ("broken_pkg_xyz",))
