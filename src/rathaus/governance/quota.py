"""Per-tenant quotas for language-model calls (requests and tokens per minute), counted in one
place that every web and worker process shares.

The gateway (:mod:`rathaus.governance.gateway`) asks :func:`admit` before each language-model
call of a tenant and settles the call's tokens afterwards (:meth:`Ticket.settle`). A call that
would exceed the tenant's requests per minute, or that starts in a minute whose token budget is
already used up, is refused with :class:`QuotaExceededError` (a ``ModelUnavailableError``, so
callers fall back as for a server that is down) and nothing is sent.

Where the counters live, and why there:

* **PostgreSQL** (server mode): the table ``tenant_usage`` of the main database, one row per
  tenant and minute, raised by one atomic ``INSERT … ON CONFLICT DO UPDATE … WHERE`` in a short
  transaction of its own. The database is already shared by every process and backed up; Redis
  would be a second place whose outage decides about model calls.
* **SQLite** (embedded mode): the same table in a file of its own beside the database
  (``rathaus-kontingente.db`` for ``rathaus.db``). A caller may hold the main file's single
  write lock through a model call (the triage pipeline writes the case, then asks the model for
  a reply draft); a counter in that file would wait for the lock its own caller holds.

Counting never blocks a call for its own sake: if the counter cannot be written (database
down), the call goes ahead and a warning is logged; the quota protects shared capacity, the
policy check (which needs no counter) protects data. Embedding calls are not counted: they are
cheap, and retrieval, routing and the extractive fallback all need them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    and_,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable

from rathaus.core.config import Settings
from rathaus.core.db import EngineCache
from rathaus.core.metrics import observe_quota_refusal
from rathaus.core.models import Tenant, TenantSettings, TenantUsage
from rathaus.governance.policy import ModelRefusedError

log = logging.getLogger(__name__)

# Per-minute rows are kept this long (for `rathaus mandanten zeigen`), then pruned.
KEEP_MINUTES = 24 * 60
SIDECAR_SUFFIX = "-kontingente"
QUOTA_COMMAND = "rathaus mandanten kontingent"

# The time source; a test replaces it to stay inside one minute window.
clock: Callable[[], float] = time.time


class QuotaExceededError(ModelRefusedError):
    """The tenant's requests or tokens per minute are used up; nothing was sent."""

    def __init__(self, message: str, *, retry_after_s: int, limit: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.limit = limit  # "anfragen" or "tokens"


class TenantLockedError(ModelRefusedError):
    """The tenant is locked (``rathaus mandanten sperren``): no model call for it."""


@dataclass(frozen=True)
class TenantRules:
    """What the gateway needs to know about a call's tenant."""

    tenant_id: int
    slug: str
    name: str
    active: bool
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    policies: dict[str, list[str]] = field(default_factory=dict)

    @property
    def limited(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None


def _rules_query(tenant_id: int) -> Any:
    return (
        select(
            Tenant.slug,
            Tenant.name,
            Tenant.is_active,
            TenantSettings.requests_per_minute,
            TenantSettings.tokens_per_minute,
            TenantSettings.model_policies,
        )
        .outerjoin(TenantSettings, TenantSettings.tenant_id == Tenant.id)
        .where(Tenant.id == tenant_id)
    )


def tenant_rules(session: Session, tenant_id: int) -> TenantRules | None:
    """The tenant's state, quota and policy overrides; ``None`` if there is no such tenant."""
    row = session.execute(_rules_query(tenant_id)).one_or_none()
    if row is None:
        return None
    return TenantRules(
        tenant_id=tenant_id,
        slug=row.slug,
        name=row.name,
        active=bool(row.is_active),
        requests_per_minute=row.requests_per_minute,
        tokens_per_minute=row.tokens_per_minute,
        policies=dict(row.model_policies or {}),
    )


_SETTINGS_ENGINES = EngineCache()


def _settings_engine(settings: Settings) -> Engine | None:
    """The configured database, for calls whose scope names a tenant but brings no database;
    ``None`` for an embedded installation whose database file does not exist (yet)."""
    url = settings.effective_database_url
    if settings.is_sqlite and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return _SETTINGS_ENGINES.get(url)


def lookup(
    tenant_id: int | None, *, session: Session | None, database: Any, settings: Settings
) -> tuple[TenantRules | None, Engine | None]:
    """The rules of the call's tenant and the engine of the database they came from.

    Read in the caller's session when the scope has one (without flushing it: a flush could take
    SQLite's write lock before a long model call), else in a session of ``database``, else in
    the configured database. ``(None, None)`` for a call without a tenant.
    """
    if tenant_id is None:
        return None, None
    if session is not None:
        with session.no_autoflush:
            rules = tenant_rules(session, tenant_id)
        bind = session.get_bind()
        return rules, getattr(bind, "engine", bind)
    if database is not None:
        with database.session() as own:
            return tenant_rules(own, tenant_id), database.engine
    engine = _settings_engine(settings)
    if engine is None:
        return None, None
    with Session(engine) as own:
        return tenant_rules(own, tenant_id), engine


# -- the counters -------------------------------------------------------------------------------

_SIDECAR_METADATA = MetaData()
# The embedded mode's counter table: as ``tenant_usage``, without the foreign key (the file
# has no ``tenants`` table).
SIDECAR_USAGE = Table(
    "tenant_usage",
    _SIDECAR_METADATA,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("minute", Integer, primary_key=True, autoincrement=False),
    Column("requests", Integer, nullable=False, default=0),
    Column("tokens", Integer, nullable=False, default=0),
    Column("refused", Integer, nullable=False, default=0),
)


@dataclass(frozen=True)
class Usage:
    """Counts of one tenant: in one minute, or summed over several."""

    requests: int = 0
    tokens: int = 0
    refused: int = 0


class UsageCounter:
    """Atomic per-key, per-minute counters in ``table`` of ``engine`` (own transactions).

    The key is the column ``key_column``: a tenant's id for the quotas here, a hashed client
    for the rate limits of public endpoints (:mod:`rathaus.web.limits`)."""

    def __init__(self, engine: Engine, table: Table, key_column: str = "tenant_id") -> None:
        self.engine = engine
        self.table = table
        self.key = table.c[key_column]
        self.postgres = engine.dialect.name == "postgresql"
        self._insert = pg_insert if self.postgres else sqlite_insert

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A short transaction of its own. On PostgreSQL it does not wait for the disk: a
        counter lost in a crash costs nothing, the wait would cost every model call."""
        with self.engine.begin() as conn:
            if self.postgres:
                conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
            yield conn

    def _upsert(self, tenant_id: int, minute: int, **first: int) -> Any:
        t = self.table
        values = {self.key.name: tenant_id, "minute": minute, "requests": 0, "tokens": 0,
                  "refused": 0} | first  # fmt: skip
        return self._insert(t).values(**values)

    def admit(
        self, tenant_id: int, minute: int, *, requests: int | None, tokens: int | None
    ) -> Usage | None:
        """Count one request if the minute's counts are below the limits (``None``: no limit);
        the counts after it, or ``None`` when refused (then nothing was counted)."""
        t = self.table
        stmt = self._upsert(tenant_id, minute, requests=1)
        below = [
            *([t.c.requests < requests] if requests is not None else []),
            *([t.c.tokens < tokens] if tokens is not None else []),
        ]
        stmt = stmt.on_conflict_do_update(
            index_elements=[self.key, t.c.minute],
            set_={"requests": t.c.requests + 1},
            where=and_(*below) if below else None,
        ).returning(t.c.requests, t.c.tokens, t.c.refused)
        with self._write() as conn:
            row = conn.execute(stmt).one_or_none()
            if row is not None and row.requests == 1:
                # The tenant's first call in this minute: drop its rows older than a day.
                conn.execute(
                    delete(t).where(self.key == tenant_id, t.c.minute < minute - KEEP_MINUTES)
                )
        return None if row is None else Usage(row.requests, row.tokens, row.refused)

    def refuse(self, tenant_id: int, minute: int) -> Usage:
        """Count one refused call; the minute's counts after it."""
        t = self.table
        stmt = (
            self._upsert(tenant_id, minute, refused=1)
            .on_conflict_do_update(
                index_elements=[self.key, t.c.minute], set_={"refused": t.c.refused + 1}
            )
            .returning(t.c.requests, t.c.tokens, t.c.refused)
        )
        with self._write() as conn:
            row = conn.execute(stmt).one()
        return Usage(row.requests, row.tokens, row.refused)

    def add_tokens(self, tenant_id: int, minute: int, tokens: int) -> None:
        t = self.table
        with self._write() as conn:
            conn.execute(
                update(t)
                .where(self.key == tenant_id, t.c.minute == minute)
                .values(tokens=t.c.tokens + tokens)
            )

    def minute(self, tenant_id: int, minute: int) -> Usage:
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.c.requests, t.c.tokens, t.c.refused).where(
                    self.key == tenant_id, t.c.minute == minute
                )
            ).one_or_none()
        return Usage() if row is None else Usage(row.requests, row.tokens, row.refused)

    def since(self, tenant_id: int, first_minute: int) -> Usage:
        """Counts summed from ``first_minute`` on."""
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    func.coalesce(func.sum(t.c.requests), 0),
                    func.coalesce(func.sum(t.c.tokens), 0),
                    func.coalesce(func.sum(t.c.refused), 0),
                ).where(self.key == tenant_id, t.c.minute >= first_minute)
            ).one()
        return Usage(int(row[0]), int(row[1]), int(row[2]))


def _create_usage_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(CreateTable(SIDECAR_USAGE, if_not_exists=True))


_SIDECARS = EngineCache(_create_usage_table)


def sidecar_path(database_file: Path) -> Path:
    """``…/rathaus.db`` → ``…/rathaus-kontingente.db``."""
    return database_file.with_name(f"{database_file.stem}{SIDECAR_SUFFIX}{database_file.suffix}")


def _sidecar_engine(database_file: Path) -> Engine:
    return _SIDECARS.get(f"sqlite:///{sidecar_path(database_file).resolve()}")


# The counters' own small pool on PostgreSQL. A request holds a connection of the main pool
# while it counts; if counting took a second connection from that same pool, a burst of
# requests would hold every connection while each waits for one more (a pool deadlock, seen
# under load as 30-second waits and 503s). Counting is one short statement, so a few
# connections per process suffice.
_COUNTER_POOLS = EngineCache(pool_size=1, max_overflow=4)


def shared_engine(engine: Engine) -> Engine | None:
    """Where counters beside the database of ``engine`` live: PostgreSQL itself (through a
    small pool of its own), the sidecar file of a SQLite file; ``None`` for an in-memory SQLite
    database (tests), which no other process could share anyway."""
    if engine.dialect.name == "postgresql":
        return _COUNTER_POOLS.get(engine.url.render_as_string(hide_password=False))
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return _sidecar_engine(Path(database))


def counter_for(engine: Engine) -> UsageCounter | None:
    """The counters that belong to the database of ``engine`` (see :func:`shared_engine`)."""
    shared = shared_engine(engine)
    if shared is None:
        return None
    if shared.dialect.name == "postgresql":
        return UsageCounter(shared, TenantUsage.__table__)  # type: ignore[arg-type]
    return UsageCounter(shared, SIDECAR_USAGE)


# -- admission ----------------------------------------------------------------------------------


def estimate_tokens(texts: Iterable[str]) -> int:
    """About four characters per token: for streamed answers and servers without ``usage``."""
    return sum(math.ceil(len(text) / 4) for text in texts)


def _seconds(n: int) -> str:
    return "1 Sekunde" if n == 1 else f"{n} Sekunden"


def refusal_message(rules: TenantRules, *, limit: str, retry_after_s: int) -> str:
    what = (
        f"höchstens {rules.requests_per_minute} Sprachmodell-Anfragen pro Minute"
        if limit == "anfragen"
        else f"höchstens {rules.tokens_per_minute} Tokens pro Minute"
    )
    return (
        f"Kontingent der Kommune „{rules.name}“ ausgeschöpft ({what}), bitte in "
        f"{_seconds(retry_after_s)} erneut versuchen. Es wurde nichts gesendet; ändern lässt "
        f"sich das Kontingent mit `{QUOTA_COMMAND} {rules.slug}`."
    )


def locked_message(rules: TenantRules) -> str:
    return (
        f"Die Kommune „{rules.name}“ ist gesperrt: es werden keine Modelle für sie aufgerufen. "
        f"Entsperren mit `rathaus mandanten entsperren {rules.slug}`."
    )


@dataclass
class Ticket:
    """An admitted call: its tokens are added to the minute it was admitted in."""

    counter: UsageCounter | None = None
    tenant_id: int = 0
    minute: int = 0
    settled: bool = False

    def settle(self, tokens: int) -> None:
        if self.counter is None or self.settled:
            return
        self.settled = True
        if tokens <= 0:
            return
        try:
            self.counter.add_tokens(self.tenant_id, self.minute, tokens)
        except SQLAlchemyError:
            log.warning("Tokens der Kommune %s nicht gezählt", self.tenant_id, exc_info=True)


FREE = Ticket()


@dataclass(frozen=True)
class Refusal:
    """A refused call: the error to raise, and whether it is the first refusal of its minute
    (only that one goes to the audit trail; every one is counted)."""

    error: QuotaExceededError
    first_in_minute: bool


def admit(rules: TenantRules, engine: Engine) -> Ticket | Refusal:
    """Count one language-model call of ``rules``' tenant in the counters of the database of
    ``engine``, or refuse it."""
    now = clock()
    minute = int(now // 60)
    try:
        counter = counter_for(engine)
        if counter is None:
            return FREE
        usage = counter.admit(
            rules.tenant_id,
            minute,
            requests=rules.requests_per_minute,
            tokens=rules.tokens_per_minute,
        )
        if usage is not None:
            return Ticket(counter, rules.tenant_id, minute)
        after = counter.refuse(rules.tenant_id, minute)
    except (SQLAlchemyError, OSError):
        log.warning(
            "Kontingent der Kommune %s nicht gezählt; der Aufruf geht ohne Zählung durch",
            rules.slug,
            exc_info=True,
        )
        return FREE
    rpm = rules.requests_per_minute
    limit = "anfragen" if rpm is not None and after.requests >= rpm else "tokens"
    retry = max(1, math.ceil(60 - now % 60))
    observe_quota_refusal(tenant=rules.slug, limit=limit)
    error = QuotaExceededError(
        refusal_message(rules, limit=limit, retry_after_s=retry), retry_after_s=retry, limit=limit
    )
    return Refusal(error, after.refused == 1)


def settle_stream(ticket: Ticket, prompt: Iterable[str], pieces: Iterable[str]) -> Iterator[str]:
    """``pieces`` passed through; when the stream ends (or is dropped), its estimated tokens
    (prompt and answer) are settled."""
    prompt_tokens = estimate_tokens(prompt)
    answer: list[str] = []
    try:
        for piece in pieces:
            answer.append(piece)
            yield piece
    finally:
        ticket.settle(prompt_tokens + estimate_tokens(answer))
