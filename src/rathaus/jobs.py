"""The task queue: huey, with a SQLite file (embedded), Redis (server) or memory (tests) backend.

How jobs are declared and bound
-------------------------------
huey binds a task to a ``Huey`` instance at decoration time (``@huey.task()``), but our ``Huey``
can only be built once the settings are known, and settings are never built at import time.
So modules declare jobs with :func:`job`, which only records the function in a module-level
registry and returns a :class:`Job`. :func:`make_huey` builds the backend from the settings and
registers every recorded job on it; a job declared later is registered on first use. A job keeps
huey's task name (``module.function``), so producer and worker agree without shared objects::

    from rathaus.jobs import job

    @job(retries=2, retry_delay=30)
    def triage_item(item_id: int) -> None: ...

    triage_item.enqueue(item_id)            # into the queue; a worker runs it
    triage_item.schedule(args=(item_id,), delay=60)
    triage_item(item_id)                    # a plain call runs it here and now

A worker only knows the jobs whose modules it has imported: every module that declares jobs
is listed in :data:`JOB_MODULES`, which :func:`load_job_modules` imports before consuming (a task
whose name is unknown to the worker would be dropped by huey). Job functions read the settings
with :func:`job_settings`; arguments must be small and picklable (ids, not objects or secrets).

Delivery guarantees (huey's, stated plainly)
--------------------------------------------
Queued and scheduled jobs live in the backend (SQLite file, Redis) and survive a crash or
restart of any worker. A job that is *running* when its worker is killed hard (SIGKILL, power
loss) is lost: huey removes a job from the queue when a worker takes it and has no
acknowledgement. On an orderly stop (SIGTERM, Strg+C, web server shutdown) running jobs get
``shutdown_timeout`` seconds to finish; one still running after that is put back into the queue
(huey's ``SIGNAL_INTERRUPTED``), so it may run again: jobs must be idempotent. The triage job
is more than idempotent: it claims its case in the database first, so it takes effect exactly
once even when two runs overlap, and the reconcile job re-runs what a killed worker lost
(:mod:`rathaus.inbox.jobs`, docs/scaling.md).

This module imports no AI library; the job modules import what they need inside their jobs.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

from huey import Huey, MemoryHuey, PriorityRedisHuey, SqliteHuey
from huey.consumer import Consumer, ConsumerStopped
from huey.signals import SIGNAL_INTERRUPTED

from rathaus.core.config import QueueSettings, Settings, load_settings
from rathaus.core.db import describe_url
from rathaus.core.errors import ConfigError, RathausError
from rathaus.core.logging import install_job_context, job_context_kwargs
from rathaus.core.metrics import install_job_metrics

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Every module that declares jobs; workers import them all before taking jobs from the queue.
JOB_MODULES: tuple[str, ...] = (
    "rathaus.jobs",
    "rathaus.inbox.jobs",
    "rathaus.inbox.channels.poll",
    "rathaus.assistant.jobs",
    "rathaus.writing.jobs",
    "rathaus.insights.winter.jobs",
    "rathaus.governance.jobs",
)

SQLITE_FILE_NAME = "jobs.db"
PING_LOG_NAME = "ping.log"
# A SQLite queue is polled; an idle worker checks at least this often (seconds).
SQLITE_MAX_POLL_S = 1.0
REDIS_CONNECT_TIMEOUT_S = 3.0
DEFAULT_SHUTDOWN_TIMEOUT_S = 30.0
WORKER_TYPES = ("thread", "process")


class QueueUnavailableError(RathausError):
    """The queue backend (Redis server, SQLite file) cannot be reached or used."""


# --- Job declaration ----------------------------------------------------------------------------


class Job(Generic[P, R]):
    """A function that can run in a worker; bound lazily to the ``Huey`` built from settings.

    Contract: calling the object runs the function directly; :meth:`enqueue` and
    :meth:`schedule` hand it to the queue and return huey's ``Result`` (``None`` when results
    are disabled). ``options`` are passed to ``Huey.task`` (``retries``, ``retry_delay``,
    ``priority``, ``expires``, ``timeout``). ``cron`` (a dict for ``huey.crontab``, e.g.
    ``{"minute": "*/5"}``) makes it a periodic job that every consumer runs on that schedule;
    it may also be a function of the queue settings returning such a dict, for a schedule the
    operator sets (the queue's settings are known only when the ``Huey`` is built).
    """

    def __init__(self, func: Callable[P, R], options: dict[str, Any]) -> None:
        self.func = func
        self.options = options
        self.name = f"{func.__module__}.{func.__name__}"
        self._tasks: weakref.WeakKeyDictionary[Huey, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        functools.update_wrapper(self, func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Job {self.name}>"

    def task(self, huey: Huey | None = None) -> Any:
        """huey's task wrapper for this job on ``huey`` (default: the process-wide instance)."""
        huey = huey if huey is not None else get_huey()
        with self._lock:
            wrapper = self._tasks.get(huey)
            if wrapper is None:
                options = dict(self.options)
                cron = options.pop("cron", None)
                if callable(cron):
                    cron = cron(_HUEY_QUEUE_SETTINGS.get(huey) or QueueSettings())
                if cron is not None:
                    from huey import crontab

                    wrapper = huey.periodic_task(crontab(**cron), **options)(self.func)
                else:
                    wrapper = huey.task(**options)(self.func)
                self._tasks[huey] = wrapper
            return wrapper

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Put one run of the job into the queue; arguments go to the function unchanged."""
        wrapper = self.task()
        # Built directly so that job parameters named like huey's options (priority, delay …)
        # reach the function instead of being taken as options.
        return wrapper.huey.enqueue(wrapper.task_class(args, {**kwargs, **job_context_kwargs()}))

    def schedule(
        self,
        *,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        delay: float | dt.timedelta | None = None,
        eta: dt.datetime | None = None,
        priority: int | None = None,
    ) -> Any:
        """Put one run into the queue to start after ``delay`` seconds or at ``eta``."""
        if isinstance(delay, dt.timedelta):
            delay = delay.total_seconds()
        if delay is None and eta is None:
            delay = 0
        return self.task().schedule(
            args=args,
            kwargs={**(kwargs or {}), **job_context_kwargs()},
            delay=delay,
            eta=eta,
            priority=priority,
        )


_REGISTRY: dict[str, Job[Any, Any]] = {}
# The queue settings each Huey was built from, for schedules that depend on them.
_HUEY_QUEUE_SETTINGS: weakref.WeakKeyDictionary[Huey, QueueSettings] = weakref.WeakKeyDictionary()


def job(**options: Any) -> Callable[[Callable[P, R]], Job[P, R]]:
    """Declare a job; the module must be listed in :data:`JOB_MODULES` for workers to know it."""

    def decorate(func: Callable[P, R]) -> Job[P, R]:
        declared = Job(func, options)
        if declared.name in _REGISTRY:
            raise ValueError(f"Job {declared.name} ist bereits deklariert.")
        _REGISTRY[declared.name] = declared
        return declared

    return decorate


def registered_jobs() -> list[str]:
    """Names of all declared jobs, sorted."""
    return sorted(_REGISTRY)


def load_job_modules(modules: tuple[str, ...] | None = None) -> None:
    """Import every module that declares jobs, so a worker knows all task names."""
    for name in modules if modules is not None else JOB_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise RathausError(
                f"Das Job-Modul {name} konnte nicht geladen werden ({exc}). "
                "Bitte prüfen Sie die Installation (fehlende Abhängigkeit?)."
            ) from exc


# --- The Huey instance --------------------------------------------------------------------------


def sqlite_queue_path(settings: Settings) -> Path:
    return (settings.data_dir / SQLITE_FILE_NAME).resolve()


def describe_queue(settings: Settings) -> str:
    """Where the queue lives, for messages: never with a password."""
    backend = settings.queue.backend
    if backend == "sqlite":
        return f"SQLite-Datei {sqlite_queue_path(settings)}"
    if backend == "redis":
        return f"Redis unter {describe_url(settings.queue.redis_url)}"
    return "im Arbeitsspeicher (sofortige Ausführung, nur für Tests)"


def _redis_unavailable(settings: Settings) -> QueueUnavailableError:
    return QueueUnavailableError(
        f"Die Warteschlange ({describe_queue(settings)}) ist nicht erreichbar. "
        "Bitte prüfen Sie RATHAUS_QUEUE__REDIS_URL und ob Redis läuft."
    )


def make_huey(settings: Settings) -> Huey:
    """A new ``Huey`` for ``settings.queue`` with every declared job registered.

    Raises :class:`ConfigError` for a malformed Redis URL and :class:`QueueUnavailableError`
    when the SQLite file cannot be created. Redis is contacted only on first use.
    """
    queue = settings.queue
    common: dict[str, Any] = {"results": True, "store_none": False, "utc": True}
    if queue.backend == "memory":
        huey: Huey = MemoryHuey(queue.name, immediate=True, **common)
    elif queue.backend == "sqlite":
        path = sqlite_queue_path(settings)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            huey = SqliteHuey(queue.name, filename=str(path), timeout=10, **common)
        except (OSError, sqlite3.Error) as exc:
            raise QueueUnavailableError(
                f"Die Warteschlange (SQLite-Datei {path}) kann nicht angelegt werden ({exc}). "
                "Bitte prüfen Sie RATHAUS_DATA_DIR und die Schreibrechte."
            ) from exc
    else:
        from redis import ConnectionPool

        try:
            pool = ConnectionPool.from_url(
                queue.redis_url,
                socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
                # Longer than huey's blocking read (1 s), so an idle worker is not cut off.
                socket_timeout=30,
                socket_keepalive=True,
                health_check_interval=30,
            )
        except ValueError as exc:
            raise ConfigError(
                f"Einstellung RATHAUS_QUEUE__REDIS_URL ({describe_url(queue.redis_url)}) ist "
                "ungültig: erwartet wird eine Adresse wie redis://127.0.0.1:6379/0 (oder "
                "rediss://, unix://). Bitte korrigieren Sie die Einstellung."
            ) from exc
        # The priority variant gives `priority=` the same meaning as on SQLite (Redis >= 5).
        huey = PriorityRedisHuey(queue.name, connection_pool=pool, **common)

    _HUEY_QUEUE_SETTINGS[huey] = queue

    # Operations: request ids in the job's log lines, job counts and durations in the metrics.
    install_job_context(huey)
    install_job_metrics(huey)

    @huey.signal(SIGNAL_INTERRUPTED)
    def _requeue_interrupted(signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
        logger.warning(
            "Job %s (%s) wurde beim Beenden unterbrochen und wird erneut eingereiht.",
            task.name,
            task.id,
        )
        huey.enqueue(task)

    bind_jobs(huey)
    return huey


def bind_jobs(huey: Huey) -> None:
    """Register every declared job on ``huey`` (a consumer must know them before it starts)."""
    for declared in list(_REGISTRY.values()):
        declared.task(huey)


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    settings: Settings | None = None
    huey: Huey | None = None
    key: tuple[Any, ...] | None = None


_state = _State()


def _queue_key(settings: Settings) -> tuple[Any, ...]:
    q = settings.queue
    return (q.backend, q.name, q.redis_url, settings.data_dir.resolve())


def get_huey(settings: Settings | None = None) -> Huey:
    """The process-wide ``Huey``: built on first use from ``settings`` (or :func:`load_settings`).

    Passing settings for another queue (backend, name, URL, data directory) replaces it.
    """
    with _state.lock:
        if settings is None:
            if _state.huey is not None:
                return _state.huey
            settings = load_settings()
        key = _queue_key(settings)
        if _state.huey is None or _state.key != key:
            _state.huey = make_huey(settings)
            _state.key = key
        _state.settings = settings
        return _state.huey


def job_settings() -> Settings:
    """The settings the process-wide queue was built from; for use inside job functions."""
    if _state.settings is None:
        get_huey()
    if _state.settings is None:  # pragma: no cover - get_huey always sets it
        raise RuntimeError("job settings missing")
    return _state.settings


def reset() -> None:
    """Forget the process-wide queue (tests, or after the settings changed)."""
    with _state.lock:
        _state.settings = _state.huey = _state.key = None


# --- Health -------------------------------------------------------------------------------------


def check_queue(settings: Settings, huey: Huey | None = None) -> tuple[int, int]:
    """Pending and scheduled job counts; raises :class:`QueueUnavailableError` (German)."""
    huey = huey if huey is not None else get_huey(settings)
    if settings.queue.backend == "redis":
        from redis.exceptions import RedisError

        try:
            huey.storage.conn.ping()
            return huey.pending_count(), huey.scheduled_count()
        except RedisError as exc:
            raise _redis_unavailable(settings) from exc
    try:
        return huey.pending_count(), huey.scheduled_count()
    except Exception as exc:  # sqlite3.Error: locked beyond the timeout, file removed, disk full
        raise QueueUnavailableError(
            f"Die Warteschlange ({describe_queue(settings)}) ist nicht lesbar ({exc}). "
            "Bitte prüfen Sie RATHAUS_DATA_DIR und den freien Speicherplatz."
        ) from exc


def queue_health(settings: Settings) -> dict[str, Any]:
    """For ``/healthz``: backend, where, reachable, pending and scheduled counts, German message."""
    health: dict[str, Any] = {
        "backend": settings.queue.backend,
        "name": settings.queue.name,
        "location": describe_queue(settings),
        "reachable": False,
        "pending": None,
        "scheduled": None,
        "message": None,
    }
    try:
        pending, scheduled = check_queue(settings)
    except RathausError as exc:
        health["message"] = exc.message
        return health
    health.update(reachable=True, pending=pending, scheduled=scheduled)
    return health


# --- Consumers ----------------------------------------------------------------------------------


def _consumer_options(settings: Settings, workers: int, shutdown_timeout: float) -> dict[str, Any]:
    return {
        "workers": workers,
        "periodic": settings.queue.periodic,
        "initial_delay": 0.1,
        "backoff": 1.15,
        "max_delay": SQLITE_MAX_POLL_S,
        "scheduler_interval": 1,
        "check_worker_health": True,
        "health_check_interval": 10,
        "shutdown_timeout": shutdown_timeout,
    }


class _BackgroundConsumer(Consumer):
    """huey's thread consumer without signal handlers: those belong to the web server, and
    ``signal.signal`` is refused outside the main thread."""

    def _set_signal_handlers(self) -> None:
        return None


@dataclass
class EmbeddedConsumer:
    """Handle of a consumer running in background threads; pass it to :func:`stop`."""

    huey: Huey
    consumer: Consumer | None = None
    supervisor: threading.Thread | None = None


def start_embedded_consumer(
    settings: Settings,
    *,
    workers: int | None = None,
    shutdown_timeout: float = 10.0,
) -> EmbeddedConsumer:
    """Run huey workers as daemon threads in this process (``rathaus serve``, embedded mode).

    Safe to call from any thread; installs no signal handlers. With the memory backend jobs
    already run on enqueue, so no consumer is started.
    """
    huey = get_huey(settings)
    if settings.queue.backend == "memory":
        return EmbeddedConsumer(huey=huey)
    load_job_modules()
    bind_jobs(huey)
    check_queue(settings, huey)
    consumer = _BackgroundConsumer(
        huey,
        worker_type="thread",
        **_consumer_options(settings, workers or settings.queue.workers, shutdown_timeout),
    )
    consumer.start()

    def supervise() -> None:
        # huey's own main loop: restarts dead worker threads until the stop flag is set.
        health_ts = time.monotonic()
        while True:
            try:
                health_ts = consumer.loop(health_ts)
            except ConsumerStopped:
                return

    supervisor = threading.Thread(target=supervise, name="rathaus-jobs-supervisor", daemon=True)
    supervisor.start()
    logger.info(
        "Eingebetteter Worker gestartet: %s Threads, Warteschlange %s.",
        consumer.workers,
        describe_queue(settings),
    )
    return EmbeddedConsumer(huey=huey, consumer=consumer, supervisor=supervisor)


def stop(handle: EmbeddedConsumer) -> None:
    """Stop an embedded consumer: running jobs get the shutdown timeout to finish, and any
    still running afterwards are put back into the queue."""
    if handle.consumer is None:
        return
    handle.consumer.stop(graceful=True)
    handle.huey.notify_interrupted_tasks()
    if handle.supervisor is not None:
        handle.supervisor.join(timeout=5)
    handle.consumer = None


def run_worker(
    settings: Settings,
    *,
    workers: int | None = None,
    worker_type: str = "thread",
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
    echo: Callable[[str], Any] = print,
) -> None:
    """Run a huey consumer in the foreground until SIGTERM/SIGINT (``rathaus worker``).

    SIGTERM (systemd, Docker) stops after running jobs finished, at most ``shutdown_timeout``
    seconds; SIGINT (Strg+C) stops at once. Interrupted jobs are put back into the queue.
    """
    if settings.queue.backend == "memory":
        raise ConfigError(
            "Mit RATHAUS_QUEUE__BACKEND=memory gibt es keinen Worker: Jobs laufen sofort im "
            "aufrufenden Prozess. Bitte sqlite oder redis einstellen."
        )
    if worker_type not in WORKER_TYPES:
        raise ConfigError(
            f"Worker-Art {worker_type!r} gibt es nicht; erlaubt sind thread oder process."
        )
    count = workers or settings.queue.workers
    load_job_modules()
    huey = get_huey(settings)
    bind_jobs(huey)
    pending, scheduled = check_queue(settings, huey)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    consumer = huey.create_consumer(
        worker_type=worker_type,
        graceful_signal="TERM",
        **_consumer_options(settings, count, shutdown_timeout),
    )
    kind = "Threads" if worker_type == "thread" else "Prozesse"
    echo(
        f"Rathaus-Worker startet (PID {os.getpid()}): Warteschlange „{settings.queue.name}“, "
        f"{describe_queue(settings)}, {count} {kind}."
    )
    echo(f"Bekannte Jobs: {', '.join(registered_jobs())}.")
    echo(f"Wartend: {pending}, geplant: {scheduled}.")
    echo(
        f"Beenden: SIGTERM wartet bis zu {shutdown_timeout:g} s auf laufende Jobs, Strg+C "
        "beendet sofort; unterbrochene Jobs kommen zurück in die Warteschlange."
    )
    consumer.run()
    echo("Rathaus-Worker beendet.")


# --- Jobs of this module ------------------------------------------------------------------------


def ping_log_path(settings: Settings) -> Path:
    return settings.data_dir / "jobs" / PING_LOG_NAME


def read_pings(settings: Settings) -> list[str]:
    """Tokens of all completed ping jobs, in completion order."""
    path = ping_log_path(settings)
    if not path.exists():
        return []
    return [line.split("\t", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()]


@job()
def ping_job(token: str, hold_s: float = 0.0) -> None:
    """Prove the queue works end to end: append ``token`` to ``<data_dir>/jobs/ping.log``.

    ``hold_s`` (at most 60) keeps the worker busy first, to check shutdown behaviour.
    """
    if hold_s:
        time.sleep(min(max(hold_s, 0.0), 60.0))
    path = ping_log_path(job_settings())
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    line = f"{token}\t{os.getpid()}\t{stamp}\n".encode()
    # One write() on an O_APPEND descriptor: lines of concurrent workers never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
