"""Database outages seen by the web app: a German 503 with ``Retry-After``, never a 500.

PostgreSQL may restart (an update, a failover) while requests arrive. A request that needs the
database then fails fast: connecting is refused, or a connection the pool held was cut. Both
reach the app as SQLAlchemy's ``OperationalError`` (psycopg and sqlite3 raise their
``OperationalError`` for a lost or refused connection, a server shutting down or starting up,
a deadlock, a locked SQLite file); a pool that hands out no connection in time raises
``TimeoutError``. None of them is the client's fault and all are worth retrying, so the answer
is 503 with one German sentence that says so: nothing of the request was stored (its
transaction was rolled back), and a retry after ``Retry-After`` seconds succeeds once the
database is back. The pool checks connections before use (``pool_pre_ping`` in
:mod:`rathaus.core.db`), so after a restart the next request works without restarting Rathaus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from rathaus.core.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
MESSAGE = (
    "Die Datenbank ist gerade nicht erreichbar oder ausgelastet. Ihre Anfrage wurde nicht "
    f"gespeichert; bitte versuchen Sie es in {RETRY_AFTER_S} Sekunden noch einmal. Hält die "
    "Störung an, wenden Sie sich bitte an die IT."
)

ErrorRenderer = Callable[[Request, int, str], Response]


def _reason(exc: Exception) -> str:
    """The driver's first line (no SQL, no parameters): enough for the log."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0][:300] if lines else type(orig).__name__


def install(app: FastAPI, render_error: ErrorRenderer) -> None:
    """Answer database outages of any route with 503, rendered by ``render_error`` (JSON for
    the API, the error page for people)."""

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning(
            "Datenbank nicht erreichbar bei %s %s: %s",
            request.method,
            request.url.path,
            _reason(exc),
        )
        response = render_error(request, 503, MESSAGE)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    for kind in (OperationalError, PoolTimeoutError, DatabaseUnavailableError):
        app.add_exception_handler(kind, unavailable)
