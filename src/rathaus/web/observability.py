"""Request ids, the access log line and HTTP metrics for every request; ``GET /metrics``.

:class:`RequestContextMiddleware` wraps the whole app (pure ASGI, so the request id is bound in
the same context the route runs in, also for sync routes in the thread pool):

- takes a sane incoming ``X-Request-ID`` (from a load balancer) or makes one, returns it in the
  response header and binds it for every log line of the request (:mod:`rathaus.core.logging`);
- writes one access line (``rathaus.access``): method, route template, status, duration,
  tenant; never the path's query string or a body;
- counts the request in the metrics with the route *template* as label, never the raw path (a
  label per case id would grow without bound).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rathaus.core import metrics
from rathaus.core.config import Settings
from rathaus.core.errors import RathausError
from rathaus.core.logging import (
    REQUEST_ID_HEADER,
    LogContext,
    bind,
    clean_request_id,
    new_request_id,
)

access_log = logging.getLogger("rathaus.access")
log = logging.getLogger(__name__)

UNMATCHED = "unmatched"
# Probes and scrapes come every few seconds: their access lines are DEBUG, not INFO.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
FORWARDING_HEADERS = ("x-forwarded-for", "x-real-ip", "forwarded")


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/vorgaenge/{case_id}``), the mount path of a
    mounted app (``/static``), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _tenant_of(scope: Scope) -> int | None:
    """The logged-in user's tenant, once ``deps.get_web_session`` has put it in the state."""
    auth = (scope.get("state") or {}).get("auth")
    if auth is None:
        return None
    return getattr(auth[1], "tenant_id", None)


class RequestContextMiddleware:
    """Request id, access log line and HTTP metrics (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = clean_request_id(value.decode("latin-1"))
                break
        request_id = incoming or new_request_id()
        # Not reset afterwards on purpose: the app's error handler for unexpected exceptions
        # runs outside this middleware (in Starlette's ServerErrorMiddleware) and must still
        # log the request id. Each request runs in its own task, so nothing leaks.
        bind(LogContext(request_id=request_id, tenant_resolver=lambda: _tenant_of(scope)))
        header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *(h for h in message["headers"] if h[0].lower() != header[0]),
                    header,
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            status = 500
            self._count_exception(scope, exc)
            raise
        finally:
            self._finish(scope, status, time.perf_counter() - started)

    @staticmethod
    def _count_exception(scope: Scope, exc: Exception) -> None:
        try:
            metrics.observe_http_exception(
                method=scope["method"], route=route_template(scope), exception=exc
            )
        except Exception:  # counting must never hide the real error
            log.warning("HTTP-Fehler konnte nicht gezählt werden.", exc_info=True)

    @staticmethod
    def _finish(scope: Scope, status: int, seconds: float) -> None:
        method, route = scope["method"], route_template(scope)
        try:
            metrics.observe_http(method=method, route=route, status=status, seconds=seconds)
        except Exception:
            log.warning("HTTP-Anfrage konnte nicht gezählt werden.", exc_info=True)
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        if access_log.isEnabledFor(level):
            access_log.log(
                level,
                "%s %s %s",
                method,
                route,
                status,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )


def install(app: Any) -> None:
    """Register the middleware (outermost of the app's own middleware) and ``/metrics``."""
    app.add_middleware(RequestContextMiddleware)
    app.include_router(router)


# --- /metrics -----------------------------------------------------------------------------------

router = APIRouter(tags=["Betrieb"])

DENIED = (
    "Die Metriken sind nur direkt von den erlaubten Adressen (RATHAUS_METRICS__ALLOWED_NETWORKS) "
    "oder mit dem Token aus RATHAUS_METRICS__TOKEN abrufbar (Kopfzeile "
    "„Authorization: Bearer …“). Über einen Reverse-Proxy ist immer das Token nötig."
)


def _has_token(request: Request, settings: Settings) -> bool:
    token = settings.metrics.token
    if token is None:
        return False
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.get_secret_value().encode()
    )


def _from_allowed_address(request: Request, settings: Settings) -> bool:
    """A direct request (no proxy header) from an allowed network.

    A request that came through a reverse proxy on the same machine would otherwise look like
    it came from 127.0.0.1; it carries a forwarding header, so it needs the token.
    """
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(
        address in ipaddress.ip_network(net, strict=False)
        for net in settings.metrics.allowed_networks
    )


class QueueCollector:
    """Queue depth at scrape time, from the queue itself (SQLite file or Redis), so it is the
    same for every process and needs no bookkeeping."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        from rathaus.jobs import check_queue

        labels = ["backend", "queue"]
        values = [self.settings.queue.backend, self.settings.queue.name]
        up = GaugeMetricFamily(
            "rathaus_queue_up", "1, wenn die Warteschlange erreichbar ist.", labels=labels
        )
        depth = GaugeMetricFamily(
            "rathaus_queue_jobs",
            "Aufträge in der Warteschlange: wartend (pending) oder geplant (scheduled).",
            labels=[*labels, "state"],
        )
        try:
            pending, scheduled = check_queue(self.settings)
        except RathausError:
            up.add_metric(values, 0)
            yield up
            return
        up.add_metric(values, 1)
        depth.add_metric([*values, "pending"], pending)
        depth.add_metric([*values, "scheduled"], scheduled)
        yield up
        yield depth


@router.get(
    "/metrics",
    summary="Prometheus-Metriken (nur erlaubte Adressen oder mit Token)",
    response_class=Response,
)
def prometheus_metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if not settings.metrics.enabled:
        raise HTTPException(status_code=404)
    if not (_has_token(request, settings) or _from_allowed_address(request, settings)):
        return JSONResponse(
            {"detail": DENIED},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body, content_type = metrics.exposition((QueueCollector(settings),))
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
