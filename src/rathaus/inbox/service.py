"""Receiving items: every channel hands over the exact bytes it got; one item is one case.

The original is stored unchanged (content hash); the same bytes received again are recognised
as a duplicate of the existing case, never a second case.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core.cases import add_working_days, next_reference, record_event
from rathaus.core.models import Case, CaseStatus, Document, Message, Service, Tenant, utcnow
from rathaus.core.storage import OriginalStore


@dataclass
class IncomingItem:
    """What a channel received, before any AI step."""

    channel: str
    original: bytes
    filename: str
    media_type: str
    subject: str = ""
    body: str = ""
    sender_name: str = ""
    sender_contact: str = ""
    address: str = ""
    latitude: float | None = None
    longitude: float | None = None
    service: Service | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    received_at: dt.datetime | None = None


@dataclass(frozen=True)
class Received:
    case: Case
    document: Document
    duplicate: bool


def receive(
    session: Session, *, tenant: Tenant, item: IncomingItem, store: OriginalStore
) -> Received:
    """Store the original and create the case (status ``neu``), or find the existing one."""
    stored = store.put(tenant.id, item.original)
    existing = session.scalar(
        select(Document).where(Document.tenant_id == tenant.id, Document.sha256 == stored.sha256)
    )
    if existing is not None and existing.case is not None:
        return Received(case=existing.case, document=existing, duplicate=True)
    received_at = item.received_at or utcnow()
    case = Case(
        tenant_id=tenant.id,
        reference=next_reference(
            session, tenant_id=tenant.id, prefix=tenant.reference_prefix, year=received_at.year
        ),
        subject=(item.subject or item.body.strip().split("\n", 1)[0])[:300],
        status=CaseStatus.NEU,
        channel=item.channel,
        sender_name=item.sender_name[:200],
        sender_contact=item.sender_contact[:300],
        address=item.address[:300],
        latitude=item.latitude,
        longitude=item.longitude,
        service_id=item.service.id if item.service else None,
        fields=dict(item.fields),
        received_at=received_at,
        due_at=(
            add_working_days(received_at, item.service.sla_working_days, tenant.land)
            if item.service
            else None
        ),
    )
    session.add(case)
    session.flush()
    document = existing or Document(tenant_id=tenant.id, sha256=stored.sha256)
    document.case_id = case.id
    document.filename = item.filename[:300]
    document.media_type = item.media_type[:120]
    document.size = stored.size
    document.storage_path = stored.relative_path
    session.add(document)
    session.add(
        Message(
            tenant_id=tenant.id,
            case_id=case.id,
            direction="in",
            channel=item.channel,
            sender=", ".join(p for p in (item.sender_name, item.sender_contact) if p)[:300],
            subject=case.subject,
            body=item.body,
            created_at=received_at,
        )
    )
    record_event(
        session,
        case,
        kind="created",
        activity="Eingang erfasst",
        actor=None,
        to_status=CaseStatus.NEU.value,
        data={"channel": item.channel, "sha256": stored.sha256},
        at=received_at,
    )
    session.flush()
    return Received(case=case, document=document, duplicate=False)
