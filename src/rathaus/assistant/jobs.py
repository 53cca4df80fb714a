"""Bürgerassistent jobs: the daily deletion of conversations past their retention period."""

from __future__ import annotations

import logging

from rathaus.core.db import Database
from rathaus.core.models import utcnow
from rathaus.jobs import job, job_settings

log = logging.getLogger(__name__)


@job(cron={"hour": "3", "minute": "17"})
def purge_conversations_job() -> int:
    """Delete conversations older than ``assistant.retention_days`` (handed-over cases stay)."""
    from rathaus.assistant.service import purge_expired

    settings = job_settings()
    db = Database.from_settings(settings)
    try:
        with db.session() as session:
            deleted = purge_expired(
                session, now=utcnow(), retention_days=settings.assistant.retention_days
            )
    finally:
        db.dispose()
    if deleted:
        log.info("%d Gespräche des Bürgerassistenten nach Ablauf der Frist gelöscht", deleted)
    return deleted
