"""API keys per input channel: created once (shown once), stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import ApiKey, Tenant, utcnow

CHANNELS = ("api", "open311")
KEY_PREFIX = "rh_"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(
    session: Session, *, tenant: Tenant, channel: str, name: str, actor: str = "cli"
) -> tuple[str, ApiKey]:
    """A new key for ``channel``; the plain key is returned only here."""
    if channel not in CHANNELS:
        raise RathausError(f"Unbekannter Kanal „{channel}“. Erlaubt sind: {', '.join(CHANNELS)}.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        tenant_id=tenant.id,
        channel=channel,
        name=name.strip()[:200] or channel,
        prefix=key[:10],
        key_hash=_hash(key),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        audit.Event(
            kind="apikey_created",
            actor=actor,
            tenant_id=tenant.id,
            subject=f"apikey:{row.prefix}",
            data={"channel": channel, "name": row.name},
        ),
    )
    return key, row


def authenticate(session: Session, *, key: str | None, channel: str) -> ApiKey | None:
    """The active key row for ``key`` on ``channel``, or ``None``."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash(key)))
    if row is None or not row.is_active or row.channel != channel:
        return None
    row.last_used_at = utcnow()
    return row


def list_keys(session: Session, *, tenant: Tenant) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant.id).order_by(ApiKey.id))
    )


def revoke(session: Session, *, tenant: Tenant, prefix: str, actor: str = "cli") -> ApiKey:
    row = session.scalar(
        select(ApiKey).where(ApiKey.tenant_id == tenant.id, ApiKey.prefix == prefix)
    )
    if row is None:
        raise NotFoundError(f"Einen Schlüssel mit dem Anfang „{prefix}“ gibt es nicht.")
    row.is_active = False
    audit.record(
        session,
        audit.Event(
            kind="apikey_revoked", actor=actor, tenant_id=tenant.id, subject=f"apikey:{prefix}"
        ),
    )
    return row
