"""Cases (Vorgänge): the status machine, SLA clocks in working days, and the case event log."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, TypeVar

import holidays
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from rathaus.core import sqlite_writers
from rathaus.core.errors import InvalidTransitionError
from rathaus.core.models import Case, CaseEvent, CaseStatus, User, utcnow

S = CaseStatus
DateT = TypeVar("DateT", dt.date, dt.datetime)

# Which status may follow which. Re-routing (zugewiesen → zugewiesen) is an assignment, not a
# status change, and is recorded as its own event.
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    S.NEU: frozenset({S.TRIAGE, S.ZUGEWIESEN, S.ERLEDIGT}),
    S.TRIAGE: frozenset({S.ZUGEWIESEN, S.ERLEDIGT}),
    S.ZUGEWIESEN: frozenset({S.IN_BEARBEITUNG, S.TRIAGE, S.ERLEDIGT}),
    S.IN_BEARBEITUNG: frozenset({S.WARTET, S.ERLEDIGT, S.ZUGEWIESEN, S.TRIAGE}),
    S.WARTET: frozenset({S.IN_BEARBEITUNG, S.ERLEDIGT}),
    S.ERLEDIGT: frozenset({S.IN_BEARBEITUNG, S.ARCHIVIERT}),
    S.ARCHIVIERT: frozenset(),
}

STATUS_LABELS = {
    S.NEU: "Neu eingegangen",
    S.TRIAGE: "Zur Prüfung (Triage)",
    S.ZUGEWIESEN: "Zugewiesen",
    S.IN_BEARBEITUNG: "In Bearbeitung",
    S.WARTET: "Wartet auf Rückmeldung",
    S.ERLEDIGT: "Erledigt",
    S.ARCHIVIERT: "Archiviert",
}

OPEN_STATUSES = frozenset({S.NEU, S.TRIAGE, S.ZUGEWIESEN, S.IN_BEARBEITUNG, S.WARTET})

# First key of the PostgreSQL advisory locks that serialise numbering per tenant ("AKTZ").
REFERENCE_LOCK_SPACE = 0x414B545A


@lru_cache(maxsize=64)
def _holidays(land: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("DE", subdiv=land.upper() or None, years=year)


def is_working_day(day: dt.date, land: str) -> bool:
    """Monday to Friday and not a public holiday of the Land."""
    return day.weekday() < 5 and day not in _holidays(land, day.year)


def add_working_days(start: DateT, days: int, land: str) -> DateT:
    """``start`` moved forward by ``days`` working days of ``land`` (the time of day is kept)."""
    current = start
    remaining = days
    while remaining > 0:
        current = current + dt.timedelta(days=1)
        day = current.date() if isinstance(current, dt.datetime) else current
        if is_working_day(day, land):
            remaining -= 1
    return current


def working_days_between(start: dt.date, end: dt.date, land: str) -> int:
    """Working days after ``start`` up to and including ``end`` (negative if ``end`` is earlier)."""
    if end < start:
        return -working_days_between(end, start, land)
    count = 0
    day = start
    while day < end:
        day += dt.timedelta(days=1)
        if is_working_day(day, land):
            count += 1
    return count


def lock_references(session: Session, *, tenant_id: int) -> None:
    """Let this transaction alone number the tenant's cases until it commits or rolls back.

    Why: the next Aktenzeichen is the highest one plus one, so two transactions that read the
    highest at the same time both take the same number and one fails on the unique constraint
    (measured: hundreds of retries with four parallel receivers). After this call the
    transaction's reads see every number taken so far and no other can take one in between:
    on PostgreSQL a transaction-scoped advisory lock per tenant (per tenant, not per prefix
    and year: one lock per transaction cannot be taken in two orders, so two imports spanning
    years never deadlock); on SQLite the write transaction begins now instead of at the first
    write (:func:`rathaus.core.sqlite_writers.begin_write`), which queues for the file's one
    write lock. Held until the transaction ends: take it only in short transactions (receiving,
    importing a batch), never around AI work. Calling it again in the same transaction is free.
    """
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:space, :tenant)"),
            {"space": REFERENCE_LOCK_SPACE, "tenant": tenant_id},
        )
    elif dialect == "sqlite":
        sqlite_writers.begin_write(connection)


def next_reference(session: Session, *, tenant_id: int, prefix: str, year: int) -> str:
    """The next free Aktenzeichen ``PREFIX-YEAR-000001`` of the tenant: the highest one so far
    plus one (a gap stays a gap). Takes :func:`lock_references` first, so parallel
    transactions get consecutive numbers, not the same one; the unique constraint on
    (tenant, reference) stays the last guard."""
    lock_references(session, tenant_id=tenant_id)
    stem = f"{prefix}-{year}-"
    # The highest reference first along the (tenant, reference) index, stopping at the first
    # that matches: a few index entries instead of all of the tenant's cases (MAX with LIKE
    # reads them all, as LIKE cannot narrow the index range).
    last = session.scalar(
        select(Case.reference)
        .where(Case.tenant_id == tenant_id, Case.reference.like(f"{stem}%"))
        .order_by(Case.reference.desc())
        .limit(1)
    )
    number = int(last.removeprefix(stem)) + 1 if last else 1
    return f"{stem}{number:06d}"


def record_event(
    session: Session,
    case: Case,
    *,
    kind: str,
    activity: str,
    actor: User | None,
    data: dict[str, Any] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    at: dt.datetime | None = None,
) -> CaseEvent:
    """Append one entry to the case event log (never updated or deleted)."""
    event = CaseEvent(
        tenant_id=case.tenant_id,
        case_id=case.id,
        kind=kind,
        activity=activity,
        from_status=from_status,
        to_status=to_status,
        actor_id=actor.id if actor else None,
        actor_label=actor.username if actor else "system",
        data=data or {},
        created_at=at or utcnow(),
    )
    session.add(event)
    return event


def transition(
    session: Session,
    case: Case,
    to: CaseStatus,
    *,
    actor: User | None,
    reason: str = "",
    at: dt.datetime | None = None,
) -> CaseEvent:
    """Change the status of ``case`` if the status machine allows it, and log the change."""
    if actor is not None and actor.tenant_id != case.tenant_id:
        raise InvalidTransitionError("Dieser Vorgang gehört zu einer anderen Kommune.")
    current = CaseStatus(case.status)
    if to not in TRANSITIONS[current]:
        raise InvalidTransitionError(
            f"Der Vorgang {case.reference} kann nicht von „{STATUS_LABELS[current]}“ "
            f"nach „{STATUS_LABELS[to]}“ wechseln."
        )
    case.status = to
    now = at or utcnow()
    if to in (S.ERLEDIGT, S.ARCHIVIERT):
        case.closed_at = case.closed_at or now
    elif to in OPEN_STATUSES:
        case.closed_at = None
    return record_event(
        session,
        case,
        kind="status",
        activity=STATUS_LABELS[to],
        actor=actor,
        from_status=current.value,
        to_status=to.value,
        data={"reason": reason} if reason else {},
        at=now,
    )
