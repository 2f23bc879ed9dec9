"""Where fanned-out work runs: in this process (``local``) or on a Dask cluster (``dask``).

Work that fans out — reference-model training in the audit, the cells of ``safecompress bench`` —
is a list of independent tasks handed to ``Executor.map``. Every task carries its own seed and the
number of torch threads it must use, so the numbers are the same whichever executor ran it.

``dask`` connects to ``address`` (an existing scheduler: ``tcp://HOST:8786``; on SLURM/PBS start one
with dask-jobqueue) or, without one, starts a local cluster that only this process can use:

* every connection (client, scheduler, nannies, workers) is on 127.0.0.1 and uses TLS with
  throw-away credentials made for this cluster (``Security.temporary()``, kept in memory), so another
  local process cannot connect to the scheduler or the workers, let alone run code in them;
* no HTTP server (dashboard, /health, metrics) is started unless ``dashboard=True`` asks for one,
  and then on 127.0.0.1 only.

Tasks whose worker dies are retried (``retries``). Results that hold ``nn.Module`` objects travel
back as whole pickles rather than through Dask's generic object serializer, which turns a module's
hook dictionaries into plain dicts (``TypeError: cannot create weak reference to 'dict'`` when a
hook is registered on the returned model). Dask is optional: ``pip install safecompress[dask]``.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any, Callable, Sequence

from .errors import ConfigError
from .registry import Registry

log = logging.getLogger(__name__)

EXECUTORS: Registry[type["Executor"]] = Registry("executor")


class Executor:
    name = ""

    def map(
        self, fn: Callable[[Any], Any], items: Sequence[Any], resources: dict[str, float] | None = None
    ) -> list[Any]:
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


class _Shipped:
    """A task result as one pickle (see the module docstring): modules keep their hook dictionaries."""

    def __init__(self, value: Any):
        self.payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def open(self) -> Any:
        # the bytes come from this session's own workers (TLS with this cluster's credentials, or the
        # scheduler the user named): Dask itself unpickles their results the same way
        return pickle.loads(self.payload)  # noqa: S301


class _ShipResults:
    """``fn`` run on a worker, its result wrapped in :class:`_Shipped`."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn

    def __call__(self, item: Any) -> _Shipped:
        return _Shipped(self.fn(item))


def _quiet_classes():
    """Dask's scheduler and worker without their HTTP servers (dashboard, /health, /metrics): the
    routes are kept, because Dask's shutdown code walks them, but nothing listens."""
    try:
        from distributed import Scheduler, Worker
        from distributed.http.routing import RoutingApplication
    except ImportError:  # Dask is optional
        return None, None

    def start_http_server(self, routes, dashboard_address, default_port=0, ssl_options=None):
        self.http_application = RoutingApplication(routes)

    made = []
    for base in (Scheduler, Worker):
        cls = type(f"Quiet{base.__name__}", (base,), {"start_http_server": start_http_server, "__module__": __name__})
        made.append(cls)
    return tuple(made)


# module level, so that a nanny's child process can import the worker class by name
QuietScheduler, QuietWorker = _quiet_classes()


def _local_cluster(workers: int, dashboard: bool):
    """(cluster, security): a cluster on 127.0.0.1 reachable only with this process's temporary TLS
    credentials, without HTTP servers unless ``dashboard`` (then the scheduler's on 127.0.0.1)."""
    from distributed import Nanny, Scheduler, SpecCluster, Worker

    try:
        from distributed.security import Security

        security = Security.temporary()
    except ImportError:
        raise ConfigError(
            "--executor dask needs the 'cryptography' package to secure its local cluster "
            "(temporary TLS credentials): pip install 'safecompress[dask]'"
        ) from None
    common = {"host": "127.0.0.1", "protocol": "tls", "security": security}
    scheduler = {
        "cls": Scheduler if dashboard else QuietScheduler,
        "options": {
            **common,
            "port": 0,
            "dashboard": dashboard,
            "dashboard_address": "127.0.0.1:8787" if dashboard else None,
        },
    }
    worker = {
        "cls": Nanny,
        "options": {
            **common,
            "nthreads": 1,
            "dashboard": False,
            "dashboard_address": None,
            "silence_logs": logging.WARNING,
            "worker_class": Worker if dashboard else QuietWorker,
        },
    }
    cluster = SpecCluster(
        scheduler=scheduler,
        workers={i: worker for i in range(workers)},
        worker=worker,
        security=security,
        silence_logs=logging.WARNING,
    )
    return cluster, security


@EXECUTORS.register("dask")
class DaskExecutor(Executor):
    def __init__(
        self,
        address: str | None = None,
        workers: int = 2,
        retries: int = 2,
        dashboard: bool = False,
        security=None,
        **_: Any,
    ):
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--executor dask needs Dask: pip install 'safecompress[dask]'") from None
        self.retries = retries
        self._warned = False
        self.cluster = None
        if address:
            try:
                self.client = Client(address, timeout="20s", security=security)
            except (OSError, TypeError, ValueError) as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {address} ({exc}); check --address") from None
        else:
            self.cluster, security = _local_cluster(workers, dashboard)
            self.client = Client(self.cluster, security=security)
        self.security = security
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
            log.warning(
                "no Dask worker offers %s; tasks run without resource limits (start workers with "
                '--resources "GPU=1" to place one training per GPU)',
                resources,
            )
            self._warned = True
        return None

    def map(self, fn, items, resources=None):
        if not items:
            return []
        futures = self.client.map(
            _ShipResults(fn), list(items), pure=False, retries=self.retries, resources=self._placeable(resources)
        )
        return [shipped.open() for shipped in self.client.gather(futures)]

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def resources_for(device) -> dict[str, float] | None:
    """What a training task on ``device`` needs from a Dask worker: one GPU when it runs on one."""
    return {"GPU": 1} if getattr(device, "type", str(device)).startswith("cuda") else None


def make_executor(name: str = "local", **options: Any) -> Executor:
    return EXECUTORS.get(name)(**options)
