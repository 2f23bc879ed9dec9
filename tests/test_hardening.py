"""Issue 14: never lose a user's data, never run a stranger's code, never a traceback for bad input.

Each test is the regression test of one defect of the issue (each fails on the code before it)."""

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from folders import snapshot
from safecompress.checkpoint import load_model, load_tensors, read_model_file, save_model, save_tensors
from safecompress.cli import main
from safecompress.errors import SafeCompressError, UntrustedCodeError
from safecompress.models import ModelSpec, build_model
from safecompress.runfolder import LOCK, MARKER, FolderLock


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB): a bound on work done, not a wall-clock time."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


RUN = [
    "run",
    "--preset",
    "ci",
    "--set",
    "data.name=digits",
    "--set",
    "model.name=mlp",
    "--set",
    "method.name=dense",
    "--set",
    "train.augment=false",
    "--set",
    "train.epochs=1",
    "--set",
    "audit.attacks=[loss]",
    "--set",
    "audit.refs=1",
    "--set",
    "audit.bootstrap=10",
]
SRC = Path(__file__).resolve().parents[1] / "src"


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "important.txt").write_text("my thesis\n")
    (path / "sub").mkdir()
    (path / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Two finished, audited runs (seeds 0 and 1) to copy from."""
    root = tmp_path_factory.mktemp("finished")
    for seed in (0, 1):
        assert main([*RUN, "--set", f"seed={seed}", "--out", str(root / f"s{seed}")]) == 0
    return root


@pytest.fixture
def run_copy(finished, tmp_path):
    def copy(seed=0, name="run"):
        dest = tmp_path / name
        shutil.copytree(finished / f"s{seed}", dest)
        return dest

    return copy


# --- the run folder: marker, --overwrite / --resume of other folders --------------------------------------------


@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
def test_overwrite_and_resume_refuse_a_folder_that_is_not_a_run(tmp_path, capsys, flag):
    folder = user_folder(tmp_path / "mine")
    before = snapshot(tmp_path)
    assert main([*RUN, "--out", str(folder), flag]) == 2
    err = capsys.readouterr().err
    assert "not a safecompress run folder" in err and "Traceback" not in err
    assert snapshot(tmp_path) == before  # not a byte changed, no lock or marker file added, nothing beside it


def test_a_finished_run_carries_marker_and_manifest(run_copy):
    from safecompress.fileio import sha256_file

    run = run_copy()
    assert (run / MARKER).is_file()
    report = json.loads((run / "report.json").read_text())
    assert report["manifest"] == {n: sha256_file(run / n) for n in ("config.yaml", "split.npz", "model.safetensors")}
    _, meta = load_tensors(run / "model.safetensors")
    assert meta["run_manifest"] == {n: report["manifest"][n] for n in ("config.yaml", "split.npz")}


def test_a_run_made_before_the_marker_still_resumes(run_copy, capsys):
    run = run_copy()
    (run / MARKER).unlink()
    report = json.loads((run / "report.json").read_text())
    del report["manifest"]
    (run / "report.json").write_text(json.dumps(report))
    assert main([*RUN, "--out", str(run), "--resume"]) == 0
    assert "already complete" in capsys.readouterr().out


# --- the lock ---------------------------------------------------------------------------------------------------


def _hold_lock(folder: Path) -> subprocess.Popen:
    code = (
        "import sys, time; from safecompress.runfolder import FolderLock; "
        "FolderLock(sys.argv[1], 'safecompress run').acquire(); print('locked', flush=True); time.sleep(120)"
    )
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.parametrize("command", ["resume", "overwrite", "audit", "new"])
def test_a_second_writer_is_refused_with_the_holders_pid(run_copy, tmp_path, capsys, command):
    run = run_copy() if command != "new" else tmp_path / "fresh"
    if command == "new":
        run.mkdir()
    holder = _hold_lock(run)
    try:
        before = snapshot(tmp_path)
        args = (
            ["audit", str(run)]
            if command == "audit"
            else [*RUN, "--out", str(run), *([f"--{command}"] if command != "new" else [])]
        )
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"PID {holder.pid}" in err and "in use by another safecompress process" in err
        assert snapshot(tmp_path) == before
    finally:
        holder.kill()
        holder.wait()
    assert main(["audit", str(run)] if command == "audit" else [*RUN, "--out", str(run), "--resume"]) == 0


def test_the_lock_is_held_for_the_whole_run(tmp_path, monkeypatch):
    """While a run trains, another writer of the same folder is refused (and after it, accepted)."""
    import safecompress.runner as runner

    seen = []
    real = runner.served_model

    def probe(*args, **kwargs):
        with pytest.raises(SafeCompressError, match=f"PID {os.getpid()}"):
            FolderLock(tmp_path / "r", "test").acquire()
        seen.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "served_model", probe)
    assert main([*RUN, "--set", "audit.enabled=false", "--out", str(tmp_path / "r")]) == 0
    assert seen == [True]
    with FolderLock(tmp_path / "r", "test"):  # released at the end
        pass


# --- the manifest -----------------------------------------------------------------------------------------------

AUDIT_FILES = ("audit.json", "scores.npz", "roc.png", "report.json")


@pytest.mark.parametrize("tamper", ["swap_split", "edit_config", "swap_model"])
def test_audit_and_resume_refuse_swapped_or_edited_files(run_copy, capsys, tamper):
    run, other = run_copy(0, "run"), run_copy(1, "other")
    name = {"swap_split": "split.npz", "edit_config": "config.yaml", "swap_model": "model.safetensors"}[tamper]
    if tamper == "edit_config":
        (run / name).write_text((run / name).read_text().replace("bootstrap: 10", "bootstrap: 11"))
    else:
        shutil.copy(other / name, run / name)  # self-consistent, but another run's
    before = {n: (run / n).read_bytes() for n in AUDIT_FILES}
    assert main(["audit", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{name} (changed)" in err and "Traceback" not in err
    assert {n: (run / n).read_bytes() for n in AUDIT_FILES} == before
    if tamper != "edit_config":  # (an edited config is already refused as a different configuration)
        assert main([*RUN, "--out", str(run), "--resume"]) == 2
        assert f"{name} (changed)" in capsys.readouterr().err


def test_resume_of_a_killed_run_refuses_a_swapped_split(tmp_path, kill_at_epoch, capsys):
    args = [*RUN, "--set", "audit.enabled=false", "--set", "train.epochs=3"]
    a, b = tmp_path / "a", tmp_path / "b"
    with kill_at_epoch(1):
        assert main([*args, "--out", str(a)]) == 130
        assert main([*args, "--set", "data.split.seed=7", "--out", str(b)]) == 130
    shutil.copy(b / "split.npz", a / "split.npz")
    assert main([*args, "--out", str(a), "--resume"]) == 2
    assert "split.npz (changed)" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b'{"method": "dense", "task": {', b"[1, 2, 3]\n", b"\xff\xfe", b"[" * 100000])
def test_audit_of_a_corrupt_report_exits_2_before_writing_anything(run_copy, capsys, content):
    run = run_copy()
    (run / "report.json").write_bytes(content)
    before = snapshot(run, ignore_lock=True)
    assert main(["audit", str(run)]) == 2
    err = capsys.readouterr().err
    assert "report.json" in err and "--overwrite" in err and "Traceback" not in err
    assert snapshot(run, ignore_lock=True) == before  # audit.json, scores.npz, roc.png untouched


# --- model files: no code from files, no allocation from headers ------------------------------------------------


def _sparse_model_file(path: Path) -> Path:
    spec = ModelSpec("mlp", (8,), 3, 0.05)
    model = build_model(spec, 0)
    masks = {
        n: torch.rand(p.shape, generator=torch.Generator().manual_seed(0)) < 0.5
        for n, p in model.named_parameters()
        if n.endswith("weight")
    }
    return save_model(model, spec, path, masks=masks)


def test_a_model_file_naming_a_factory_does_not_run_its_code(tmp_path, monkeypatch, capsys):
    (tmp_path / "evilmod.py").write_text(
        textwrap.dedent(f"""
        from pathlib import Path
        Path({str(tmp_path / "pwned")!r}).write_text("ran")
        def make(input_shape, n_classes, width):
            import torch
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 3))
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _sparse_model_file(tmp_path / "run" / "model.safetensors")
    tensors, meta = load_tensors(path)
    meta["model"]["name"] = "evilmod:make"
    meta["sparse"] = {}
    save_tensors(path, {"1.weight": torch.zeros(3, 8), "1.bias": torch.zeros(3)}, meta)
    with pytest.raises(UntrustedCodeError, match="trust-model-code"):
        load_model(path)
    assert main(["export", str(path.parent)]) == 2
    assert "--trust-model-code" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists() and "evilmod" not in sys.modules
    assert isinstance(load_model(path, trust_code=True), torch.nn.Module)  # explicitly trusted: built
    assert (tmp_path / "pwned").exists()
    sys.modules.pop("evilmod", None)


@pytest.mark.parametrize("forge", ["sparse_shape", "input_shape", "n_classes"])
def test_forged_shapes_in_a_header_allocate_nothing(tmp_path, capsys, forge):
    path = _sparse_model_file(tmp_path / "run" / "model.safetensors")
    tensors, meta = load_tensors(path)
    if forge == "sparse_shape":
        first = next(iter(meta["sparse"]))
        meta["sparse"][first] = [10**7, 4 * 10**6]  # 4e13 weights: 40 TB of fp32, 5 TB of mask bits
    elif forge == "input_shape":
        meta["model"]["input_shape"] = [10**12]
    else:
        meta["model"]["n_classes"] = 10**12
    save_tensors(path, tensors, meta)
    peak = _peak_rss_mb()
    with pytest.raises(SafeCompressError, match="corrupt|do not fit"):
        load_model(path)
    assert main(["export", str(path.parent)]) == 2
    assert _peak_rss_mb() - peak < 500  # refused before allocating what the header asks for
    assert "Traceback" not in capsys.readouterr().err


def test_read_model_file_roundtrip_still_exact(tmp_path):
    path = _sparse_model_file(tmp_path / "m.safetensors")
    state, masks, _ = read_model_file(path)
    assert set(masks) and all(state[k].shape == masks[k].shape for k in masks)


def test_a_model_file_naming_an_unknown_zoo_model_says_so(tmp_path):
    spec = ModelSpec("mlp", (4,), 2, width=0.01)
    path = save_model(build_model(spec, seed=0), spec, tmp_path / "m")
    path.write_bytes(path.read_bytes().replace(b'\\"name\\": \\"mlp\\"', b'\\"name\\": \\"mlq\\"'))
    with pytest.raises(SafeCompressError, match="unknown model 'mlq' \\(known: cnn, .*mlp"):  # was a TypeError
        load_model(path)


def test_a_model_factory_that_raises_exits_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "badnets.py").write_text(
        "def make(input_shape, n_classes, width):\n    raise ValueError('no GPU here')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main([*RUN, "--set", "model.name=badnets:make", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "the factory raised ValueError: no GPU here" in err and "Traceback" not in err
    sys.modules.pop("badnets", None)


# --- Dask ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_executor():
    pytest.importorskip("distributed")
    pytest.importorskip("cryptography")
    from safecompress.executor import make_executor

    ex = make_executor("dask", workers=1)
    yield ex
    ex.close()


def test_a_foreign_client_cannot_connect_to_the_local_cluster(dask_executor):
    from distributed import Client
    from distributed.security import Security

    address = dask_executor.client.scheduler.address
    assert address.startswith("tls://127.0.0.1:")
    for attempt in (
        lambda: Client(address, timeout="3s"),
        lambda: Client(address.replace("tls://", "tcp://"), timeout="3s"),
        lambda: Client(address, timeout="3s", security=Security.temporary()),
    ):
        with pytest.raises(Exception):  # noqa: B017  (TypeError, OSError, TimeoutError, CommClosedError...)
            attempt().close()
    assert dask_executor.map(abs, [-3]) == [3]  # the owner still can


def test_every_listening_socket_is_on_loopback_and_no_http_server(dask_executor):
    psutil = pytest.importorskip("psutil")
    me = psutil.Process()
    listening = [
        (p.pid, c.laddr)
        for p in [me, *me.children(recursive=True)]
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert len(listening) >= 3  # scheduler, nanny, worker
    assert all(addr.ip == "127.0.0.1" for _, addr in listening), listening
    assert all(addr.port != 8787 for _, addr in listening)
    info = dask_executor.client.scheduler_info()
    assert "dashboard" not in info.get("services", {})
    assert all("dashboard" not in w.get("services", {}) for w in info["workers"].values())


def test_whitebox_audit_on_dask_works_and_equals_local(run_copy, dask_executor, monkeypatch):
    import safecompress.executor as exmod

    run = run_copy()
    reports = {}
    for name in ("local", "dask"):
        shutil.rmtree(run / "refs", ignore_errors=True)
        if name == "dask":
            monkeypatch.setattr(exmod, "make_executor", lambda *a, **k: dask_executor)
            monkeypatch.setattr(dask_executor, "close", lambda: None)
        # --replace: the run's loss rests on 1 reference model, whitebox here on 2 (they would not merge)
        assert main(["audit", str(run), "--attacks", "whitebox", "--refs", "2", "--executor", name, "--replace"]) == 0
        rep = json.loads((run / "report.json").read_text())["audit"]["attacks"]["whitebox"]
        reports[name] = {k: v for k, v in rep.items() if k != "wall_s"}
    assert reports["local"] == reports["dask"]


# --- bad input: exit 2 with a message -----------------------------------------------------------------------------


def _npz(tmp_path, y, X=None, name="d.npz"):
    X = np.random.default_rng(0).normal(size=(len(y), 4)).astype(np.float32) if X is None else X
    np.savez(tmp_path / name, X=X, y=y)
    return ["--set", "data.name=npz", "--set", f"data.path={tmp_path / name}"]


def _csv(tmp_path, text, name="d.csv"):
    (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return ["--set", "data.name=csv", "--set", f"data.path={tmp_path / name}"]


def _labels(n=60):
    return np.arange(n) % 3


@pytest.mark.parametrize(
    "case, needle",
    [
        ("csv_latin1", "not UTF-8 text"),
        ("csv_label_too_big", "beyond ±2^53"),
        ("csv_empty_label", "empty label"),
        ("float_label_2_63", "beyond ±2^53"),
        ("float_label_2_53", "beyond ±2^53"),
        ("float_label_fraction", "non-integral"),
        ("one_class", "at least 2 classes"),
        ("probe_nonmembers_0", "data.split.probe_nonmembers is 0"),
        ("population_0", "data.split.population is 0"),
        ("yaml_latin1", "not UTF-8"),
        ("yaml_too_big", "larger than 1024 KB"),
        ("yaml_alias_bomb", "expands to more than"),
        ("set_alias_bomb", "expands to more than"),
        ("yaml_recursive", "recursive"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, case, needle):
    rows = "".join(f"{i % 5}.5,{i % 7},{i % 3}\n" for i in range(60))
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
    )
    extra = {
        "csv_latin1": lambda: _csv(tmp_path, b"f1,f2,label\n" + rows.encode() + b"1,2,caf\xe9\n"),
        "csv_label_too_big": lambda: _csv(tmp_path, "f1,f2,label\n" + rows + "1,2,99999999999999999999\n"),
        "csv_empty_label": lambda: _csv(tmp_path, "f1,f2,label\n" + rows + "1,2,\n"),
        "float_label_2_63": lambda: _npz(tmp_path, np.where(_labels() == 2, 2.0**63, _labels()).astype(float)),
        "float_label_2_53": lambda: _npz(tmp_path, np.where(_labels() == 2, 2.0**53 + 2, _labels()).astype(float)),
        "float_label_fraction": lambda: _npz(tmp_path, _labels() + 0.5),
        "one_class": lambda: _npz(tmp_path, np.zeros(60, dtype=np.int64)),
        "probe_nonmembers_0": lambda: ["--set", "method.name=safecompress", "--set", "data.split.probe_nonmembers=0"],
        "population_0": lambda: ["--set", "data.split.population=0"],
        "yaml_latin1": lambda: _config(tmp_path, b"seed: 1  # caf\xe9\n"),
        "yaml_too_big": lambda: _config(tmp_path, b"seed: 1\n" + b"# padding\n" * 120_000),
        "yaml_alias_bomb": lambda: _config(tmp_path, bomb.encode()),
        "set_alias_bomb": lambda: ["--set", "audit.attack_params=" + "{" + bomb.replace("\n", ", ").rstrip(", ") + "}"],
        "yaml_recursive": lambda: _config(tmp_path, b"audit: &a {attack_params: *a}\n"),
    }[case]()
    before = snapshot(tmp_path)
    peak = _peak_rss_mb()
    assert main([*RUN, *extra, "--out", str(tmp_path / "out")]) == 2
    assert _peak_rss_mb() - peak < 500  # refused before expanding (an alias bomb grew to 3.4 GB)
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err, err
    assert snapshot(tmp_path) == before  # the failed run left nothing behind


def _config(tmp_path, data: bytes):
    (tmp_path / "c.yaml").write_bytes(data)
    return ["--config", str(tmp_path / "c.yaml")]


def test_a_full_disk_exits_2(tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main([*RUN, "--set", "audit.enabled=false", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no space left" in err and "--resume" in err and "Traceback" not in err


# --- files: modes, symlinks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_run_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert main([*RUN, "--set", "audit.enabled=false", "--out", str(tmp_path / "r")]) == 0
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "r").iterdir() if p.is_file()]
    assert {"config.yaml", "split.npz", "model.safetensors", "report.json", "log.txt", "report.html"} <= {
        p.name for p in files
    }
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: oct(mode) for p in files}


def test_log_txt_is_never_opened_through_a_symlink(run_copy, tmp_path, capsys):
    run = run_copy()
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    (run / "log.txt").unlink()
    (run / "log.txt").symlink_to(target)
    before = {n: (run / n).read_bytes() for n in AUDIT_FILES}
    assert main(["audit", str(run)]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and "Traceback" not in err
    assert target.read_text() == "precious\n"
    assert {n: (run / n).read_bytes() for n in AUDIT_FILES} == before


def test_lock_file_inside_the_run_and_nothing_beside_it(tmp_path):
    assert main([*RUN, "--set", "audit.enabled=false", "--out", str(tmp_path / "r")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    assert (tmp_path / "r" / LOCK).is_file()
