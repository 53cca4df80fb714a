"""Speech-to-text of recordings as a cancellable background job: start, run, cancel, export.

:func:`start_transcription` keeps the upload in the original store first, then checks it (size,
is it audio, how long) and queues :func:`run_transcription`. A refused file leaves a job row in
status ``fehlgeschlagen`` with the German reason, and the original stays stored: nothing is lost.
The job writes its progress, a German status line and the segments found so far into the row
every few seconds, and looks for a cancel request between segments; cancelled or failed, the
partial transcript stays in ``result["segments"]``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import tempfile
import time
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.errors import InvalidTransitionError, NotFoundError, RathausError
from rathaus.core.models import MeetingMinutes, WritingJob, WritingJobStatus, utcnow
from rathaus.core.storage import OriginalStore

if TYPE_CHECKING:
    from rathaus.ai.speech import Transcriber
    from rathaus.core.config import Settings
    from rathaus.core.db import Database

log = logging.getLogger(__name__)

JOB_KIND = "transkription"
# How often a running job writes its progress and partial segments (seconds).
PROGRESS_INTERVAL_S = 2.0
FORMATS = ("text", "srt", "vtt", "json")
# File name endings kept on the temporary copy (FFmpeg uses them as a hint); any other ending is
# dropped, so a name like "x.bin" cannot steer FFmpeg to an exotic non-audio demuxer.
AUDIO_SUFFIXES = frozenset(
    [
        ".wav",
        ".mp3",
        ".m4a",
        ".mp4",
        ".aac",
        ".ogg",
        ".oga",
        ".opus",
        ".flac",
        ".webm",
        ".mkv",
        ".mka",
        ".wma",
        ".amr",
        ".3gp",
        ".mov",
        ".aif",
        ".aiff",
    ]
)
FINISHED = frozenset(
    {WritingJobStatus.FERTIG, WritingJobStatus.ABGEBROCHEN, WritingJobStatus.FEHLGESCHLAGEN}
)
STATUS_LABELS = {
    WritingJobStatus.WARTET: "wartet",
    WritingJobStatus.LAEUFT: "läuft",
    WritingJobStatus.FERTIG: "fertig",
    WritingJobStatus.ABGEBROCHEN: "abgebrochen",
    WritingJobStatus.FEHLGESCHLAGEN: "fehlgeschlagen",
}


class TranscriptionInputError(RathausError):
    """An upload that cannot be transcribed: too big, empty, not audio, too long.

    ``job_id`` is the job row kept in status ``fehlgeschlagen`` (``None`` before one existed);
    ``http_status`` is 413 for a too big file, else 400.
    """

    exit_code = 2

    def __init__(self, message: str, *, job_id: int | None = None, http_status: int = 400) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.http_status = http_status


# -- formatting -----------------------------------------------------------------------------------


def clock(seconds: float, *, millis: bool = False, sep: str = ".") -> str:
    """``1:02:03`` style time (``hh:mm:ss``; with ``millis`` ``hh:mm:ss.mmm``, SRT uses ``,``)."""
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{text}{sep}{ms:03d}" if millis else text


def _items(segments: Iterable[Any]) -> list[dict[str, Any]]:
    return [s if isinstance(s, dict) else s.as_dict() for s in segments]


def format_segments(segments: Iterable[Any], fmt: str) -> str:
    """The transcript as ``text`` (one line per segment with its start time), ``srt``, ``vtt``
    (WebVTT) or ``json``; ``segments`` are dicts ``{start, end, text}`` or :class:`Segment`."""
    items = _items(segments)
    if fmt == "text":
        return "".join(f"[{clock(s['start'])}] {s['text']}\n" for s in items)
    if fmt == "srt":
        return "\n".join(
            f"{n}\n{clock(s['start'], millis=True, sep=',')} --> "
            f"{clock(s['end'], millis=True, sep=',')}\n{s['text']}\n"
            for n, s in enumerate(items, start=1)
        )
    if fmt == "vtt":
        cues = "".join(
            f"\n{clock(s['start'], millis=True)} --> {clock(s['end'], millis=True)}\n{s['text']}\n"
            for s in items
        )
        return "WEBVTT\n" + cues
    if fmt == "json":
        return json.dumps({"segments": items}, ensure_ascii=False, indent=2) + "\n"
    raise TranscriptionInputError(
        f"Unbekanntes Format „{fmt}“. Erlaubt sind: {', '.join(FORMATS)}."
    )


def clean_filename(name: str | None) -> str:
    """The last path part, without control characters, at most 200 characters."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = "".join(
        c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C"
    )
    return base.strip()[:200] or "aufnahme"


def _hours(value: float) -> str:
    return f"{value:g}".replace(".", ",")


# -- checking an upload ---------------------------------------------------------------------------


def check_audio_file(path: Path, *, settings: Settings, label: str) -> float:
    """Check that ``path`` is audio no longer than ``max_audio_hours``; return its duration.

    Raises :class:`TranscriptionInputError` (German) otherwise.
    """
    from rathaus.ai.speech import AudioError, probe_audio

    try:
        info = probe_audio(path, label=label)
    except AudioError as exc:
        raise TranscriptionInputError(exc.message) from None
    limit = settings.writing.max_audio_hours
    if info.duration > limit * 3600:
        raise TranscriptionInputError(
            f"„{label}“ dauert {clock(info.duration)} Stunden, erlaubt sind höchstens "
            f"{_hours(limit)} Stunden (RATHAUS_WRITING__MAX_AUDIO_HOURS). Bitte die Aufnahme "
            "teilen und die Teile einzeln hochladen."
        )
    if info.duration <= 0:
        raise TranscriptionInputError(f"„{label}“ enthält keinen Ton (Länge 0 Sekunden).")
    return info.duration


def audio_suffix(filename: str) -> str:
    """The file's ending if it is a known audio or video one, else ``""``."""
    suffix = Path(filename).suffix.lower()
    return suffix if suffix in AUDIO_SUFFIXES else ""


def _check_bytes(data: bytes, *, settings: Settings, label: str) -> float:
    suffix = audio_suffix(label)
    with tempfile.NamedTemporaryFile(prefix="rathaus-audio-", suffix=suffix) as handle:
        handle.write(data)
        handle.flush()
        return check_audio_file(Path(handle.name), settings=settings, label=label)


def too_big_message(label: str, max_mb: int) -> str:
    return (
        f"„{label}“ ist größer als {max_mb} MB (RATHAUS_WRITING__MAX_AUDIO_MB) und wurde nicht "
        "angenommen. Bitte die Aufnahme teilen oder stärker komprimieren (z. B. als MP3 oder "
        "OPUS) und erneut hochladen."
    )


# -- service functions ----------------------------------------------------------------------------


def _fail(session: Session, job: WritingJob, message: str) -> None:
    job.status = WritingJobStatus.FEHLGESCHLAGEN.value
    job.error = message
    job.message = message
    job.finished_at = utcnow()
    session.commit()


def _new_job(
    session: Session,
    *,
    tenant_id: int,
    user_name: str,
    filename: str,
    size: int,
    minutes_id: int | None,
) -> WritingJob:
    if minutes_id is not None:
        minutes = session.get(MeetingMinutes, minutes_id)
        if minutes is None or minutes.tenant_id != tenant_id:
            raise NotFoundError(f"Die Niederschrift {minutes_id} gibt es in Ihrer Kommune nicht.")
    job = WritingJob(
        tenant_id=tenant_id,
        kind=JOB_KIND,
        status=WritingJobStatus.WARTET.value,
        progress=0.0,
        message="Wird geprüft …",
        filename=filename,
        minutes_id=minutes_id,
        created_by=user_name[:120],
        result={"segments": []},
    )
    session.add(job)
    session.flush()
    audit.record(
        session,
        audit.Event(
            kind="transcription_started",
            actor=user_name,
            tenant_id=tenant_id,
            subject=f"writing_job:{job.id}",
            data={"file": filename, "bytes": size, "minutes_id": minutes_id},
        ),
    )
    return job


def refuse_upload(
    session: Session,
    *,
    settings: Settings,
    tenant_id: int,
    user_name: str,
    filename: str,
    size: int,
    minutes_id: int | None = None,
) -> TranscriptionInputError:
    """Record an upload refused for its size before it was read (web, API): a job row in status
    ``fehlgeschlagen`` with the German reason, committed; returns the error to raise."""
    label = clean_filename(filename)
    job = _new_job(
        session,
        tenant_id=tenant_id,
        user_name=user_name,
        filename=label,
        size=size,
        minutes_id=minutes_id,
    )
    _fail(session, job, too_big_message(label, settings.writing.max_audio_mb))
    return TranscriptionInputError(job.error, job_id=job.id, http_status=413)


def start_transcription(
    session: Session,
    *,
    settings: Settings,
    tenant_id: int,
    user_name: str,
    filename: str,
    data: bytes,
    minutes_id: int | None = None,
) -> WritingJob:
    """Keep the recording, check it and queue its transcription; return the job.

    The original is stored first (unless it exceeds ``max_audio_mb``). A file that is too big,
    empty, not audio or longer than ``max_audio_hours`` raises
    :class:`TranscriptionInputError` with a German message; its job row stays, in status
    ``fehlgeschlagen`` with that message (``error.job_id``). A ``minutes_id`` of another tenant
    raises :class:`NotFoundError`. Commits the session (the worker must see the job before it
    is queued); with the memory queue the job has already run when this returns.
    """
    label = clean_filename(filename)
    max_mb = settings.writing.max_audio_mb
    if len(data) > max_mb * 1024 * 1024:
        raise refuse_upload(
            session,
            settings=settings,
            tenant_id=tenant_id,
            user_name=user_name,
            filename=label,
            size=len(data),
            minutes_id=minutes_id,
        )
    job = _new_job(
        session,
        tenant_id=tenant_id,
        user_name=user_name,
        filename=label,
        size=len(data),
        minutes_id=minutes_id,
    )
    if not data:
        _fail(session, job, f"„{label}“ ist leer. Bitte die Aufnahme erneut hochladen.")
        raise TranscriptionInputError(job.error, job_id=job.id)
    try:
        stored = OriginalStore(settings.originals_dir).put(tenant_id, data)
    except RathausError as exc:
        _fail(session, job, exc.message)
        raise
    job.original_sha256 = stored.sha256
    try:
        duration = _check_bytes(data, settings=settings, label=label)
    except TranscriptionInputError as exc:
        _fail(session, job, exc.message)
        raise TranscriptionInputError(exc.message, job_id=job.id) from None
    language = settings.writing.speech_language
    job.result = {"segments": [], "duration": duration, "language": language}
    job.message = f"Wartet auf den Start (Aufnahme {clock(duration)} lang) …"
    session.commit()
    _enqueue(session, settings, job)
    session.refresh(job)
    return job


def _enqueue(session: Session, settings: Settings, job: WritingJob) -> None:
    from rathaus.jobs import get_huey
    from rathaus.writing.jobs import transcription_job

    try:
        get_huey(settings)  # the queue of these settings (also the web app's in tests)
        transcription_job.enqueue(job.id)
    except RathausError as exc:
        _fail(session, job, f"Der Auftrag konnte nicht gestartet werden: {exc.message}")
        raise


def get_job(session: Session, *, tenant_id: int, job_id: int) -> WritingJob:
    """The tenant's writing job ``job_id``; :class:`NotFoundError` for any other."""
    job = session.get(WritingJob, job_id)
    if job is None or job.tenant_id != tenant_id:
        raise NotFoundError(f"Den Auftrag {job_id} gibt es in Ihrer Kommune nicht.")
    session.refresh(job)  # a worker may have changed it since it was loaded
    return job


def list_jobs(
    session: Session, *, tenant_id: int, created_by: str | None = None, limit: int = 20
) -> list[WritingJob]:
    """The tenant's newest transcription jobs (optionally only those of one person)."""
    query = select(WritingJob).where(WritingJob.tenant_id == tenant_id, WritingJob.kind == JOB_KIND)
    if created_by is not None:
        query = query.where(WritingJob.created_by == created_by)
    return list(session.scalars(query.order_by(WritingJob.id.desc()).limit(limit)))


def cancel_job(session: Session, *, tenant_id: int, job_id: int, user_name: str = "") -> WritingJob:
    """Ask job ``job_id`` to stop. A waiting job is cancelled at once; a running one stops after
    its current segment and keeps what it has. Cancelling a cancelled job changes nothing; a
    finished or failed one raises :class:`InvalidTransitionError`. The caller commits."""
    job = get_job(session, tenant_id=tenant_id, job_id=job_id)
    status = WritingJobStatus(job.status)
    if status == WritingJobStatus.ABGEBROCHEN:
        return job
    if status in FINISHED:
        raise InvalidTransitionError(
            f"Der Auftrag {job_id} ist bereits {STATUS_LABELS[status]} und kann nicht mehr "
            "abgebrochen werden."
        )
    job.cancel_requested = True
    if status == WritingJobStatus.WARTET:
        job.status = WritingJobStatus.ABGEBROCHEN.value
        job.message = "Abgebrochen, bevor die Spracherkennung begann."
        job.finished_at = utcnow()
    else:
        job.message = "Abbruch angefordert – der laufende Abschnitt wird noch fertig erkannt …"
    audit.record(
        session,
        audit.Event(
            kind="transcription_cancelled",
            actor=user_name or "unbekannt",
            tenant_id=tenant_id,
            subject=f"writing_job:{job_id}",
        ),
    )
    session.flush()
    return job


# -- the job itself -------------------------------------------------------------------------------


class _Progress:
    """Writes the job's progress and partial segments at most every PROGRESS_INTERVAL_S."""

    def __init__(self, db: Database, job: WritingJob) -> None:
        self.db, self.job_id = db, job.id
        self.extra: dict[str, Any] = dict(job.result or {})
        self.duration = float(self.extra.get("duration") or 0.0)
        self.segments: list[dict[str, Any]] = []
        self.done = 0.0
        self.last_write = 0.0

    def fraction(self) -> float:
        if self.duration <= 0:
            return 0.0
        return min(1.0, max(0.0, self.done / self.duration))

    def message(self) -> str:
        return (
            f"Läuft: {clock(self.done)} von {clock(self.duration)} erkannt "
            f"({len(self.segments)} Abschnitte)."
        )

    def write(self, *, force: bool = False) -> None:
        """Store progress, status line and the segments so far (only every few seconds)."""
        now = time.monotonic()
        if not force and now - self.last_write < PROGRESS_INTERVAL_S:
            return
        self.last_write = now
        result = {**self.extra, "segments": list(self.segments), "duration": self.duration}
        with self.db.session() as session:
            # Only these columns: a cancel request written meanwhile must not be overwritten.
            session.execute(
                update(WritingJob)
                .where(WritingJob.id == self.job_id)
                .values(result=result, progress=round(self.fraction(), 4), message=self.message())
            )

    def cancel_requested(self) -> bool:
        with self.db.session() as session:
            return bool(
                session.scalar(
                    select(WritingJob.cancel_requested).where(WritingJob.id == self.job_id)
                )
            )


def _claim(db: Database, job_id: int) -> WritingJob | None:
    """Mark the job running; ``None`` when it is gone, finished, or was cancelled while waiting."""
    with db.session() as session:
        job = session.get(WritingJob, job_id)
        if job is None:
            log.warning("Transkription %s: Auftrag nicht gefunden", job_id)
            return None
        if job.status in FINISHED:
            return None  # cancelled while waiting, or a second delivery of a finished job
        if job.cancel_requested:
            job.status = WritingJobStatus.ABGEBROCHEN.value
            job.message = "Abgebrochen, bevor die Spracherkennung begann."
            job.finished_at = utcnow()
            return None
        job.status = WritingJobStatus.LAEUFT.value
        job.started_at = utcnow()
        job.message = "Das Spracherkennungsmodell wird geladen …"
        job.progress = 0.0
        job.error = ""
        session.flush()
        session.expunge(job)
        return job


def _finish(
    db: Database, job_id: int, status: WritingJobStatus, message: str, error: str = ""
) -> None:
    with db.session() as session:
        session.execute(
            update(WritingJob)
            .where(WritingJob.id == job_id)
            .values(status=status.value, message=message, error=error, finished_at=utcnow())
        )


def run_transcription(
    db: Database,
    *,
    settings: Settings,
    job_id: int,
    transcriber: Transcriber | None = None,
) -> str:
    """Run transcription job ``job_id`` to its end; return the final status.

    Never raises for a problem of the recording or the model: the job ends ``fehlgeschlagen``
    with a German message, keeping the segments found so far. A job that is already finished is
    left alone (a second delivery by the queue does no harm); one interrupted while running
    starts again from the beginning.
    """
    job = _claim(db, job_id)
    if job is None:
        with db.session() as session:
            found = session.get(WritingJob, job_id)
            return found.status if found is not None else "fehlt"
    progress = _Progress(db, job)
    language = (job.result or {}).get("language") or settings.writing.speech_language
    try:
        data = OriginalStore(settings.originals_dir).get(job.tenant_id, job.original_sha256)
        suffix = audio_suffix(job.filename)
        with tempfile.NamedTemporaryFile(prefix="rathaus-audio-", suffix=suffix) as handle:
            handle.write(data)
            handle.flush()
            del data
            if transcriber is None:
                from rathaus.ai.speech import get_transcriber

                transcriber = get_transcriber(settings)
            progress.extra["model"] = transcriber.name
            progress.write(force=True)

            def on_progress(done: float, total: float) -> None:
                progress.done = done
                if total > 0:
                    progress.duration = total

            for segment in transcriber.transcribe(
                Path(handle.name), language=language, on_progress=on_progress
            ):
                progress.segments.append(segment.as_dict())
                progress.done = max(progress.done, segment.end)
                if progress.cancel_requested():
                    progress.write(force=True)
                    message = (
                        f"Abgebrochen bei {clock(progress.done)} von "
                        f"{clock(progress.duration)}; {len(progress.segments)} bereits erkannte "
                        "Abschnitte bleiben erhalten."
                    )
                    _finish(db, job_id, WritingJobStatus.ABGEBROCHEN, message)
                    return WritingJobStatus.ABGEBROCHEN.value
                progress.write()
    except Exception as exc:  # noqa: BLE001 - whatever happens, the job ends with a German message
        if isinstance(exc, RathausError):
            message = exc.message
        else:
            log.exception("Transkription %s fehlgeschlagen", job_id)
            message = (
                f"Die Spracherkennung ist mit einem internen Fehler abgebrochen "
                f"({type(exc).__name__}). Bereits erkannte Abschnitte bleiben erhalten; bitte "
                "den Auftrag neu starten und bei Wiederholung die IT informieren."
            )
        try:
            progress.write(force=True)
        except Exception:  # noqa: BLE001 - the database itself may be the problem
            log.exception("Transkription %s: Zwischenstand nicht gespeichert", job_id)
        _finish(db, job_id, WritingJobStatus.FEHLGESCHLAGEN, message, error=message)
        return WritingJobStatus.FEHLGESCHLAGEN.value
    progress.done = progress.duration
    progress.write(force=True)
    message = (
        f"Fertig: {len(progress.segments)} Abschnitte aus {clock(progress.duration)} Aufnahme. "
        "Automatisch erkannt – bitte vor der Verwendung prüfen (Entwurfsqualität)."
    )
    with db.session() as session:
        job_row = session.get(WritingJob, job_id)
        assert job_row is not None
        job_row.status = WritingJobStatus.FERTIG.value
        job_row.progress = 1.0
        job_row.message = message
        job_row.finished_at = utcnow()
        if job_row.minutes_id is not None:
            minutes = session.get(MeetingMinutes, job_row.minutes_id)
            if minutes is not None and minutes.tenant_id == job_row.tenant_id:
                minutes.transcript = list(progress.segments)
    return WritingJobStatus.FERTIG.value


def job_elapsed(job: WritingJob) -> dt.timedelta | None:
    """How long the job ran (so far)."""
    if job.started_at is None:
        return None
    end = job.finished_at or utcnow()
    start = job.started_at
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=dt.UTC)
    return end - start
