"""Posteingang jobs for the task queue: triage, retraining, and the periodic safety nets.

- :data:`triage_job` triages one stored case, exactly once: it claims the case first
  (:func:`rathaus.inbox.pipeline.claim_case`), so a second or concurrent run skips it.
- :data:`reconcile_job` (every ``queue.reconcile_every_min`` minutes, default 2) triages cases
  stored more than ``queue.reconcile_after_s`` seconds ago (default 120) that were never
  triaged, e.g. because a worker was killed while running their job (huey loses a running job
  on SIGKILL) or the queue was unreachable: no item stays untriaged.
- :data:`retrain_job` trains a new routing model version (gate, see :mod:`training`).
- :data:`scheduled_retrain_job` (hourly) retrains at ``inbox.retrain_hour`` local time.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from rathaus.core.config import QueueSettings
from rathaus.core.db import Database
from rathaus.core.errors import RathausError
from rathaus.core.models import AiSuggestion, Case, CaseStatus, RoutingModelVersion, Tenant, utcnow
from rathaus.jobs import job, job_settings

if TYPE_CHECKING:
    from rathaus.inbox.pipeline import TriageKit

log = logging.getLogger(__name__)
LOCAL = ZoneInfo("Europe/Berlin")
RECONCILE_BATCH = 200

_KITS: dict[tuple[str, str], object] = {}


def _database_and_kit():  # type: ignore[no-untyped-def]
    from rathaus.inbox.pipeline import TriageKit

    settings = job_settings()
    key = (str(settings.data_dir.resolve()), settings.database_url or "")
    if key not in _KITS:
        _KITS[key] = (Database.from_settings(settings), TriageKit.from_settings(settings))
    return _KITS[key]  # type: ignore[return-value]


def triage_once(db: Database, kit: TriageKit, case_id: int) -> bool:
    """Triage one case in its own transaction unless another run did or does; ``True`` if this
    run triaged it. A run killed midway leaves nothing behind (its transaction is rolled back)."""
    from rathaus.inbox.pipeline import claim_case, triage_case

    with db.session() as session:
        case = claim_case(session, case_id)
        if case is None:
            return False
        triage_case(session, case, kit)
    return True


@job(retries=2, retry_delay=10)
def triage_job(case_id: int) -> None:
    db, kit = _database_and_kit()
    triage_once(db, kit, case_id)


def enqueue_triage(case_ids: list[int]) -> None:
    """Hand stored cases to the queue for triage. Call only after the transaction that stored
    them was committed (a worker must see them); the reconcile job catches any that get lost."""
    for case_id in case_ids:
        triage_job.enqueue(case_id)


def _reconcile_schedule(queue: QueueSettings) -> dict[str, str]:
    every = queue.reconcile_every_min
    return {"minute": "0" if every >= 60 else f"*/{every}"}


def stale_case_ids(db: Database, *, older_than: dt.timedelta, limit: int) -> list[int]:
    """Cases stored longer than ``older_than`` ago and still not triaged, oldest first."""
    with db.session() as session:
        return list(
            session.scalars(
                select(Case.id)
                .where(
                    Case.triaged_at.is_(None),
                    Case.status == CaseStatus.NEU,
                    Case.created_at < utcnow() - older_than,
                )
                .order_by(Case.id)
                .limit(limit)
            )
        )


@job(cron=_reconcile_schedule)
def reconcile_job() -> int:
    """Triage every case stored longer than ``queue.reconcile_after_s`` ago and not triaged.

    Each case in its own transaction and claimed like in :data:`triage_job`: a case whose job
    is running right now is waited for and then skipped, never triaged twice."""
    db, kit = _database_and_kit()
    after = dt.timedelta(seconds=job_settings().queue.reconcile_after_s)
    done = 0
    for case_id in stale_case_ids(db, older_than=after, limit=RECONCILE_BATCH):
        done += triage_once(db, kit, case_id)
    if done:
        log.info("%d liegengebliebene Eingänge nachträglich vorgeprüft", done)
    return done


def retrain(tenant_id: int, *, trigger: str, actor: str = "system") -> RoutingModelVersion | None:
    from rathaus.inbox import training

    db, kit = _database_and_kit()
    settings = job_settings()
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            return None
        try:
            return training.train(
                session,
                tenant,
                data_dir=settings.data_dir,
                secret_key=settings.secret_key.get_secret_value(),
                embedder=kit.embedder,
                trigger=trigger,
                actor=actor,
                tolerance=settings.inbox.gate_tolerance,
            )
        except RathausError as exc:
            log.warning("Neues Training für Mandant %s nicht möglich: %s", tenant.slug, exc)
            return None


@job(retries=0)
def retrain_job(tenant_id: int, trigger: str = "manuell", actor: str = "system") -> None:
    retrain(tenant_id, trigger=trigger, actor=actor)


@job(cron={"minute": "7"})
def scheduled_retrain_job() -> None:
    settings = job_settings()
    hour = settings.inbox.retrain_hour
    if hour is None or dt.datetime.now(LOCAL).hour != hour:
        return
    db, _ = _database_and_kit()
    with db.session() as session:
        tenant_ids = list(session.scalars(select(Tenant.id).where(Tenant.is_active.is_(True))))
    for tenant_id in tenant_ids:
        retrain(tenant_id, trigger="zeitplan")


def corrections_since_last_training(session, tenant_id: int) -> int:  # type: ignore[no-untyped-def]
    """Human corrections of routing since the newest model version was trained."""
    last = session.scalar(
        select(func.max(RoutingModelVersion.created_at)).where(
            RoutingModelVersion.tenant_id == tenant_id
        )
    )
    query = select(func.count(AiSuggestion.id)).where(
        AiSuggestion.tenant_id == tenant_id,
        AiSuggestion.function == "routing",
        AiSuggestion.decision.in_(["korrigiert", "abgelehnt"]),
    )
    if last is not None:
        query = query.where(AiSuggestion.decided_at > last)
    return int(session.scalar(query) or 0)
