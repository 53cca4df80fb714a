"""Winterdienst job: plan the routes of a winter-service plan in the background."""

from __future__ import annotations

from rathaus.core.db import Database
from rathaus.jobs import job, job_settings


# No retries: a failed plan ends in `fehlgeschlagen` with its reason; starting again is the
# user's decision. Interrupted runs are requeued by huey and start from the beginning.
@job(retries=0)
def winter_planning_job(plan_id: int) -> str:
    """Solve route plan ``plan_id`` (see :func:`rathaus.insights.winter.service.run_planning`)."""
    from rathaus.insights.winter.service import run_planning

    db = Database.from_settings(job_settings())
    try:
        return run_planning(db, plan_id=plan_id)
    finally:
        db.dispose()
