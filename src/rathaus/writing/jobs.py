"""Schreibassistenz jobs: long transcriptions of recordings, with progress, cancellable."""

from __future__ import annotations

from rathaus.core.db import Database
from rathaus.jobs import job, job_settings


# No retries: a failed transcription ends in `fehlgeschlagen` with its reason (the job itself
# never raises); starting it again is the user's decision. Interrupted runs are requeued by huey.
@job(retries=0)
def transcription_job(job_id: int) -> str:
    """Transcribe the recording of writing job ``job_id`` (see :mod:`rathaus.writing.transcription`)."""
    from rathaus.writing.transcription import run_transcription

    settings = job_settings()
    db = Database.from_settings(settings)
    try:
        return run_transcription(db, settings=settings, job_id=job_id)
    finally:
        db.dispose()
