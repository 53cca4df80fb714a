"""Governance jobs: the daily retention run (rules of every tenant, then the access-log purge).

:data:`retention_job` runs hourly and does its work at ``governance.retention_hour`` local time
(``None``: switched off). Each tenant is handled in its own transaction, so one tenant's
failure leaves the others' results in place; the run is idempotent (what is gone is gone, an
anonymised case is not anonymised twice).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import select

from rathaus.core.config import Settings
from rathaus.core.db import Database
from rathaus.core.errors import RathausError
from rathaus.core.models import Tenant, utcnow
from rathaus.core.storage import OriginalStore
from rathaus.jobs import job, job_settings

log = logging.getLogger(__name__)
LOCAL = ZoneInfo("Europe/Berlin")


@dataclass
class RetentionRun:
    reports: dict[str, dict[str, int]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    access_log_purged: int = 0


def run_retention(
    db: Database, settings: Settings, *, now: dt.datetime | None = None, actor: str = "system"
) -> RetentionRun:
    """Apply every active tenant's retention rules and purge old access-log rows."""
    from rathaus.governance import access_log, retention

    now = now or utcnow()
    store = OriginalStore(settings.originals_dir)
    run = RetentionRun()
    with db.session() as session:
        tenants = list(session.execute(select(Tenant.id, Tenant.slug).where(Tenant.is_active)))
    for tenant_id, slug in tenants:
        try:
            with db.session() as session:
                report = retention.apply(
                    session,
                    tenant_id=tenant_id,
                    store=store,
                    default_conversation_days=settings.assistant.retention_days,
                    now=now,
                    actor=actor,
                )
            run.reports[slug] = report.counts()
        except RathausError as exc:
            run.failed[slug] = exc.message
            log.warning("Aufbewahrungsregeln für %s nicht angewandt: %s", slug, exc.message)
    with db.session() as session:
        run.access_log_purged = access_log.purge(
            session, now=now, days=settings.governance.access_log_days
        )
    return run


@job(cron={"minute": "23"})
def retention_job() -> RetentionRun | None:
    """Hourly check; runs at ``governance.retention_hour`` (local time)."""
    settings = job_settings()
    hour = settings.governance.retention_hour
    if hour is None or dt.datetime.now(LOCAL).hour != hour:
        return None
    db = Database.from_settings(settings)
    try:
        run = run_retention(db, settings)
    finally:
        db.dispose()
    for slug, counts in run.reports.items():
        if any(counts.values()):
            log.info(
                "Aufbewahrung %s: %d gelöscht, %d anonymisiert, %d Unterhaltungen gelöscht",
                slug,
                counts["loeschen"],
                counts["anonymisieren"],
                counts["unterhaltungen"],
            )
    return run
