"""Password hashing (argon2), server-side login sessions and CSRF tokens (used by web and CLI)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from rathaus.core.db import EngineCache
from rathaus.core.models import User, WebSession, utcnow

log = logging.getLogger(__name__)

_hasher = PasswordHasher()
# Verifying against this keeps the time of a login with an unknown user name comparable.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

SESSION_COOKIE = "rathaus_session"
LOGIN_CSRF_COOKIE = "rathaus_login_csrf"
# "Last seen" of a session is written at most this often (not on every request); the idle
# timeout therefore ends a session between session_idle_s - 60 s and session_idle_s after its
# last request.
TOUCH_EVERY_S = 60

# Why no session was found (SessionCheck.reason).
NO_SESSION, EXPIRED, IDLE = "fehlt", "abgelaufen", "inaktiv"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(
    session: Session, user: User, *, max_age_s: int, user_agent: str = ""
) -> tuple[str, WebSession]:
    """A new login session; returns the cookie token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=_token_hash(token),
        user_id=user.id,
        tenant_id=user.tenant_id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=utcnow() + dt.timedelta(seconds=max_age_s),
        last_seen_at=utcnow(),
        user_agent=user_agent[:300],
    )
    session.add(row)
    user.last_login_at = utcnow()
    session.flush()
    return token, row


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# Side writes (a session's "last seen") on PostgreSQL, see _write_apart.
_APART_POOLS = EngineCache(pool_size=1, max_overflow=2)


def _write_apart(session: Session, statement: Any) -> None:
    """Run one small write in a short transaction of its own, committed at once.

    The request's own transaction may be rolled back (a refused login, an error page) and may
    last long (a model call); holding SQLite's write lock through it for a "last seen" would
    block every other writer. On PostgreSQL the write takes a connection from a small pool of
    its own: taken from the request's pool, every connection could be held by a request waiting
    for one more (the deadlock the rate-limit counters once had under load). A failure is
    logged, never the request's problem."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        bind = _APART_POOLS.get(bind.engine.url.render_as_string(hide_password=False))
    try:
        with Session(bind) as own, own.begin():
            own.execute(statement)
    except SQLAlchemyError:
        log.warning("Sitzungsdaten konnten nicht geschrieben werden", exc_info=True)


@dataclass(frozen=True)
class SessionCheck:
    """The outcome of :func:`check_session`: the session and user, or why there is none."""

    found: tuple[WebSession, User] | None
    reason: str = ""


def check_session(
    session: Session, token: str | None, *, idle_s: int, now: dt.datetime | None = None
) -> SessionCheck:
    """The live session and its active user for a cookie token, or the reason for none.

    A session ends at ``expires_at`` (absolute lifetime) and after ``idle_s`` seconds without
    a request (idle timeout, ASVS 3.3.2); an ended session's row is deleted. A live session's
    ``last_seen_at`` is moved on at most every :data:`TOUCH_EVERY_S` seconds."""
    if not token or len(token) > 200:
        return SessionCheck(None, NO_SESSION)
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _token_hash(token)))
    if row is None:
        return SessionCheck(None, NO_SESSION)
    now = now or utcnow()
    last_seen = _aware(row.last_seen_at or row.created_at)
    reason = ""
    if _aware(row.expires_at) < now:
        reason = EXPIRED
    elif last_seen + dt.timedelta(seconds=idle_s) < now:
        reason = IDLE
    if reason:
        _write_apart(session, delete(WebSession).where(WebSession.id == row.id))
        return SessionCheck(None, reason)
    user = session.get(User, row.user_id)
    if user is None or not user.is_active or user.tenant_id != row.tenant_id:
        return SessionCheck(None, NO_SESSION)
    if (now - last_seen).total_seconds() >= TOUCH_EVERY_S:
        _write_apart(
            session,
            update(WebSession).where(WebSession.id == row.id).values(last_seen_at=now),
        )
        set_committed_value(row, "last_seen_at", now)
    return SessionCheck((row, user))


def lookup_session(
    session: Session, token: str | None, *, idle_s: int
) -> tuple[WebSession, User] | None:
    """The live session and its active user for a cookie token, or ``None``
    (see :func:`check_session`)."""
    return check_session(session, token, idle_s=idle_s).found


def sessions_of(session: Session, user_id: int, *, idle_s: int) -> list[WebSession]:
    """The user's live sessions (neither expired nor idle too long), newest first."""
    now = utcnow()
    rows = session.scalars(
        select(WebSession)
        .where(WebSession.user_id == user_id, WebSession.expires_at > now)
        .order_by(WebSession.created_at.desc(), WebSession.id.desc())
    )
    idle = dt.timedelta(seconds=idle_s)
    return [r for r in rows if _aware(r.last_seen_at or r.created_at) + idle >= now]


def session_label(row: WebSession) -> str:
    """A short, stable name of a session for pages (never its token or token hash)."""
    return hashlib.sha256(f"sitzung:{row.token_hash}".encode()).hexdigest()[:8]


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


def end_all_sessions(session: Session, user_id: int) -> None:
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
