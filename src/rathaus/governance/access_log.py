"""Access log: who opened, downloaded or exported which case, through which channel.

Contract: :func:`record_access` adds one row in the caller's transaction (it never commits);
the reference is copied so an entry stays readable after its case was erased (``case_id``
becomes NULL). :func:`entries` reads the log filtered by Aktenzeichen, user and period;
:func:`purge` removes rows older than ``governance.access_log_days``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rathaus.core.errors import RathausError
from rathaus.core.models import Case, CaseAccess, User, utcnow

# action → German label for pages and exports
ACTIONS = {
    "angesehen": "Vorgang geöffnet",
    "original": "Original heruntergeladen",
    "export": "exportiert",
    "auskunft": "in DSGVO-Auskunft ausgegeben",
}
CHANNELS = {"web": "Web", "api": "API", "cli": "Befehlszeile"}
CSV_HEADERS = ("Zeitpunkt (UTC)", "Aktenzeichen", "Benutzer", "Aktion", "Kanal")
MAX_ROWS = 5000


def record_access(
    session: Session,
    *,
    case: Case,
    user: User | None,
    action: str = "angesehen",
    channel: str = "web",
    username: str | None = None,
) -> CaseAccess:
    """Note that ``user`` (or ``username`` for the command line) accessed ``case``."""
    if action not in ACTIONS:
        raise ValueError(f"unknown access action {action!r}")
    row = CaseAccess(
        tenant_id=case.tenant_id,
        case_id=case.id,
        case_reference=case.reference,
        user_id=user.id if user is not None else None,
        username=(username or (user.username if user is not None else "system"))[:120],
        action=action,
        channel=channel if channel in CHANNELS else "web",
    )
    session.add(row)
    return row


def _day(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise RathausError(
            f"„{value[:40]}“ ist kein gültiges Datum für {name}; bitte JJJJ-MM-TT angeben."
        ) from exc


def entries(
    session: Session,
    *,
    tenant_id: int,
    reference: str | None = None,
    username: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 500,
) -> list[CaseAccess]:
    """Newest first; ``reference`` and ``username`` match exactly (case-insensitive),
    ``since``/``until`` are ISO dates (inclusive)."""
    query = select(CaseAccess).where(CaseAccess.tenant_id == tenant_id)
    if reference and reference.strip():
        query = query.where(CaseAccess.case_reference.ilike(reference.strip()))
    if username and username.strip():
        query = query.where(CaseAccess.username.ilike(username.strip()))
    start, end = _day(since, "„von“"), _day(until, "„bis“")
    if start is not None:
        query = query.where(CaseAccess.created_at >= dt.datetime.combine(start, dt.time(), dt.UTC))
    if end is not None:
        query = query.where(
            CaseAccess.created_at
            < dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
        )
    limit = max(1, min(limit, MAX_ROWS))
    return list(
        session.scalars(
            query.order_by(CaseAccess.created_at.desc(), CaseAccess.id.desc()).limit(limit)
        )
    )


def rows(items: Sequence[CaseAccess]) -> list[list[Any]]:
    """Table rows (for CSV and the page) in the order of :data:`CSV_HEADERS`."""
    return [
        [
            _utc(e.created_at).strftime("%Y-%m-%d %H:%M:%S"),
            e.case_reference,
            e.username,
            ACTIONS.get(e.action, e.action),
            CHANNELS.get(e.channel, e.channel),
        ]
        for e in items
    ]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def purge(session: Session, *, now: dt.datetime | None = None, days: int) -> int:
    """Delete access-log rows older than ``days`` (all tenants); returns how many."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    result = session.execute(
        delete(CaseAccess)
        .where(CaseAccess.created_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
