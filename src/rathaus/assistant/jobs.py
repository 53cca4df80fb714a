"""Bürgerassistent jobs: the daily deletion of conversations past their retention period."""

from __future__ import annotations

import logging

from rathaus.core.db import Database
from rathaus.core.models import utcnow
from rathaus.jobs import job, job_settings

log = logging.getLogger(__name__)


@job(cron={"hour": "3", "minute": "17"})
def purge_conversations_job() -> int:
    """Delete conversations older than ``assistant.retention_days`` (handed-over cases stay),
    except in tenants with a retention rule for conversations of their own."""
    from sqlalchemy import select

    from rathaus.assistant.service import purge_expired
    from rathaus.core.models import RetentionRule

    settings = job_settings()
    db = Database.from_settings(settings)
    try:
        with db.session() as session:
            own_rule = session.scalars(
                select(RetentionRule.tenant_id).where(
                    RetentionRule.target == "unterhaltung", RetentionRule.is_active.is_(True)
                )
            ).all()
            deleted = purge_expired(
                session,
                now=utcnow(),
                retention_days=settings.assistant.retention_days,
                skip_tenant_ids=set(own_rule),
            )
    finally:
        db.dispose()
    if deleted:
        log.info("%d Gespräche des Bürgerassistenten nach Ablauf der Frist gelöscht", deleted)
    return deleted
