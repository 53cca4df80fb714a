"""Prometheus metrics of every Rathaus process: HTTP requests, model calls and jobs.

Several processes serve one installation (``rathaus serve --workers N``, ``rathaus worker``), and
a scrape reaches only one of them. So in server mode each process writes its counters into
memory-mapped files (prometheus_client's multi-process mode) below one directory per machine,
and ``/metrics`` sums the files of all processes:

    <metrics.directory or data_dir/metrics/<hostname>>/
        web/            uvicorn worker processes of ``rathaus serve`` (emptied at its start)
        worker-<pid>/   one directory per ``rathaus worker`` (removed at ``rathaus serve``
                        start once that process is gone)

:func:`prepare_metrics_dir` sets that up and must run before the first metric is created (the
CLI calls it first thing). Without it (tests, ``uvicorn rathaus.web.main:app`` by hand) the
metrics live in this process only. prometheus_client is imported lazily: importing this module
costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rathaus.core.config import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WEB_DIR = "web"
WORKER_PREFIX = "worker-"

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MODEL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0, 300.0)
JOB_BUCKETS = (0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True)
class _Metrics:
    registry: Any  # this process's own registry (single-process mode)
    http_requests: Any
    http_duration: Any
    http_exceptions: Any
    model_calls: Any
    model_duration: Any
    model_tokens: Any
    quota_refusals: Any
    jobs: Any
    job_duration: Any


_lock = threading.Lock()
_metrics: _Metrics | None = None


def multiprocess_dir() -> Path | None:
    """The directory this process writes its metric files to, or None (single process)."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def _use_multiprocess_values() -> None:
    """prometheus_client picks file-backed values when ``prometheus_client.values`` is first
    imported; if that happened before :func:`prepare_metrics_dir` set the directory, switch
    now (no metric exists yet: they are all created in :func:`_build`)."""
    from prometheus_client import values

    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()


def _remove_own_files(directory: Path) -> None:
    """Files named with this process's id before it wrote any are from an earlier process
    with the same id; their counts must not be taken over."""
    for path in directory.glob(f"*_{os.getpid()}.db"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _build() -> _Metrics:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    directory = multiprocess_dir()
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        _remove_own_files(directory)
        _use_multiprocess_values()
    registry = CollectorRegistry(auto_describe=True)
    return _Metrics(
        registry=registry,
        http_requests=Counter(
            "rathaus_http_requests",
            "HTTP-Anfragen nach Methode, Routen-Vorlage und Statuscode.",
            ("method", "route", "status"),
            registry=registry,
        ),
        http_duration=Histogram(
            "rathaus_http_request_duration_seconds",
            "Antwortzeit der HTTP-Anfragen in Sekunden.",
            ("method", "route"),
            buckets=HTTP_BUCKETS,
            registry=registry,
        ),
        http_exceptions=Counter(
            "rathaus_http_exceptions",
            "Unerwartete Fehler (Ausnahmen) bei HTTP-Anfragen.",
            ("method", "route", "exception"),
            registry=registry,
        ),
        model_calls=Counter(
            "rathaus_model_calls",
            "Modellaufrufe nach Funktion, Backend und Ergebnis (ok/error).",
            ("function", "backend", "status"),
            registry=registry,
        ),
        model_duration=Histogram(
            "rathaus_model_call_duration_seconds",
            "Dauer der Modellaufrufe in Sekunden.",
            ("function", "backend"),
            buckets=MODEL_BUCKETS,
            registry=registry,
        ),
        model_tokens=Counter(
            "rathaus_model_tokens",
            "Verbrauchte Tokens nach Funktion, Backend und Art (prompt/completion).",
            ("function", "backend", "kind"),
            registry=registry,
        ),
        quota_refusals=Counter(
            "rathaus_quota_refusals",
            "Wegen des Kontingents abgelehnte Modellaufrufe nach Kommune und Grenze "
            "(anfragen/tokens).",
            ("tenant", "limit"),
            registry=registry,
        ),
        jobs=Counter(
            "rathaus_jobs",
            "Ausgeführte Hintergrundaufgaben nach Job und Ergebnis (ok/error).",
            ("job", "outcome"),
            registry=registry,
        ),
        job_duration=Histogram(
            "rathaus_job_duration_seconds",
            "Laufzeit der Hintergrundaufgaben in Sekunden.",
            ("job",),
            buckets=JOB_BUCKETS,
            registry=registry,
        ),
    )


def metrics() -> _Metrics:
    """The metric objects of this process, created on first use."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _build()
    return _metrics


# --- Recording ----------------------------------------------------------------------------------


def observe_http(*, method: str, route: str, status: int, seconds: float) -> None:
    m = metrics()
    m.http_requests.labels(method, route, str(status)).inc()
    m.http_duration.labels(method, route).observe(seconds)


def observe_http_exception(*, method: str, route: str, exception: BaseException) -> None:
    metrics().http_exceptions.labels(method, route, type(exception).__name__).inc()


def observe_model_call(
    *,
    function: str,
    backend: str,
    seconds: float,
    ok: bool,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
) -> None:
    """Count one model call (called by :mod:`rathaus.ai.calls` for every recorded call)."""
    m = metrics()
    m.model_calls.labels(function, backend, "ok" if ok else "error").inc()
    m.model_duration.labels(function, backend).observe(seconds)
    if prompt_tokens:
        m.model_tokens.labels(function, backend, "prompt").inc(prompt_tokens)
    if completion_tokens:
        m.model_tokens.labels(function, backend, "completion").inc(completion_tokens)


def observe_quota_refusal(*, tenant: str, limit: str) -> None:
    """Count one model call refused by a municipality's quota (requests or tokens per minute)."""
    metrics().quota_refusals.labels(tenant, limit).inc()


def observe_job(*, job: str, outcome: str, seconds: float) -> None:
    m = metrics()
    m.jobs.labels(job, outcome).inc()
    m.job_duration.labels(job).observe(seconds)


def install_job_metrics(huey: Any) -> None:
    """Count every job that ``huey`` runs in this process, with its duration and outcome."""

    @huey.pre_execute()
    def _start_job_timer(task: Any) -> None:
        task._rathaus_started = time.perf_counter()

    @huey.post_execute()
    def _count_job(task: Any, task_value: Any, exc: BaseException | None) -> None:
        started = getattr(task, "_rathaus_started", None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        from rathaus.core.logging import job_name

        observe_job(job=job_name(task), outcome="ok" if exc is None else "error", seconds=seconds)


# --- Directories --------------------------------------------------------------------------------


def metrics_base_dir(settings: Settings) -> Path:
    """One directory per machine: processes on other machines are scraped there."""
    base = settings.metrics.directory or settings.data_dir / "metrics" / socket.gethostname()
    return base.resolve()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to another user
        return True
    return True


def _empty(directory: Path) -> None:
    for path in directory.glob("*.db"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def prepare_metrics_dir(settings: Settings, role: Literal["web", "worker"]) -> Path:
    """Set up this process's metric directory and export it as ``PROMETHEUS_MULTIPROC_DIR``,
    so the processes started from here (uvicorn workers, huey process workers) inherit it.

    ``web`` (``rathaus serve``): empties ``web/`` (its processes start now) and removes the
    directories of ``rathaus worker`` processes that are gone. ``worker``: a fresh
    ``worker-<pid>/``. Raises :class:`~rathaus.core.errors.ConfigError` (German) when the
    directory cannot be written.
    """
    from rathaus.core.errors import ConfigError

    base = metrics_base_dir(settings)
    directory = base / (WEB_DIR if role == "web" else f"{WORKER_PREFIX}{os.getpid()}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _empty(directory)
        if role == "web":
            for stale in base.glob(f"{WORKER_PREFIX}*"):
                pid = stale.name.removeprefix(WORKER_PREFIX)
                if pid.isdigit() and not _alive(int(pid)):
                    shutil.rmtree(stale, ignore_errors=True)
    except OSError as exc:
        raise ConfigError(
            f"Der Ordner für die Metriken ({directory}) kann nicht angelegt werden ({exc}). "
            "Bitte prüfen Sie RATHAUS_METRICS__DIRECTORY bzw. RATHAUS_DATA_DIR und die "
            "Schreibrechte."
        ) from exc
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def metric_files(directory: Path) -> list[str]:
    """The files to sum for a process writing to ``directory``: in the layout of
    :func:`prepare_metrics_dir`, those of the web processes and of every job worker on this
    machine; otherwise (a directory set by hand) the files in it."""
    if directory.name != WEB_DIR and not directory.name.startswith(WORKER_PREFIX):
        return sorted(str(p) for p in directory.glob("*.db"))
    base = directory.parent
    files = [str(p) for p in (base / WEB_DIR).glob("*.db")]
    for worker in base.glob(f"{WORKER_PREFIX}*"):
        files.extend(str(p) for p in worker.glob("*.db"))
    return sorted(files)


class FilesCollector:
    """Sums the metric files of all processes (a collector for a registry)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Any:
        from prometheus_client.multiprocess import MultiProcessCollector

        files = []
        for name in metric_files(self.directory):
            # A process may be creating its file right now; an empty file has nothing yet.
            with contextlib.suppress(OSError):
                if os.path.getsize(name) > 0:
                    files.append(name)
        return MultiProcessCollector.merge(files, accumulate=True)


def exposition(extra_collectors: tuple[Any, ...] = ()) -> tuple[bytes, str]:
    """The Prometheus text exposition of this installation's metrics and ``extra_collectors``
    (collected at call time); returns (body, content type)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    own = metrics()  # creates this process's metrics (and files) if none exist yet
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory is not None:
        registry.register(FilesCollector(directory))
    else:
        registry.register(_RegistryCollector(own.registry))
    for collector in extra_collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _RegistryCollector:
    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Any:
        return self.registry.collect()
