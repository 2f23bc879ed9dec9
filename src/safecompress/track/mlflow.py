"""MLflow tracker: one MLflow run per logged run folder (``--track mlflow``; needs ``mlflow-skinny``).

What it logs: the flattened resolved config as params; tags method, dataset, seed, code_hash (report.json's
``code.source_sha256``), version, defence, audited, run_dir; per-epoch metrics ``train/<name>`` with step =
epoch; SafeCompress's chosen candidate per round ``round/<name>`` with step = round, and every candidate of
every round as the table artifact ``rounds/candidates.json``; task, compression, timing and audit numbers
(``audit/<attack>/auc``, ``audit/<attack>/tpr_at_fpr_<fpr>``, ``audit/strongest/...``); the headline rows
as ``headline.json``; and report.html, report.json, roc.png, audit.json, config.yaml, rounds.jsonl as
artifacts.

Where: ``--track-uri`` is any MLflow tracking URI (``http://host:5000``, ``sqlite:///mlflow.db``,
``file:///abs/mlruns``) or a plain folder path; without it, the folder ``./mlruns`` of the current
directory (MLflow's own classic default, which ``mlflow ui --backend-store-uri ./mlruns`` opens).

Why a file store by default: a local store needs no server, and the only local store mlflow-skinny can
open without more packages is the file store — the SQLite store needs SQLAlchemy and Alembic, which the
skinny package does not install (and the full ``mlflow`` package would pin other packages of this project).
MLflow 3 refuses the file store ("maintenance mode") unless ``MLFLOW_ALLOW_FILE_STORE=true``; we set that
variable only while logging to a ``file:`` store and restore its previous value (or absence) afterwards, so
nothing else in the process sees it changed. To read the store back in your own code set the variable too,
or migrate it with ``mlflow migrate-filestore`` and pass ``--track-uri sqlite:///...``. Because it is an
environment variable, this is not thread-safe: log from one thread at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path
from typing import Iterator

from .base import TRACKERS, Tracker, TrackError
from .record import RunRecord

log = logging.getLogger(__name__)

ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")  # two letters at least: "C:" is a Windows drive
_BAD_KEY = re.compile(r"[^\w./\- :]")


def resolve_uri(uri: str | None) -> str:
    """An MLflow tracking URI: a URI as given, a plain path (or nothing: ./mlruns) as an absolute file URI."""
    if uri and _SCHEME.match(uri):
        return uri
    return Path(uri or "mlruns").expanduser().resolve().as_uri()


@contextlib.contextmanager
def allow_file_store(uri: str) -> Iterator[None]:
    """Set MLFLOW_ALLOW_FILE_STORE=true while logging to a ``file:`` URI, then restore it exactly."""
    if not uri.startswith("file:"):
        yield
        return
    before = os.environ.get(ALLOW_FILE_STORE)
    os.environ[ALLOW_FILE_STORE] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ALLOW_FILE_STORE, None)
        else:
            os.environ[ALLOW_FILE_STORE] = before


@TRACKERS.register("mlflow")
class MlflowTracker(Tracker):
    requires = ("mlflow",)
    default_uri = "./mlruns (a local MLflow file store)"

    def log(self, run: RunRecord) -> str:
        uri = resolve_uri(self.uri)
        with allow_file_store(uri):
            run_id = self._log(run, uri)
        return f"run {run_id} in experiment {self.experiment!r} of {uri}"

    def _log(self, run: RunRecord, uri: str) -> str:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
        from mlflow.utils import validation

        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            experiment_id = client.create_experiment(self.experiment)
        elif experiment.lifecycle_stage != "active":
            raise TrackError(
                f"MLflow experiment {self.experiment!r} in {uri} is deleted; restore it "
                "(mlflow experiments restore) or pass another --track-experiment"
            )
        else:
            experiment_id = experiment.experiment_id
        tags = {**run.tags(), "mlflow.note.content": f"safecompress run folder {run.path}"}
        mlrun = client.create_run(experiment_id, tags=tags, run_name=run.name)
        run_id = mlrun.info.run_id
        try:
            now = int(time.time() * 1000)
            max_len = getattr(validation, "MAX_PARAM_VAL_LENGTH", 6000)
            params = [Param(_key(k), _clip(v, max_len)) for k, v in run.params().items()]
            metrics = [Metric(_key(k), v, now, 0) for k, v in run.summary_metrics().items()]
            for row in run.history:
                epoch = int(row.get("epoch", 0))
                metrics += [Metric(_key(f"train/{k}"), v, now, epoch) for k, v in row.items() if k != "epoch"]
            for step, values in run.round_metrics():
                metrics += [Metric(_key(k), v, now, step) for k, v in values.items()]
            per_batch = getattr(validation, "MAX_PARAMS_TAGS_PER_BATCH", 100)
            for i in range(0, len(params), per_batch):
                client.log_batch(run_id, params=params[i : i + per_batch])
            per_batch = getattr(validation, "MAX_METRICS_PER_BATCH", 1000)
            for i in range(0, len(metrics), per_batch):
                client.log_batch(run_id, metrics=metrics[i : i + per_batch])
            if run.rounds:
                client.log_dict(run_id, run.round_table(), "rounds/candidates.json")
            headline = run.headline()
            if headline:
                client.log_dict(run_id, headline, "headline.json")
            for path in run.artifacts():
                client.log_artifact(run_id, str(path))
        except BaseException:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
        return run_id


def _key(name: str) -> str:
    """A metric or param name MLflow accepts (letters, digits, _ - . / space and colon)."""
    return _BAD_KEY.sub("_", name)


def _clip(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    log.warning("an MLflow param value of %d characters is cut to %d", len(value), limit)
    return value[: limit - 3] + "..."
