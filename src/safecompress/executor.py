"""Where fanned-out work runs: in this process (``local``) or on a Dask cluster (``dask``).

Work that fans out — reference-model training in the audit, the cells of ``safecompress bench`` —
is a list of independent tasks handed to ``Executor.map``. Every task carries its own seed and the
number of torch threads it must use, so the numbers are the same whichever executor ran it.

``dask`` connects to ``address`` (an existing scheduler: ``tcp://HOST:8786``; on SLURM/PBS start one
with dask-jobqueue) or, without one, starts a ``LocalCluster`` on 127.0.0.1 with the dashboard off.
Tasks whose worker dies are retried (``retries``). Dask is optional: ``pip install safecompress[dask]``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from .errors import ConfigError
from .registry import Registry

log = logging.getLogger(__name__)

EXECUTORS: Registry[type["Executor"]] = Registry("executor")


class Executor:
    name = ""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], resources: dict[str, float] | None = None) -> list[Any]:
        """``[fn(x) for x in items]``, in order; ``resources`` are per-task needs (e.g. {"GPU": 1})."""
        raise NotImplementedError

    def share(self, obj: Any) -> Any:
        """A handle for ``obj`` to put inside many tasks (sent to the workers once); tasks receive ``obj``."""
        return obj

    def close(self) -> None:
        """Release workers (no-op for the local executor)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    def __init__(self, **_: Any):
        pass

    def map(self, fn, items, resources=None):
        return [fn(x) for x in items]


@EXECUTORS.register("dask")
class DaskExecutor(Executor):
    def __init__(self, address: str | None = None, workers: int = 2, retries: int = 2, **_: Any):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("--executor dask needs Dask: pip install 'safecompress[dask]'") from None
        self.retries = retries
        self._warned = False
        self.cluster = None
        if address:
            try:
                self.client = Client(address, timeout="20s")
            except OSError as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {address} ({exc}); check --address") from None
        else:
            # loopback only, no dashboard: nothing leaves this machine
            self.cluster = LocalCluster(host="127.0.0.1", n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None)
            self.client = Client(self.cluster)
        log.info("dask executor: %s", self.client.scheduler.address)

    def share(self, obj):
        return self.client.scatter(obj, broadcast=True, hash=False)

    def _placeable(self, resources: dict[str, float] | None) -> dict[str, float] | None:
        """``resources`` if some worker offers them all; otherwise None (with a warning), because a task
        asking for a resource no worker has would wait forever."""
        if not resources:
            return None
        offered = [w.get("resources", {}) for w in self.client.scheduler_info().get("workers", {}).values()]
        if any(all(w.get(k, 0) >= v for k, v in resources.items()) for w in offered):
            return resources
        if not self._warned:
            log.warning("no Dask worker offers %s; tasks run without resource limits (start workers with "
                        "--resources \"GPU=1\" to place one training per GPU)", resources)
            self._warned = True
        return None

    def map(self, fn, items, resources=None):
        if not items:
            return []
        futures = self.client.map(fn, list(items), pure=False, retries=self.retries, resources=self._placeable(resources))
        return self.client.gather(futures)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def resources_for(device) -> dict[str, float] | None:
    """What a training task on ``device`` needs from a Dask worker: one GPU when it runs on one."""
    return {"GPU": 1} if getattr(device, "type", str(device)).startswith("cuda") else None


def make_executor(name: str = "local", **options: Any) -> Executor:
    return EXECUTORS.get(name)(**options)
