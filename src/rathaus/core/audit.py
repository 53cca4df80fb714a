"""Audit events as small dataclasses, appended to a per-tenant hash chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core.models import AuditEvent, utcnow

GENESIS = "0" * 64


@dataclass(frozen=True)
class Event:
    """Something worth recording: who did what to which object, and when."""

    kind: str
    actor: str
    tenant_id: int | None = None
    subject: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    at: dt.datetime = field(default_factory=utcnow)


def _canonical(event: Event, prev_hash: str) -> bytes:
    at = event.at if event.at.tzinfo else event.at.replace(tzinfo=dt.UTC)
    payload = {
        "kind": event.kind,
        "actor": event.actor,
        "tenant_id": event.tenant_id,
        "subject": event.subject,
        "data": event.data,
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "prev": prev_hash,
    }
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()


def record(session: Session, event: Event) -> AuditEvent:
    """Append ``event`` to its tenant's chain (the previous row's hash is part of this one)."""
    last = session.scalar(
        select(AuditEvent.hash)
        .where(
            AuditEvent.tenant_id.is_(None)
            if event.tenant_id is None
            else AuditEvent.tenant_id == event.tenant_id
        )
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
        hash=hashlib.sha256(_canonical(event, prev_hash)).hexdigest(),
    )
    session.add(row)
    session.flush()
    return row


def verify_chain(session: Session, tenant_id: int | None) -> AuditEvent | None:
    """The first row whose hash does not match its content and predecessor, or ``None``."""
    prev_hash = GENESIS
    rows = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.tenant_id.is_(None)
            if tenant_id is None
            else AuditEvent.tenant_id == tenant_id
        )
        .order_by(AuditEvent.id)
    )
    for row in rows:
        event = Event(
            kind=row.kind,
            actor=row.actor,
            tenant_id=row.tenant_id,
            subject=row.subject,
            data=row.data,
            at=row.created_at,
        )
        expected = hashlib.sha256(_canonical(event, prev_hash)).hexdigest()
        if row.prev_hash != prev_hash or row.hash != expected:
            return row
        prev_hash = row.hash
    return None
