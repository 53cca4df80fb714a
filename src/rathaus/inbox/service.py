"""Receiving items: every channel hands over the exact bytes it got; one item is one case.

The original is stored unchanged (content hash); the same bytes received again are recognised
as a duplicate of the existing case, never a second case. The original is on disk for good
(``fsync``) before the transaction that records its case commits: :func:`receive` writes it and
the session syncs all originals of the transaction at once, right before the commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session, SessionTransaction

from rathaus.core.cases import add_working_days, lock_references, next_reference, record_event
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


# The stored document with the same bytes (built once: every item asks).
_SAME_BYTES = select(Document).where(
    Document.tenant_id == bindparam("tenant_id"), Document.sha256 == bindparam("sha256")
)


def receive(
    session: Session, *, tenant: Tenant, item: IncomingItem, store: OriginalStore
) -> Received:
    """Store the original and create the case (status ``neu``), or find the existing one."""
    stored = store.put(tenant.id, item.original, durable=False)
    sync_before_commit(session, store, stored.relative_path)
    # The duplicate check and the Aktenzeichen under one lock: a parallel receipt of the same
    # bytes, or of any item of the tenant, waits until this transaction ends instead of
    # reading the same state and failing on a unique constraint (see lock_references).
    lock_references(session, tenant_id=tenant.id)
    existing = session.scalar(_SAME_BYTES, {"tenant_id": tenant.id, "sha256": stored.sha256})
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


_UNSYNCED = "rathaus_unsynced_originals"


def sync_before_commit(session: Session, store: OriginalStore, relative_path: str) -> None:
    """Have ``session`` make the stored original durable before its transaction commits (all
    originals of the transaction together, see :meth:`OriginalStore.make_durable`). If that
    fails, the commit fails with the German :class:`StorageError` and records nothing."""
    pending: dict[str, tuple[OriginalStore, set[str]]] = session.info.setdefault(_UNSYNCED, {})
    pending.setdefault(str(store.root), (store, set()))[1].add(relative_path)
    if not event.contains(session, "before_commit", _sync_originals):
        event.listen(session, "before_commit", _sync_originals)
        event.listen(session, "after_soft_rollback", _forget_originals)


def _sync_originals(session: Session) -> None:
    if session.in_nested_transaction():
        return  # releasing a savepoint: the transaction commits later
    pending = session.info.get(_UNSYNCED) or {}
    for store, paths in pending.values():
        store.make_durable(paths)
    session.info.pop(_UNSYNCED, None)


def _forget_originals(session: Session, previous: SessionTransaction) -> None:
    # Only when the whole transaction is rolled back was nothing recorded (then its files need
    # no sync, and may be gone); after a savepoint, the rest of the transaction still counts.
    if previous.parent is None:
        session.info.pop(_UNSYNCED, None)
