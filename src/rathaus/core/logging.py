"""Log lines that operators can follow: request ids, tenant, job, and one JSON object per line.

Every log line written while a web request or a job runs carries the request id (and the tenant,
once the request has a logged-in user), so one citizen's complaint "it failed at 10:42" leads to
every line of that request, in every process. A job enqueued during a request carries the id
into the worker.

``rathaus serve`` passes :func:`uvicorn_log_config` to uvicorn (each web worker process applies
it); ``rathaus worker`` calls :func:`configure_logging`. ``log_format = "json"`` writes::

    {"ts": "2025-03-01T09:12:03.412Z", "level": "INFO", "logger": "rathaus.access",
     "message": "GET /vorgaenge/{case_id} 200", "pid": 4711, "request_id": "6f1c…",
     "tenant": 1, "method": "GET", "route": "/vorgaenge/{case_id}", "status": 200,
     "duration_ms": 12.5}

No request body and no query string is ever logged (they may hold personal data): the access
line names the route template, not the path.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import logging.config
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rathaus.core.config import Settings

REQUEST_ID_HEADER = "X-Request-ID"
# The keyword argument that carries the request id from the enqueueing request into the job.
REQUEST_ID_KWARG = "_rathaus_request_id"
# An incoming id is taken over only if it is short and harmless in a log line and a header.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")

# Attributes every LogRecord has; anything else on a record is an ``extra`` worth writing.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}
)


@dataclass
class LogContext:
    """What the current request or job adds to each log line.

    ``tenant_resolver`` is asked lazily, at the time of the log line: the tenant is known only
    after the route's login dependency ran, long after the request id was assigned.
    """

    request_id: str
    job: str | None = None
    task_id: str | None = None
    tenant_resolver: Callable[[], int | None] | None = field(default=None, repr=False)

    def tenant(self) -> int | None:
        if self.tenant_resolver is None:
            return None
        try:
            return self.tenant_resolver()
        except Exception:  # a log line must never fail because of its context
            return None


_CONTEXT: contextvars.ContextVar[LogContext | None] = contextvars.ContextVar(
    "rathaus_log_context", default=None
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str | None:
    """``value`` if it is a sane request id (1–128 of ``A-Z a-z 0-9 . _ : + = / -``), else None."""
    if value and _SANE_ID.fullmatch(value):
        return value
    return None


def current_context() -> LogContext | None:
    return _CONTEXT.get()


def current_request_id() -> str | None:
    context = _CONTEXT.get()
    return context.request_id if context else None


def bind(context: LogContext) -> contextvars.Token[LogContext | None]:
    """Make ``context`` the current one; pass the token to :func:`unbind` when done."""
    return _CONTEXT.set(context)


def unbind(token: contextvars.Token[LogContext | None]) -> None:
    _CONTEXT.reset(token)


# --- Formatters ---------------------------------------------------------------------------------


def _context_fields(record: logging.LogRecord) -> dict[str, Any]:
    context = _CONTEXT.get()
    if context is None:
        return {}
    fields: dict[str, Any] = {"request_id": context.request_id}
    tenant = context.tenant()
    if tenant is not None:
        fields["tenant"] = tenant
    if context.job:
        fields["job"] = context.job
        fields["task_id"] = context.task_id
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC), level, logger, message, pid, request_id, tenant,
    job, task_id, exception, and the record's ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        data.update(_context_fields(record))
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in data:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The familiar one-line format, with the request id in brackets when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = _context_fields(record)
        parts = [f"{k}={fields[k]}" for k in ("request_id", "tenant", "job") if k in fields]
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


# --- Configuration ------------------------------------------------------------------------------


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary for ``settings.log_format``/``log_level``.

    Everything goes to stderr through the root logger. uvicorn's own access log is switched
    off: it writes the full path with the query string; :mod:`rathaus.web.observability`
    writes the access line instead (``rathaus.access``).
    """
    formatter = "rathaus.core.logging.JsonFormatter"
    if settings.log_format == "text":
        formatter = "rathaus.core.logging.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"rathaus": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "rathaus",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": settings.log_level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": settings.log_level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            "huey": {"level": settings.log_level, "handlers": [], "propagate": True},
        },
    }


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """For ``uvicorn.run(log_config=…)``: every web worker process configures itself with it."""
    return logging_config(settings)


def configure_logging(settings: Settings) -> None:
    """Configure this process's logging (``rathaus worker``, scripts) from the settings."""
    logging.config.dictConfig(logging_config(settings))


# --- Jobs ---------------------------------------------------------------------------------------


def job_context_kwargs() -> dict[str, str]:
    """Extra keyword arguments for a job enqueued now: the current request id, if any.

    :func:`install_job_context` takes it out again before the job function runs.
    """
    request_id = current_request_id()
    return {REQUEST_ID_KWARG: request_id} if request_id else {}


def job_name(task: Any) -> str:
    """huey's name for the task: ``module.function``, as the worker lists it."""
    return f"{type(task).__module__}.{type(task).__name__}"


def install_job_context(huey: Any) -> None:
    """Register huey hooks that bind the log context (request id, job name, task id) while a
    job runs, taking the request id out of the job's keyword arguments."""

    @huey.pre_execute()
    def _bind_job_context(task: Any) -> None:
        kwargs = task.kwargs or {}
        request_id = kwargs.pop(REQUEST_ID_KWARG, None)
        task._rathaus_request_id = request_id
        context = LogContext(
            request_id=clean_request_id(request_id) or new_request_id(),
            job=job_name(task),
            task_id=task.id,
        )
        task._rathaus_log_token = _CONTEXT.set(context)

    @huey.post_execute()
    def _unbind_job_context(task: Any, task_value: Any, exc: BaseException | None) -> None:
        token = getattr(task, "_rathaus_log_token", None)
        if token is not None:
            try:
                _CONTEXT.reset(token)
            except ValueError:  # set in another context (should not happen): just clear
                _CONTEXT.set(None)
            task._rathaus_log_token = None
        request_id = getattr(task, "_rathaus_request_id", None)
        if request_id:  # a retry of this task carries the id again
            if task.kwargs is None:
                task.kwargs = {}
            task.kwargs[REQUEST_ID_KWARG] = request_id
