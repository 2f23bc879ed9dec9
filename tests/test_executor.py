"""Executors: the same seeds give the same numbers whether the work ran locally or on Dask (loopback)."""

import json

import pytest

from runargs import ci_args
from safecompress.cli import main
from safecompress.executor import LocalExecutor, make_executor

pytest.importorskip("distributed")

RUN = ci_args({"method.name": "dense", "train.epochs": 2})


@pytest.fixture(scope="module")
def dask_executor():
    ex = make_executor("dask", workers=2)
    assert ex.client.scheduler.address.startswith("tls://127.0.0.1:")  # loopback only, TLS (issue 14)
    yield ex
    ex.close()


def _square(x):
    return x * x


def test_map_keeps_order(dask_executor):
    assert (
        dask_executor.map(_square, list(range(7)))
        == [x * x for x in range(7)]
        == LocalExecutor().map(_square, range(7))
    )


def test_lira_audit_with_4_references_equals_local(tmp_path, dask_executor, monkeypatch):
    out = tmp_path / "run"
    assert main(["run", *RUN, "--out", str(out)]) == 0
    reports = {}
    for name in ("local", "dask"):
        for f in (out / "refs").glob("*"):
            f.unlink()  # train the references again with this executor
        if name == "dask":
            import safecompress.executor as exmod

            monkeypatch.setattr(exmod, "make_executor", lambda *a, **k: dask_executor)
            monkeypatch.setattr(dask_executor, "close", lambda: None)
        assert main(["audit", str(out), "--attacks", "lira,loss", "--refs", "4", "--executor", name]) == 0
        rep = json.loads((out / "report.json").read_text())["audit"]["attacks"]
        reports[name] = {k: {m: v for m, v in a.items() if m != "wall_s"} for k, a in rep.items()}
    assert reports["local"] == reports["dask"]


def test_address_needs_the_dask_executor(tmp_path, capsys):
    assert main(["audit", str(tmp_path), "--address", "tcp://127.0.0.1:1"]) == 2
    assert "--executor dask" in capsys.readouterr().err


def test_two_cell_bench_on_dask_equals_local(tmp_path, dask_executor):
    import yaml

    from safecompress.benchmark import load_suite, run_bench

    suite = {
        "name": "two",
        "preset": "ci",
        "seeds": [0],
        "densities": [0.2],
        "common": {
            "model": {"name": "mlp"},
            "train": {"epochs": 2, "augment": False, "num_threads": 1},
            "audit": {"attacks": ["loss", "nn"], "refs": 2, "bootstrap": 10},
        },
        "datasets": {"digits": {}},
        "methods": {"rigl": {"method": {"name": "rigl"}}, "dense": {"method": {"name": "dense"}, "dense": True}},
    }
    f = tmp_path / "two.yaml"
    f.write_text(yaml.safe_dump(suite))
    rows = {}
    for name, ex in (("local", LocalExecutor()), ("dask", dask_executor)):
        got = run_bench(load_suite(f), tmp_path / name, executor=ex)
        # timings (keys ending in _s, also inside the per-attack table) differ between runs; numbers must not
        rows[name] = [
            {
                k: (
                    {a: {mk: mv for mk, mv in m.items() if not mk.endswith("_s")} for a, m in v.items()}
                    if k == "attack_table"
                    else v
                )
                for k, v in r.items()
                if not k.endswith("_s")
            }
            for r in got
        ]
    assert len(rows["local"]) == 2 and rows["local"] == rows["dask"]


def _die_once(task):
    """Kills its worker process the first time it runs (a crashed machine), then succeeds."""
    import os
    from pathlib import Path

    marker, value = task
    if not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(1)
    return value * 10


def test_a_task_whose_worker_dies_is_rerun(tmp_path, dask_executor):
    out = dask_executor.map(_die_once, [(str(tmp_path / "m0"), 1), (str(tmp_path / "m1"), 2)])
    assert out == [10, 20]
    assert (tmp_path / "m0").read_text() == "died" and (tmp_path / "m1").read_text() == "died"


def test_corrupt_cached_reference_models_are_rebuilt_not_loaded(tmp_path):
    out = tmp_path / "run"
    assert main(["run", *RUN, "--out", str(out)]) == 0
    assert main(["audit", str(out), "--attacks", "lira", "--refs", "2"]) == 0
    first = json.loads((out / "report.json").read_text())["audit"]["attacks"]["lira"]["auc"]
    refs = sorted((out / "refs").glob("*.safetensors"))
    assert len(refs) == 2 and all(p.with_name(p.name + ".sha256").is_file() for p in refs)
    original = refs[0].read_bytes()
    data = bytearray(original)
    data[-5] ^= 0xFF  # flip bits inside a weight: still a loadable file, but not the model that was trained
    refs[0].write_bytes(bytes(data))
    assert main(["audit", str(out), "--attacks", "lira", "--refs", "2"]) == 0
    assert json.loads((out / "report.json").read_text())["audit"]["attacks"]["lira"]["auc"] == first  # retrained
    assert refs[0].read_bytes() == original  # the corrupt file was replaced by the deterministic retrain


SC = [
    "--preset",
    "ci",
    "--set",
    "data.name=digits",
    "--set",
    "model.name=mlp",
    "--set",
    "train.augment=false",
    "--set",
    "train.lr=0.005",
    "--set",
    "data.split.train=0.5",
    "--set",
    "data.split.population=0.05",
    "--set",
    "train.epochs=4",
    "--set",
    "sparse.update_every=10",
    "--set",
    "method.name=safecompress",
    "--set",
    "sparse.density=0.2",
    "--set",
    "safecompress.finetune_steps=2",
    "--set",
    "audit.enabled=false",
]


def test_safecompress_candidates_on_dask_equal_local_and_a_killed_run_resumes(
    tmp_path, dask_executor, monkeypatch, kill_at_epoch
):
    import safecompress.executor as exmod

    calls = []
    real_map = dask_executor.map

    def counting_map(fn, items, resources=None):
        calls.append(fn.__name__)
        return real_map(fn, items, resources)

    monkeypatch.setattr(
        exmod, "make_executor", lambda name="local", **k: dask_executor if name == "dask" else LocalExecutor()
    )
    monkeypatch.setattr(dask_executor, "close", lambda: None)
    monkeypatch.setattr(dask_executor, "map", counting_map)
    assert main(["run", *SC, "--out", str(tmp_path / "local")]) == 0
    with kill_at_epoch(2):  # killed between rounds
        assert main(["run", *SC, "--executor", "dask", "--out", str(tmp_path / "dask")]) == 130
    assert main(["run", *SC, "--executor", "dask", "--resume", "--out", str(tmp_path / "dask")]) == 0
    assert calls and set(calls) == {"run_candidate"}  # the rounds' candidates went through Dask, only in the dask runs
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("local", "dask"))
    assert a["task"] == b["task"] and a["compression"] == b["compression"]
    assert (tmp_path / "local" / "rounds.jsonl").read_text() == (tmp_path / "dask" / "rounds.jsonl").read_text()


def _hold(i):
    import time

    from distributed import get_worker

    start = time.monotonic()
    time.sleep(0.3)
    return get_worker().address, start, time.monotonic()


def test_tasks_that_need_a_gpu_run_one_at_a_time_per_gpu_worker():
    from distributed import LocalCluster

    from safecompress.executor import DaskExecutor

    # two workers with two threads each but one "GPU" each: GPU tasks must never overlap on a worker
    with LocalCluster(
        host="127.0.0.1",
        n_workers=2,
        threads_per_worker=2,
        processes=False,
        protocol="tcp",
        dashboard_address=None,
        resources={"GPU": 1},
    ) as cluster:
        ex = DaskExecutor(address=cluster.scheduler_address)
        try:
            spans = ex.map(_hold, list(range(6)), resources={"GPU": 1})
        finally:
            ex.close()
    by_worker = {}
    for worker, start, end in spans:
        by_worker.setdefault(worker, []).append((start, end))
    for intervals in by_worker.values():
        intervals.sort()
        assert all(b[0] >= a[1] for a, b in zip(intervals, intervals[1:]))


def test_resources_no_worker_offers_are_dropped_not_waited_for(dask_executor, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="safecompress.executor"):
        assert dask_executor.map(_square, [2, 3], resources={"GPU": 1}) == [4, 9]
    assert "no Dask worker offers" in caplog.text and "--resources" in caplog.text
