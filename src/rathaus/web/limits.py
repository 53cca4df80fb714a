"""Limits of the web app against floods and abuse: the size of a request body per route family,
and requests per window on public endpoints, counted where every web process sees them.

**Body size.** :class:`BodyLimitMiddleware` gives every request with a body the limit of its
route family (:func:`body_families`: uploads of the Posteingang, audio, table imports …; all
others ``limits.max_request_mb``). A declared ``Content-Length`` above the limit is answered
with 413 before the app runs and before a byte is read; a body sent without length (chunked)
is counted while the app reads it and stops with 413 as soon as it passes the limit. So no
route ever reads more than its limit (the form parser keeps file parts on disk, not in memory).
The route's own limits (per file, per field) still apply inside it.

**Rate.** :class:`RateLimiter` counts requests per rule, client and window with the atomic
counters of the quotas (:class:`rathaus.governance.quota.UsageCounter`): on PostgreSQL in the
table ``rate_limit_usage``, on a SQLite file in the sidecar file beside it. Every web process
(``web_workers``, several containers) counts in the same place, so the limit holds for the
installation, not per process. Clients are stored as a keyed hash (no IP address, no user
name). Where nothing can be shared (in-memory database) or the counter cannot be written
(database down), each process counts in its own memory instead: the limit is then per process,
but never off.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    delete,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateTable
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rathaus.assistant.ratelimit import SlidingWindowLimiter, client_key
from rathaus.core.config import Settings
from rathaus.core.models import RateLimitUsage
from rathaus.governance.quota import UsageCounter, shared_engine

log = logging.getLogger(__name__)

KB = 1024
MB = 1024 * 1024
# Multipart framing and the small form fields beside a file.
FORM_SLACK = 1 * MB

ErrorRenderer = Callable[[Request, int, str], Response]


# -- body size -----------------------------------------------------------------------------------


def size_text(n: int) -> str:
    """``65536`` → ``64 kB``, ``209715200`` → ``200 MB``."""
    return f"{n // MB} MB" if n >= MB else f"{max(1, n // KB)} kB"


def too_large_message(limit: int) -> str:
    return (
        f"Die Anfrage ist zu groß (höchstens {size_text(limit)}) und wurde nicht angenommen; "
        "es wurde nichts gespeichert. Bitte die Datei verkleinern (z. B. mit geringerer "
        "Auflösung scannen) oder in mehreren Teilen senden."
    )


class BodyTooLarge(StarletteHTTPException):
    """The request body passed its limit while it was read; rendered by the app's handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=too_large_message(limit))
        self.limit = limit


@dataclass(frozen=True)
class BodyFamily:
    """Routes whose path starts with one of ``prefixes`` take bodies up to ``max_bytes``."""

    label: str
    prefixes: tuple[str, ...]
    max_bytes: int


def body_families(settings: Settings) -> list[BodyFamily]:
    """The route families with a limit of their own (docs/limits.md lists them)."""
    from rathaus.web import insights_bookings, insights_forecast, insights_process, insights_winter

    uploads = settings.inbox.max_request_mb * MB
    audio = settings.writing.max_audio_mb * MB + FORM_SLACK
    return [
        BodyFamily("Anmeldung", ("/login",), 16 * KB),
        BodyFamily("Bürgerassistent", ("/api/v1/assistant/", "/assistent"), 256 * KB),
        BodyFamily("Open311", ("/open311/",), 64 * KB),
        BodyFamily(
            "Posteingang: Upload", ("/posteingang/hochladen", "/api/v1/inbox/items"), uploads
        ),
        BodyFamily("Wissensdatenbank: Import", ("/wissen/import",), uploads),
        BodyFamily(
            "Zusammenfassung", ("/texte/zusammenfassung", "/api/v1/texte/zusammenfassung"), uploads
        ),
        BodyFamily(
            "Aufnahmen (Transkription, Niederschrift)",
            (
                "/texte/transkription",
                "/api/v1/texte/transkription",
                "/texte/niederschriften",
                "/api/v1/texte/niederschriften",
            ),
            audio,
        ),
        BodyFamily(
            "Lagebild: Buchungen",
            ("/lagebild/buchungen", "/api/v1/lagebild/buchungen"),
            insights_bookings.MAX_UPLOAD_BYTES + FORM_SLACK,
        ),
        BodyFamily(
            "Lagebild: Prognose",
            ("/lagebild/prognose", "/api/v1/lagebild/prognose"),
            insights_forecast.MAX_UPLOAD_BYTES + FORM_SLACK,
        ),
        BodyFamily(
            "Lagebild: Prozesse",
            ("/lagebild/prozesse", "/api/v1/lagebild/prozesse"),
            insights_process.MAX_UPLOAD_BYTES + FORM_SLACK,
        ),
        BodyFamily(
            "Lagebild: Winterdienst",
            ("/lagebild/winterdienst", "/api/v1/lagebild/winterdienst"),
            2 * insights_winter.MAX_BYTES + FORM_SLACK,
        ),
    ]


class BodyLimits:
    """The limit of a path: its family's (the longest matching prefix), else the default."""

    def __init__(self, families: list[BodyFamily], default: int) -> None:
        self.default = default
        self._prefixes = sorted(
            ((prefix, family) for family in families for prefix in family.prefixes),
            key=lambda item: len(item[0]),
            reverse=True,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        return cls(body_families(settings), settings.limits.max_request_mb * MB)

    def family(self, path: str) -> BodyFamily | None:
        return next((family for prefix, family in self._prefixes if path.startswith(prefix)), None)

    def for_path(self, path: str) -> int:
        family = self.family(path)
        return family.max_bytes if family else self.default


def _declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    return int(value) if value is not None and value.isdigit() else None


class BodyLimitMiddleware:
    """Refuse request bodies over their route family's limit with 413 (see the module text).

    ``render_error`` draws the German answer (JSON for APIs, the error page for people). A body
    that passes the limit while the app reads it raises :class:`BodyTooLarge` in the app; the
    app's answer to that (or to anything else, once the limit is passed) is dropped and the
    413 drawn here is sent instead, so the answer is the same whatever the route does.
    """

    def __init__(self, app: ASGIApp, *, settings: Settings, render_error: ErrorRenderer) -> None:
        self.app = app
        self.limits = BodyLimits.from_settings(settings)
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body over the limit: the 413 below replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        log.warning(
            "Anfrage zu groß: %s %s (Grenze %s)", scope["method"], scope["path"], size_text(limit)
        )
        response = self.render_error(Request(scope, receive), 413, too_large_message(limit))
        # The rest of the body is never read: the connection is not kept for another request.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


# -- rate ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """At most ``limit`` counted requests per window of ``window_min`` minutes and client."""

    name: str
    limit: int
    window_min: int = 1

    @property
    def window_s(self) -> int:
        return self.window_min * 60


def rules(settings: Settings) -> dict[str, Rule]:
    """The rules of the public endpoints, by name (docs/limits.md)."""
    limits, per_minute = settings.limits, settings.assistant.rate_limit_per_minute
    found = [
        Rule("frage", per_minute),  # assistant: asking (API, page, widget)
        Rule("rueckmeldung", per_minute),  # assistant: feedback and hand-over
        Rule("open311", limits.open311_per_minute),
        Rule("anmeldung", limits.login_failures_per_minute),  # failed logins per address
        Rule("anmeldung-konto", limits.login_failures_per_account, limits.login_lock_minutes),
        Rule("eingang-api", limits.api_per_minute),  # per API key, or per address without one
    ]
    return {rule.name: rule for rule in found}


# Where the counters live on SQLite: the sidecar file of the quotas, in a table of its own.
_SIDECAR_METADATA = MetaData()
SIDECAR_RATES = Table(
    "rate_limit_usage",
    _SIDECAR_METADATA,
    Column("bucket", BigInteger, primary_key=True, autoincrement=False),
    Column("minute", Integer, primary_key=True, autoincrement=False),
    Column("requests", Integer, nullable=False, default=0),
    Column("tokens", Integer, nullable=False, default=0),
    Column("refused", Integer, nullable=False, default=0),
)
KEEP_MINUTES = 60  # longer than the longest window (limits.login_lock_minutes ≤ 60)


class RateLimiter:
    """Counts requests per rule and client (see the module text); thread-safe.

    :meth:`hit` counts a request and says whether it may go on; :meth:`wait` only looks and
    :meth:`record` only counts, for rules that count failures (logins). All three answer with
    the seconds until the client may go on (0: now), for ``Retry-After``.
    """

    def __init__(
        self,
        engine: Engine | None,
        secret: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret.encode("utf-8")
        self._clock = clock
        self._lock = threading.Lock()
        self._local: dict[str, SlidingWindowLimiter] = {}
        self._pruned_minute = 0
        self._warned_minute = 0
        self.counter: UsageCounter | None = None
        shared = shared_engine(engine) if engine is not None else None
        if shared is not None:
            sidecar = shared.dialect.name == "sqlite"
            table = SIDECAR_RATES if sidecar else RateLimitUsage.__table__
            if sidecar:
                with shared.begin() as conn:
                    conn.execute(CreateTable(SIDECAR_RATES, if_not_exists=True))
            self.counter = UsageCounter(shared, table, key_column="bucket")  # type: ignore[arg-type]

    @property
    def shared(self) -> bool:
        """True when every process counts in the same place."""
        return self.counter is not None

    def bucket(self, rule: Rule, client: str) -> int:
        """A keyed hash of rule and client as a signed 64-bit number (the counter's key)."""
        digest = hmac.new(self._secret, f"{rule.name}\0{client}".encode(), hashlib.sha256)
        return int.from_bytes(digest.digest()[:8], "big", signed=True)

    def _window(self, rule: Rule) -> tuple[int, int]:
        """The current window's first minute and the seconds until it ends."""
        now = self._clock()
        start = int(now // rule.window_s) * rule.window_s
        return start // 60, max(1, math.ceil(start + rule.window_s - now))

    def _fallback(self, rule: Rule) -> SlidingWindowLimiter:
        with self._lock:
            limiter = self._local.get(rule.name)
            if limiter is None or limiter.limit != rule.limit:
                limiter = SlidingWindowLimiter(rule.limit, float(rule.window_s))
                self._local[rule.name] = limiter
            return limiter

    def _shared(
        self, call: Callable[[UsageCounter], int], rule: Rule, local: Callable[[], int]
    ) -> int:
        if self.counter is not None:
            try:
                return call(self.counter)
            except (SQLAlchemyError, OSError):
                minute = int(self._clock() // 60)
                if minute != self._warned_minute:  # once a minute, not once a request
                    self._warned_minute = minute
                    log.warning(
                        "Zähler der Ratenbegrenzung nicht erreichbar (Regel „%s“); bis er es "
                        "wieder ist, zählt jeder Prozess für sich",
                        rule.name,
                        exc_info=True,
                    )
        return local()

    def hit(self, rule: Rule, client: str) -> int:
        """Count one request of ``client``; 0 if it may go on, else seconds to wait."""
        bucket = self.bucket(rule, client)
        minute, left = self._window(rule)

        def shared(counter: UsageCounter) -> int:
            self._prune(counter, minute)
            usage = counter.admit(bucket, minute, requests=rule.limit, tokens=None)
            return 0 if usage is not None else left

        return self._shared(shared, rule, lambda: self._fallback(rule).hit(str(bucket)))

    def wait(self, rule: Rule, client: str) -> int:
        """Seconds until ``client`` may go on (0: now), counting nothing."""
        bucket = self.bucket(rule, client)
        minute, left = self._window(rule)

        def shared(counter: UsageCounter) -> int:
            return left if counter.minute(bucket, minute).requests >= rule.limit else 0

        return self._shared(shared, rule, lambda: self._fallback(rule).wait(str(bucket)))

    def record(self, rule: Rule, client: str) -> int:
        """Count one event of ``client`` whatever the limit; then as :meth:`wait`."""
        bucket = self.bucket(rule, client)
        minute, left = self._window(rule)

        def shared(counter: UsageCounter) -> int:
            self._prune(counter, minute)
            usage = counter.admit(bucket, minute, requests=None, tokens=None)
            return left if usage is not None and usage.requests >= rule.limit else 0

        def local() -> int:
            limiter = self._fallback(rule)
            limiter.record(str(bucket))
            return limiter.wait(str(bucket))

        return self._shared(shared, rule, local)

    def _prune(self, counter: UsageCounter, minute: int) -> None:
        """Once a minute per process: drop every window that ended an hour ago."""
        if minute <= self._pruned_minute:
            return
        self._pruned_minute = minute
        with counter.engine.begin() as conn:
            conn.execute(
                delete(counter.table).where(counter.table.c.minute < minute - KEEP_MINUTES)
            )


# -- wiring --------------------------------------------------------------------------------------

_lock = threading.Lock()


def rate_limiter(app: Any) -> RateLimiter:
    """The app's limiter, built on first use from its database and secret key."""
    limiter = getattr(app.state, "rate_limiter", None)
    if limiter is None:
        with _lock:
            limiter = getattr(app.state, "rate_limiter", None)
            if limiter is None:
                settings: Settings = app.state.settings
                try:
                    engine = app.state.db.engine
                    limiter = RateLimiter(engine, settings.secret_key.get_secret_value())
                except (SQLAlchemyError, OSError):
                    log.warning("Ratenbegrenzung ohne gemeinsamen Zähler", exc_info=True)
                    limiter = RateLimiter(None, settings.secret_key.get_secret_value())
                app.state.rate_limiter = limiter
    return limiter


def rule_for(request: Request, name: str) -> Rule:
    return rules(request.app.state.settings)[name]


def client_address(request: Request) -> str:
    """The client's rate-limit key: its address (an IPv6 address's /64 network)."""
    return client_key(request.client.host if request.client else None)


def seconds_text(n: int) -> str:
    if n >= 120:
        return f"{math.ceil(n / 60)} Minuten"
    return "1 Sekunde" if n == 1 else f"{n} Sekunden"


def too_many_message(seconds: int) -> str:
    return (
        "Sie haben in kurzer Zeit sehr viele Anfragen gestellt. Bitte warten Sie "
        f"{seconds_text(seconds)} und versuchen Sie es dann erneut."
    )


class TooManyRequests(StarletteHTTPException):
    """429 with a German text and ``Retry-After``; rendered by the app's handler."""

    def __init__(self, seconds: int, message: str | None = None) -> None:
        super().__init__(
            429, detail=message or too_many_message(seconds), headers={"Retry-After": str(seconds)}
        )
        self.seconds = seconds


def limit_by_address(name: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency that counts each request of the client's address under rule ``name`` and
    refuses it with :class:`TooManyRequests` over the limit (a router's ``dependencies``)."""

    async def check(request: Request) -> None:
        seconds = await run_in_threadpool(
            rate_limiter(request.app).hit, rule_for(request, name), client_address(request)
        )
        if seconds:
            raise TooManyRequests(seconds)

    return check
