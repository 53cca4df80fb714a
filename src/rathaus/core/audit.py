"""Audit events as small dataclasses, appended to a per-tenant hash chain.

Each row's ``hash`` is the SHA-256 of :func:`canonical` (its content plus the previous row's
hash), so changing, deleting or reordering a row breaks the chain from there on. The chain of
one tenant (or the tenant-less system chain) is checked by :func:`verify`, which streams the
rows and copes with hundreds of thousands of them. The triggers of migration 0006 refuse
UPDATE and DELETE on ``audit_events`` in the database itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from rathaus.core.models import AuditEvent, utcnow

GENESIS = "0" * 64
STREAM_BATCH = 5000
# First key of the PostgreSQL advisory locks that serialise appends to a chain ("AUDI").
CHAIN_LOCK_SPACE = 0x41554449


@dataclass(frozen=True)
class Event:
    """Something worth recording: who did what to which object, and when."""

    kind: str
    actor: str
    tenant_id: int | None = None
    subject: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    at: dt.datetime = field(default_factory=utcnow)


def timestamp(at: dt.datetime) -> str:
    """The time as it enters the hash: UTC, ISO 8601 with microseconds (naive = UTC)."""
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical_fields(
    *,
    kind: str,
    actor: str,
    tenant_id: int | None,
    subject: str,
    data: Any,
    at: str,
    prev: str,
) -> bytes:
    """The exact bytes that are hashed (documented in docs/audit.md): a JSON object with the
    keys sorted, non-ASCII characters kept, default separators, encoded as UTF-8."""
    payload = {
        "kind": kind,
        "actor": actor,
        "tenant_id": tenant_id,
        "subject": subject,
        "data": data,
        "at": at,
        "prev": prev,
    }
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()


def canonical(event: Event, prev_hash: str) -> bytes:
    return canonical_fields(
        kind=event.kind,
        actor=event.actor,
        tenant_id=event.tenant_id,
        subject=event.subject,
        data=event.data,
        at=timestamp(event.at),
        prev=prev_hash,
    )


_canonical = canonical  # older name, kept for callers


def _chain_filter(tenant_id: int | None) -> Any:
    return (
        AuditEvent.tenant_id.is_(None) if tenant_id is None else AuditEvent.tenant_id == tenant_id
    )


def _lock_chain(session: Session, tenant_id: int | None) -> None:
    """Let one transaction at a time append to a chain, until it commits or rolls back.

    Why: two transactions that read the same last hash would both link to it and fork the
    chain (seen with several job workers on PostgreSQL). There a transaction-scoped advisory
    lock per chain serialises appends. On SQLite a session's reads may run before its write
    transaction begins (rathaus.core.sqlite_writers), so a write that changes nothing takes the
    file's write lock first: the last hash is then read inside it and no one can append between.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :chain)"),
            {"space": CHAIN_LOCK_SPACE, "chain": tenant_id or 0},
        )
    else:
        session.execute(text("UPDATE tenants SET id = id WHERE id = -1"))


def record(session: Session, event: Event) -> AuditEvent:
    """Append ``event`` to its tenant's chain (the previous row's hash is part of this one)."""
    _lock_chain(session, event.tenant_id)
    last = session.scalar(
        select(AuditEvent.hash)
        .where(_chain_filter(event.tenant_id))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    prev_hash = last or GENESIS
    row = AuditEvent(
        tenant_id=event.tenant_id,
        kind=event.kind,
        actor=event.actor,
        subject=event.subject,
        data=event.data,
        created_at=event.at,
        prev_hash=prev_hash,
        hash=hashlib.sha256(canonical(event, prev_hash)).hexdigest(),
    )
    session.add(row)
    session.flush()
    return row


# -- verification ----------------------------------------------------------------------------

COLUMNS = (
    AuditEvent.id,
    AuditEvent.tenant_id,
    AuditEvent.kind,
    AuditEvent.actor,
    AuditEvent.subject,
    AuditEvent.data,
    AuditEvent.created_at,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def stream_rows(session: Session, query: Any, batch: int = STREAM_BATCH) -> Iterator[Any]:
    """Rows of ``query`` (selecting :data:`COLUMNS`, ordered by id) fetched ``batch`` at a
    time with keyset paging, so memory stays flat for any number of rows."""
    last_id = 0
    while True:
        rows = session.execute(query.where(AuditEvent.id > last_id).limit(batch)).all()
        yield from rows
        if len(rows) < batch:
            return
        last_id = rows[-1].id


def expected_hash(row: Any) -> str:
    """The hash a row must carry given its content and its own ``prev_hash``."""
    return hashlib.sha256(
        canonical_fields(
            kind=row.kind,
            actor=row.actor,
            tenant_id=row.tenant_id,
            subject=row.subject,
            data=row.data,
            at=timestamp(row.created_at),
            prev=row.prev_hash,
        )
    ).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first entry of a chain that does not fit: its id, its position in the chain
    (1 = first), what it says, and whether its content or its link to the predecessor is wrong."""

    id: int
    position: int
    created_at: dt.datetime
    kind: str
    actor: str
    content_ok: bool
    link_ok: bool
    previous_id: int | None


@dataclass(frozen=True)
class ChainResult:
    tenant_id: int | None
    checked: int
    last_hash: str
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify(session: Session, tenant_id: int | None, *, batch: int = STREAM_BATCH) -> ChainResult:
    """Recompute the chain of ``tenant_id`` (``None``: the system chain) up to its first break."""
    query = select(*COLUMNS).where(_chain_filter(tenant_id)).order_by(AuditEvent.id)
    prev_hash, previous_id, checked = GENESIS, None, 0
    for row in stream_rows(session, query, batch):
        checked += 1
        content_ok = row.hash == expected_hash(row)
        link_ok = row.prev_hash == prev_hash
        if not (content_ok and link_ok):
            broken = Break(
                id=row.id,
                position=checked,
                created_at=row.created_at,
                kind=row.kind,
                actor=row.actor,
                content_ok=content_ok,
                link_ok=link_ok,
                previous_id=previous_id,
            )
            return ChainResult(tenant_id, checked, prev_hash, broken)
        prev_hash, previous_id = row.hash, row.id
    return ChainResult(tenant_id, checked, prev_hash, None)


def verify_chain(session: Session, tenant_id: int | None) -> AuditEvent | None:
    """The first row whose hash does not match its content and predecessor, or ``None``."""
    result = verify(session, tenant_id)
    return session.get(AuditEvent, result.broken.id) if result.broken else None
