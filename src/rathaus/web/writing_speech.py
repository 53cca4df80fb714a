"""Spracherkennung als Hintergrundauftrag: Hochladen, Fortschritt, Abbruch: Seiten und JSON-API.

A thin shell over :mod:`rathaus.writing.transcription`. Pages need ``Permission.USE_WRITING``;
the JSON API under ``/api/v1/texte`` takes the callers of :mod:`rathaus.web.writing_auth`.
Uploads are spooled to disk by the form parser and read only up to ``writing.max_audio_mb``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rathaus.core.errors import InvalidTransitionError, NotFoundError, RathausError
from rathaus.core.models import Tenant, User, WritingJob, WritingJobStatus
from rathaus.core.roles import Permission
from rathaus.web.deps import (
    CsrfDep,
    CurrentTenant,
    CurrentUser,
    SessionDep,
    SettingsDep,
    require,
)
from rathaus.web.templating import render
from rathaus.web.writing_auth import AUTH_RESPONSES, WritingCallerDep
from rathaus.writing import transcription as tx

router = APIRouter()

USE = Depends(require(Permission.USE_WRITING))
CHUNK = 1024 * 1024
POLL_SECONDS = 2
DOWNLOADS = {  # file extension → (format, media type)
    "txt": ("text", "text/plain; charset=utf-8"),
    "srt": ("srt", "application/x-subrip; charset=utf-8"),
    "vtt": ("vtt", "text/vtt; charset=utf-8"),
    "json": ("json", "application/json"),
}
FORM_FIELD = "datei"
API_FIELDS = ("file", "datei")


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def _read_audio(upload: UploadFile, max_bytes: int) -> bytes | None:
    """The file's bytes, or ``None`` when it exceeds ``max_bytes`` (read in chunks, stopped at
    the limit: the form parser already keeps the part in a temporary file on disk)."""
    if upload.size is not None and upload.size > max_bytes:
        return None
    buffer = bytearray()
    while chunk := await upload.read(CHUNK):
        buffer += chunk
        if len(buffer) > max_bytes:
            return None
    return bytes(buffer)


def _minutes_id(value: Any) -> int | None:
    if not isinstance(value, str) or not value.strip():
        return None
    if not value.strip().isdigit():
        raise _Refused(400, "„niederschrift“ muss die Nummer einer Niederschrift sein.")
    return int(value)


async def _start(
    request: Request,
    session: Session,
    settings: Any,
    tenant_id: int,
    user_name: str,
    field_names: tuple[str, ...],
) -> WritingJob:
    """Read the upload of ``request`` and start its transcription (raises on bad input)."""
    form = await request.form(max_files=2, max_fields=10)
    upload = next(
        (
            f
            for name in field_names
            for f in form.getlist(name)
            if isinstance(f, UploadFile) and f.filename
        ),
        None,
    )
    if upload is None:
        raise _Refused(400, "Bitte eine Aufnahme (Audio- oder Videodatei) auswählen.")
    minutes_id = _minutes_id(form.get("niederschrift"))
    max_bytes = settings.writing.max_audio_mb * 1024 * 1024
    data = await _read_audio(upload, max_bytes)
    if data is None:
        raise await run_in_threadpool(
            tx.refuse_upload,
            session,
            settings=settings,
            tenant_id=tenant_id,
            user_name=user_name,
            filename=upload.filename or "",
            size=upload.size or max_bytes + 1,
            minutes_id=minutes_id,
        )
    return await run_in_threadpool(
        tx.start_transcription,
        session,
        settings=settings,
        tenant_id=tenant_id,
        user_name=user_name,
        filename=upload.filename or "",
        data=data,
        minutes_id=minutes_id,
    )


# -- pages ----------------------------------------------------------------------------------------


def _upload_page(
    request: Request,
    session: Session,
    settings: Any,
    tenant: Tenant,
    user: User,
    *,
    error: str = "",
    failed_job_id: int | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "writing_job_new.html",
        {
            "tenant": tenant,
            "max_mb": settings.writing.max_audio_mb,
            "max_hours": f"{settings.writing.max_audio_hours:g}".replace(".", ","),
            "jobs": tx.list_jobs(session, tenant_id=tenant.id, created_by=user.username),
            "labels": tx.STATUS_LABELS,
            "error": error,
            "failed_job_id": failed_job_id,
        },
        status_code=status_code,
    )


@router.get("/texte/transkription", dependencies=[USE], include_in_schema=False)
def upload_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    tenant: CurrentTenant,
    user: CurrentUser,
) -> Response:
    return _upload_page(request, session, settings, tenant, user)


@router.post("/texte/transkription", dependencies=[CsrfDep, USE], include_in_schema=False)
async def upload(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    tenant: CurrentTenant,
    user: CurrentUser,
) -> Response:
    try:
        job = await _start(request, session, settings, tenant.id, user.username, (FORM_FIELD,))
    except _Refused as exc:
        return _upload_page(
            request, session, settings, tenant, user, error=exc.message, status_code=exc.status
        )
    except tx.TranscriptionInputError as exc:
        return _upload_page(
            request,
            session,
            settings,
            tenant,
            user,
            error=exc.message,
            failed_job_id=exc.job_id,
            status_code=exc.http_status,
        )
    return RedirectResponse(f"/texte/auftraege/{job.id}", status_code=303)


def _job_context(job: WritingJob, tenant: Tenant) -> dict[str, Any]:
    segments = (job.result or {}).get("segments") or []
    status = WritingJobStatus(job.status)
    return {
        "tenant": tenant,
        "job": job,
        "status": status,
        "status_label": tx.STATUS_LABELS[status],
        "running": status not in tx.FINISHED,
        "percent": round((job.progress or 0.0) * 100),
        "segments": segments,
        "clock": tx.clock,
        "duration": (job.result or {}).get("duration"),
        "model": (job.result or {}).get("model"),
        "poll_seconds": POLL_SECONDS,
        "downloads": list(DOWNLOADS),
    }


@router.get("/texte/auftraege/{job_id}", dependencies=[USE], include_in_schema=False)
def job_page(request: Request, job_id: int, session: SessionDep, tenant: CurrentTenant) -> Response:
    job = tx.get_job(session, tenant_id=tenant.id, job_id=job_id)
    return render(request, "writing_job.html", _job_context(job, tenant))


@router.get("/texte/auftraege/{job_id}/stand", dependencies=[USE], include_in_schema=False)
def job_status_fragment(
    request: Request, job_id: int, session: SessionDep, tenant: CurrentTenant
) -> Response:
    """The progress block alone, for HTMX polling; once the job ended, the page reloads."""
    job = tx.get_job(session, tenant_id=tenant.id, job_id=job_id)
    context = _job_context(job, tenant)
    response = render(request, "writing_job_status.html", context)
    if not context["running"] and request.headers.get("hx-request"):
        response.headers["HX-Refresh"] = "true"
    return response


@router.post(
    "/texte/auftraege/{job_id}/abbrechen", dependencies=[CsrfDep, USE], include_in_schema=False
)
def cancel(
    request: Request,
    job_id: int,
    session: SessionDep,
    tenant: CurrentTenant,
    user: CurrentUser,
) -> Response:
    try:
        tx.cancel_job(session, tenant_id=tenant.id, job_id=job_id, user_name=user.username)
        session.commit()  # the running job must see the request before the page reloads
    except InvalidTransitionError as exc:
        session.rollback()
        job = tx.get_job(session, tenant_id=tenant.id, job_id=job_id)
        context = {**_job_context(job, tenant), "error": exc.message}
        return render(request, "writing_job.html", context, status_code=409)
    return RedirectResponse(f"/texte/auftraege/{job_id}", status_code=303)


@router.get(
    "/texte/auftraege/{job_id}/transkript.{ext}", dependencies=[USE], include_in_schema=False
)
def download(job_id: int, ext: str, session: SessionDep, tenant: CurrentTenant) -> Response:
    if ext not in DOWNLOADS:
        raise NotFoundError(f"Das Format „{ext}“ gibt es nicht; erlaubt: txt, srt, vtt, json.")
    job = tx.get_job(session, tenant_id=tenant.id, job_id=job_id)
    fmt, media = DOWNLOADS[ext]
    body = tx.format_segments((job.result or {}).get("segments") or [], fmt)
    stem = (job.filename.rsplit(".", 1)[0] or "aufnahme").encode("ascii", "replace").decode()
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:80] or "aufnahme"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{stem}-transkript.{ext}"'},
    )


# -- JSON API -------------------------------------------------------------------------------------


class SegmentPublic(BaseModel):
    start: float = Field(description="Beginn in Sekunden")
    end: float = Field(description="Ende in Sekunden")
    text: str


class JobPublic(BaseModel):
    """Ein Transkriptionsauftrag mit Stand und (Teil-)Ergebnis."""

    id: int
    kind: str = Field(description="transkription")
    status: WritingJobStatus = Field(
        description="wartet, laeuft, fertig, abgebrochen oder fehlgeschlagen"
    )
    progress: float = Field(description="Fortschritt 0…1")
    message: str = Field(description="Stand in einem Satz")
    error: str = Field(description="Grund bei „fehlgeschlagen“")
    filename: str
    duration: float | None = Field(description="Länge der Aufnahme in Sekunden")
    model: str | None = Field(description="Verwendetes Spracherkennungsmodell")
    cancel_requested: bool
    minutes_id: int | None = Field(description="Niederschrift, die das Transkript erhält")
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    status_url: str
    segments: list[SegmentPublic] = Field(description="Erkannte Abschnitte, auch Teilergebnis")


def _public(job: WritingJob) -> dict[str, Any]:
    result = job.result or {}
    return JobPublic(
        id=job.id,
        kind=job.kind,
        status=WritingJobStatus(job.status),
        progress=job.progress or 0.0,
        message=job.message,
        error=job.error,
        filename=job.filename,
        duration=result.get("duration"),
        model=result.get("model"),
        cancel_requested=job.cancel_requested,
        minutes_id=job.minutes_id,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        status_url=f"/api/v1/texte/auftraege/{job.id}",
        segments=[SegmentPublic(**s) for s in result.get("segments") or []],
    ).model_dump(mode="json")


def _api_error(status: int, message: str, job_id: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": message}
    if job_id is not None:
        body["job_id"] = job_id
        body["status_url"] = f"/api/v1/texte/auftraege/{job_id}"
    return JSONResponse(body, status_code=status)


@router.post(
    "/api/v1/texte/transkription",
    status_code=202,
    tags=["Schreibassistenz"],
    summary="Aufnahme transkribieren (Hintergrundauftrag)",
    description=(
        "Nimmt eine Aufnahme (Audio oder Video) als `multipart/form-data` im Feld `file` an, "
        "speichert das Original, prüft Format, Größe (`RATHAUS_WRITING__MAX_AUDIO_MB`) und "
        "Länge (`RATHAUS_WRITING__MAX_AUDIO_HOURS`) und startet die Spracherkennung im "
        "Hintergrund. Optional `niederschrift`: Nummer der Niederschrift, die das fertige "
        "Transkript erhält. Den Stand zeigt `status_url`. Eine abgewiesene Datei ergibt 400 "
        "bzw. 413 mit Grund; der Auftrag bleibt als „fehlgeschlagen“ erhalten (`job_id`). "
        "Kopf `Authorization: Bearer rh_…` oder `X-API-Key` (Kanal „api“) oder Anmeldung mit "
        "Kopf `X-CSRF-Token`."
    ),
    response_model=JobPublic,
    responses={
        **AUTH_RESPONSES,
        400: {"description": "Keine Datei, keine Audiodatei oder zu lang"},
        413: {"description": "Datei zu groß"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "niederschrift": {"type": "integer"},
                        },
                        "required": ["file"],
                    }
                }
            },
        }
    },
)
async def api_start(
    request: Request, session: SessionDep, settings: SettingsDep, caller: WritingCallerDep
) -> Response:
    user_name, tenant = caller.actor, caller.tenant
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return _api_error(415, "Bitte die Aufnahme als multipart/form-data im Feld `file` senden.")
    try:
        job = await _start(request, session, settings, tenant.id, user_name, API_FIELDS)
    except _Refused as exc:
        return _api_error(exc.status, exc.message)
    except tx.TranscriptionInputError as exc:
        return _api_error(exc.http_status, exc.message, exc.job_id)
    except NotFoundError as exc:
        return _api_error(404, exc.message)
    return JSONResponse(_public(job), status_code=202)


@router.get(
    "/api/v1/texte/auftraege/{job_id}",
    tags=["Schreibassistenz"],
    summary="Stand eines Transkriptionsauftrags",
    response_model=JobPublic,
    responses={**AUTH_RESPONSES, 404: {"description": "Unbekannt"}},
)
async def api_job(job_id: int, session: SessionDep, caller: WritingCallerDep) -> Response:
    try:
        job = await run_in_threadpool(
            tx.get_job, session, tenant_id=caller.tenant.id, job_id=job_id
        )
    except NotFoundError as exc:
        return _api_error(404, exc.message)
    return JSONResponse(_public(job))


@router.post(
    "/api/v1/texte/auftraege/{job_id}/abbrechen",
    tags=["Schreibassistenz"],
    summary="Transkriptionsauftrag abbrechen",
    description=(
        "Ein wartender Auftrag endet sofort, ein laufender nach dem aktuellen Abschnitt; das "
        "bisher Erkannte bleibt erhalten. Ein fertiger oder fehlgeschlagener Auftrag ergibt 409."
    ),
    response_model=JobPublic,
    responses={
        **AUTH_RESPONSES,
        404: {"description": "Unbekannt"},
        409: {"description": "Schon beendet"},
    },
)
async def api_cancel(job_id: int, session: SessionDep, caller: WritingCallerDep) -> Response:
    user_name, tenant = caller.actor, caller.tenant

    def work() -> WritingJob:
        job = tx.cancel_job(session, tenant_id=tenant.id, job_id=job_id, user_name=user_name)
        session.commit()
        return job

    try:
        job = await run_in_threadpool(work)
    except NotFoundError as exc:
        return _api_error(404, exc.message)
    except RathausError as exc:  # InvalidTransitionError: already finished
        return _api_error(409, exc.message)
    return JSONResponse(_public(job))
