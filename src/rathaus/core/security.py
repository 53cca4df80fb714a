"""Password hashing (argon2), server-side login sessions and CSRF tokens (used by web and CLI)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rathaus.core.models import User, WebSession, utcnow

_hasher = PasswordHasher()
# Verifying against this keeps the time of a login with an unknown user name comparable.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

SESSION_COOKIE = "rathaus_session"
LOGIN_CSRF_COOKIE = "rathaus_login_csrf"


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
        user_agent=user_agent[:300],
    )
    session.add(row)
    user.last_login_at = utcnow()
    session.flush()
    return token, row


def lookup_session(session: Session, token: str | None) -> tuple[WebSession, User] | None:
    """The live session and its active user for a cookie token, or ``None``."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _token_hash(token)))
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)
    if expires < utcnow():
        session.delete(row)
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active or user.tenant_id != row.tenant_id:
        return None
    return row, user


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


def end_all_sessions(session: Session, user_id: int) -> None:
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
