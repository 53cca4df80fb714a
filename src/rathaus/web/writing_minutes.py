"""Niederschriften: Tagesordnung (OParl), Aufnahme oder Transkript, Ergebnis und Export: Seiten und JSON-API.

A thin shell over :mod:`rathaus.writing.minutes`, :mod:`rathaus.writing.oparl` and
:mod:`rathaus.writing.minutes_export`. Pages under ``/texte/niederschriften`` need
``Permission.USE_WRITING`` and CSRF on every POST; the JSON API under
``/api/v1/texte/niederschriften`` takes the callers of :mod:`rathaus.web.writing_auth` (API key
of channel ``api`` or staff session with ``X-CSRF-Token``). Every query is scoped to the
caller's tenant: another tenant's Niederschrift answers 404.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rathaus.core.config import Settings
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import MeetingMinutes, Tenant
from rathaus.core.roles import Permission
from rathaus.governance.gateway import scoped, user_may_reidentify
from rathaus.web.deps import CsrfDep, CurrentTenant, CurrentUser, SessionDep, SettingsDep, require
from rathaus.web.inbox_views import read_upload
from rathaus.web.templating import render
from rathaus.web.writing_auth import AUTH_RESPONSES, WritingCallerDep
from rathaus.writing import minutes as service
from rathaus.writing import minutes_export as export
from rathaus.writing import oparl
from rathaus.writing.minutes_extract import parse_transcript_text

log = logging.getLogger(__name__)

router = APIRouter()

WRITE = Depends(require(Permission.USE_WRITING))
BASE = "/texte/niederschriften"
MAX_TEXT = 2_000_000
MAX_OPARL_FILE_MB = 40
NOTICES = {
    "angelegt": "Die Niederschrift wurde angelegt. Fügen Sie jetzt das Transkript ein oder "
    "laden Sie die Aufnahme hoch.",
    "erstellt": "Die Niederschrift wurde aus dem Transkript erstellt. Bitte prüfen Sie jeden "
    "Tagesordnungspunkt; Beschlusstexte lassen sich unten bearbeiten.",
    "gespeichert": "Ihre Änderungen wurden gespeichert.",
    "unveraendert": "Es gab keine Änderungen zu speichern.",
    "fertig": "Die Niederschrift ist als fertig markiert; der Export trägt kein „Entwurf“ mehr.",
    "entwurf": "Die Niederschrift ist wieder ein Entwurf.",
}


# -- helpers ------------------------------------------------------------------------------------


def _llm(request: Request) -> Any:
    state = request.app.state
    if not hasattr(state, "minutes_llm"):
        from rathaus.ai.registry import get_language_model

        try:
            state.minutes_llm = get_language_model(state.settings, "niederschrift")
        except RathausError:
            state.minutes_llm = None
    return state.minutes_llm


def _field(form: Any, name: str, limit: int = 300) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _meeting_date(date_text: str, time_text: str) -> dt.datetime | None:
    if not date_text:
        return None
    try:
        day = dt.date.fromisoformat(date_text)
    except ValueError:
        raise service.MinutesError(
            "Das Datum ist ungültig; bitte im Format JJJJ-MM-TT angeben."
        ) from None
    clock = dt.time()
    if time_text:
        try:
            clock = dt.time.fromisoformat(time_text)
        except ValueError:
            raise service.MinutesError(
                "Die Uhrzeit ist ungültig; bitte im Format HH:MM angeben."
            ) from None
    return dt.datetime.combine(day, clock)


def transcript_as_text(segments: list[dict[str, Any]]) -> str:
    """The stored segments as editable text, with ``[h:mm:ss]`` where times are known."""
    lines = []
    for segment in segments:
        stamp = service.format_time(segment.get("start"))
        text = str(segment.get("text") or "")
        lines.append(f"[{stamp}] {text}" if stamp else text)
    return "\n".join(lines)


def _uploaded_oparl(data: bytes, meeting_id: str) -> oparl.ImportedMeeting:
    return oparl.meeting_from_json(oparl.parse_upload(data), meeting_id or None)


def _detail(
    request: Request,
    session: Session,
    settings: Settings,
    tenant: Tenant,
    row: MeetingMinutes,
    *,
    notice: str = "",
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    result = row.result or {}
    items = result.get("items") or []
    transcript_text = transcript_as_text(row.transcript or [])
    return render(
        request,
        "writing_minutes_detail.html",
        {
            "tenant": tenant,
            "row": row,
            "result": result,
            "items": items,
            "transcript_text": transcript_text,
            "segments": len(row.transcript or []),
            "notice": notice,
            "errors": errors or [],
            "import_failures": result.get("import_failures") or [],
            "format_time": service.format_time,
            "vote_counts": service.vote_counts_text,
            "max_audio_mb": settings.writing.max_audio_mb,
            "is_final": row.status == "fertig",
        },
        status_code=status_code,
    )


def minutes_text(result: dict[str, Any]) -> str:
    """The generated parts of a Niederschrift as plain text (decision record and its diff)."""
    lines: list[str] = []
    for item in result.get("items") or []:
        lines.append(f"{item.get('number', '')} {item.get('name', '')}".strip())
        summary = " ".join(s.get("text", "") for s in item.get("summary") or [])
        if summary:
            lines.append(f"Beratung: {summary}")
        if item.get("decision_text"):
            lines.append(f"Beschluss: {item['decision_text']}")
        lines.append("")
    return "\n".join(lines).strip()


def record_minutes(session: Session, row: MeetingMinutes, llm: Any = None) -> None:
    """A built Niederschrift is an AI suggestion about the minutes (decision record): the
    structure, summaries, detected votes and decisions. An earlier open one is superseded."""
    from rathaus.governance import decisions

    previous = decisions.latest_for(
        session, tenant_id=row.tenant_id, subject_type="minutes", subject_id=row.id,
        function="niederschrift",
    )  # fmt: skip
    if previous is not None and previous.decision is None:
        decisions.supersede(previous)
    result = row.result or {}
    items = result.get("items") or []
    by_model = any(i.get("summary_source") == "sprachmodell" for i in items)
    decisions.suggest(
        session,
        tenant_id=row.tenant_id,
        function="niederschrift",
        backend="sprachmodell" if by_model else "extraktiv",
        model_version=str(getattr(llm, "model", "") or "") if by_model else "",
        input_sha256=decisions.sha256_text(transcript_as_text(row.transcript or [])),
        subject_type="minutes",
        subject_id=row.id,
        output={
            "text": minutes_text(result)[: decisions.MAX_OUTPUT_CHARS],
            "assignment": result.get("assignment"),
            "items": [
                {
                    "number": i.get("number"),
                    "name": i.get("name"),
                    "summary_source": i.get("summary_source"),
                    "votes": i.get("votes") or [],
                    "decisions": [d.get("text", "") for d in i.get("decisions") or []],
                    "actions": len(i.get("actions") or []),
                }
                for i in items[:200]
            ],
        },
    )


def _decide_minutes(session: Session, row: MeetingMinutes, user: Any, decision: str) -> None:
    """A person edited (``bearbeitet``, with the diff) or finished (``angenommen``) the minutes."""
    from rathaus.governance import decisions

    suggestion = decisions.latest_for(
        session, tenant_id=row.tenant_id, subject_type="minutes", subject_id=row.id,
        function="niederschrift",
    )  # fmt: skip
    if suggestion is None:
        return
    if decision == "bearbeitet" and suggestion.decision in (None, "bearbeitet"):
        decisions.decide(
            session,
            suggestion,
            decision="bearbeitet",
            user=user,
            original_text=(suggestion.output or {}).get("text", ""),
            edited_text=minutes_text(row.result or {}),
        )
    elif decision == "angenommen" and suggestion.decision is None:
        decisions.decide(session, suggestion, decision="angenommen", user=user)


def _get(session: Session, tenant: Tenant, minutes_id: int) -> MeetingMinutes:
    return service.get(session, tenant_id=tenant.id, minutes_id=minutes_id)


# -- pages --------------------------------------------------------------------------------------


@router.get(BASE, dependencies=[WRITE], include_in_schema=False)
def list_page(request: Request, tenant: CurrentTenant, session: SessionDep) -> Response:
    rows = service.list_minutes(session, tenant_id=tenant.id)
    return render(request, "writing_minutes_list.html", {"tenant": tenant, "rows": rows})


@router.get(BASE + "/neu", dependencies=[WRITE], include_in_schema=False)
def new_page(request: Request, tenant: CurrentTenant) -> Response:
    return render(request, "writing_minutes_new.html", {"tenant": tenant, "form": {}, "errors": []})


@router.post(BASE + "/neu", dependencies=[CsrfDep, WRITE], include_in_schema=False)
async def create_page(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    form = await request.form(max_files=1, max_fields=20)
    values = {
        name: _field(form, name, 20000 if name in ("tagesordnung", "anwesenheit") else 500)
        for name in (
            "titel",
            "gremium",
            "datum",
            "uhrzeit",
            "ort",
            "tagesordnung",
            "oparl_url",
            "sitzung",
            "anwesenheit",
        )
    }
    errors: list[str] = []
    imported: oparl.ImportedMeeting | None = None
    upload = form.get("oparl_datei")
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            read = await read_upload(upload, MAX_OPARL_FILE_MB * 1024 * 1024)
            if read.data is None:
                raise oparl.OParlError(read.error or "Die Datei konnte nicht gelesen werden.")
            imported = await run_in_threadpool(_uploaded_oparl, read.data, values["sitzung"])
        elif values["oparl_url"]:
            imported = await run_in_threadpool(_fetch_meeting, settings, values["oparl_url"])
        meeting_date = _meeting_date(values["datum"], values["uhrzeit"])
    except RathausError as exc:
        errors.append(exc.message)
        meeting_date = None
    agenda = service.parse_agenda_text(values["tagesordnung"])
    attendance = (
        service.attendance_from_text(values["anwesenheit"]) if values["anwesenheit"] else []
    )
    if imported is not None:
        agenda = agenda or imported.agenda
        attendance = attendance or imported.participants
        meeting_date = meeting_date or oparl.local_time(imported.start)
        values["titel"] = values["titel"] or imported.name
        values["gremium"] = values["gremium"] or imported.body_name
        values["ort"] = values["ort"] or imported.location
    if not values["titel"] and not errors:
        errors.append("Bitte einen Titel angeben (oder eine Sitzung aus OParl importieren).")
    if errors:
        return render(
            request,
            "writing_minutes_new.html",
            {"tenant": tenant, "form": values, "errors": errors},
            status_code=400,
        )
    row = service.create(
        session,
        tenant_id=tenant.id,
        user_name=user.username,
        title=values["titel"],
        body_name=values["gremium"],
        meeting_date=meeting_date,
        location=values["ort"],
        agenda=agenda,
        oparl_meeting_id=imported.id if imported else None,
        attendance=attendance,
    )
    if imported is not None and imported.failures:
        row.result = {"import_failures": [list(f) for f in imported.failures]}
    session.commit()
    return RedirectResponse(f"{BASE}/{row.id}?meldung=angelegt", status_code=303)


def _fetch_meeting(settings: Settings, url: str) -> oparl.ImportedMeeting:
    with oparl.OParlClient(
        timeout_s=settings.writing.oparl_timeout_s,
        max_pages=settings.writing.oparl_max_pages,
        allowed_networks=settings.network.allowed_networks,
    ) as client:
        return client.meeting(url)


@router.get(BASE + "/{minutes_id:int}", dependencies=[WRITE], include_in_schema=False)
def detail_page(
    request: Request,
    minutes_id: int,
    tenant: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
    meldung: str = "",
) -> Response:
    row = _get(session, tenant, minutes_id)
    return _detail(request, session, settings, tenant, row, notice=NOTICES.get(meldung, ""))


@router.post(
    BASE + "/{minutes_id:int}/erstellen", dependencies=[CsrfDep, WRITE], include_in_schema=False
)
async def build_page(
    request: Request,
    minutes_id: int,
    tenant: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> Response:
    """Save the pasted transcript (if any) and structure it by the agenda."""
    form = await request.form(max_files=0, max_fields=10)
    row = _get(session, tenant, minutes_id)
    text = _field(form, "transkript", MAX_TEXT)
    if text:
        row.transcript = parse_transcript_text(text)
    elif "transkript" in form and not text:
        row.transcript = []
    attendance = _field(form, "anwesenheit", 20000)
    if attendance:
        row.attendance = service.attendance_from_text(attendance)
    failures = (row.result or {}).get("import_failures")
    llm = _llm(request) if form.get("sprachmodell") == "1" else None
    # Minutes are internal; one set of placeholders for this build (docs/pseudonymisation.md).
    llm = scoped(
        llm,
        level="intern",
        tenant_id=tenant.id,
        may_reidentify=user_may_reidentify(user),
        session=session,
        actor=user.username,
    )
    try:
        await run_in_threadpool(service.build, session, row, llm=llm)
    except RathausError as exc:
        session.commit()  # the pasted text is kept even when it cannot be structured
        return _detail(
            request, session, settings, tenant, row, errors=[exc.message], status_code=400
        )
    if failures:
        row.result = {**row.result, "import_failures": failures}
    record_minutes(session, row, llm)
    session.commit()
    return RedirectResponse(f"{BASE}/{row.id}?meldung=erstellt#ergebnis", status_code=303)


@router.post(
    BASE + "/{minutes_id:int}/bearbeiten", dependencies=[CsrfDep, WRITE], include_in_schema=False
)
async def edit_page(
    request: Request,
    minutes_id: int,
    tenant: CurrentTenant,
    session: SessionDep,
    user: CurrentUser,
) -> Response:
    form = await request.form(max_files=0, max_fields=2000)
    row = _get(session, tenant, minutes_id)
    texts: dict[int, dict[str, str]] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            continue
        kind, _, index = key.rpartition("_")
        if kind in ("beschluss", "beratung") and index.isdigit():
            field = "decision_text" if kind == "beschluss" else "summary"
            texts.setdefault(int(index), {})[field] = value[:20000]
    changed = service.update_item_texts(session, row, texts)
    if changed:
        _decide_minutes(session, row, user, "bearbeitet")
    session.commit()
    notice = "gespeichert" if changed else "unveraendert"
    return RedirectResponse(f"{BASE}/{row.id}?meldung={notice}#ergebnis", status_code=303)


@router.post(
    BASE + "/{minutes_id:int}/status", dependencies=[CsrfDep, WRITE], include_in_schema=False
)
async def status_page(
    request: Request,
    minutes_id: int,
    tenant: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    row = _get(session, tenant, minutes_id)
    status = "fertig" if form.get("status") == "fertig" else "entwurf"
    try:
        service.set_status(session, row, status)
    except RathausError as exc:
        return _detail(
            request, session, settings, tenant, row, errors=[exc.message], status_code=400
        )
    if status == "fertig":
        _decide_minutes(session, row, user, "angenommen")
    session.commit()
    return RedirectResponse(f"{BASE}/{row.id}?meldung={status}", status_code=303)


@router.post(
    BASE + "/{minutes_id:int}/aufnahme", dependencies=[CsrfDep, WRITE], include_in_schema=False
)
async def audio_page(
    request: Request,
    minutes_id: int,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """„Aufnahme hochladen“: start the speech-to-text job and show its status page."""
    row = _get(session, tenant, minutes_id)
    form = await request.form(max_files=1, max_fields=5)
    upload = form.get("aufnahme")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _detail(
            request, session, settings, tenant, row,
            errors=["Bitte eine Audiodatei auswählen."], status_code=400,
        )  # fmt: skip
    read = await read_upload(upload, settings.writing.max_audio_mb * 1024 * 1024)
    if read.data is None:
        return _detail(
            request, session, settings, tenant, row,
            errors=[read.error or "Die Datei konnte nicht gelesen werden."], status_code=413,
        )  # fmt: skip
    try:
        from rathaus.writing.transcription import start_transcription
    except ImportError:
        return _detail(
            request, session, settings, tenant, row,
            errors=["Die Spracherkennung ist in dieser Installation nicht verfügbar; bitte das "
                    "Transkript als Text einfügen."], status_code=503,
        )  # fmt: skip
    try:
        job = await run_in_threadpool(
            start_transcription,
            session,
            settings=settings,
            tenant_id=tenant.id,
            user_name=user.username,
            filename=read.filename,
            data=read.data,
            minutes_id=row.id,
        )
    except RathausError as exc:
        job_id = getattr(exc, "job_id", None)
        if job_id:
            return RedirectResponse(f"/texte/auftraege/{job_id}", status_code=303)
        return _detail(
            request, session, settings, tenant, row, errors=[exc.message], status_code=400
        )
    return RedirectResponse(f"/texte/auftraege/{job.id}", status_code=303)


def _download(row: MeetingMinutes, tenant: Tenant, kind: str) -> Response:
    doc = export.document_of(row, tenant.name)
    if kind == "docx":
        data = export.to_docx(doc)
        media = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    else:
        data = export.to_pdf(doc)
        media = "application/pdf"
    name = export.filename(doc, kind)
    return Response(
        data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get(BASE + "/{minutes_id:int}.docx", dependencies=[WRITE], include_in_schema=False)
async def docx_page(minutes_id: int, tenant: CurrentTenant, session: SessionDep) -> Response:
    row = _get(session, tenant, minutes_id)
    return await run_in_threadpool(_download, row, tenant, "docx")


@router.get(BASE + "/{minutes_id:int}.pdf", dependencies=[WRITE], include_in_schema=False)
async def pdf_page(minutes_id: int, tenant: CurrentTenant, session: SessionDep) -> Response:
    row = _get(session, tenant, minutes_id)
    return await run_in_threadpool(_download, row, tenant, "pdf")


# -- JSON API -----------------------------------------------------------------------------------

API = "/api/v1/texte/niederschriften"


class AgendaItemIn(BaseModel):
    number: str = Field(default="", max_length=30, description="Nummer, z. B. „2.1“")
    name: str = Field(min_length=1, max_length=500, description="Bezeichnung des Punkts")
    public: bool = Field(default=True, description="öffentlich")


class SegmentIn(BaseModel):
    start: float | None = Field(default=None, ge=0, description="Beginn in Sekunden")
    end: float | None = Field(default=None, ge=0, description="Ende in Sekunden")
    text: str = Field(max_length=100_000)


class MinutesCreate(BaseModel):
    """Tagesordnung und Transkript: daraus wird die Niederschrift erstellt und gespeichert."""

    title: str = Field(min_length=1, max_length=300, description="Titel der Sitzung")
    body_name: str = Field(default="", max_length=300, description="Gremium")
    meeting_date: dt.datetime | None = Field(default=None, description="Beginn der Sitzung")
    location: str = Field(default="", max_length=300, description="Ort")
    agenda: list[AgendaItemIn] = Field(default_factory=list, max_length=300)
    agenda_text: str = Field(default="", max_length=50_000, description="Tagesordnung als Text")
    transcript: list[SegmentIn] = Field(default_factory=list, max_length=50_000)
    transcript_text: str = Field(default="", max_length=MAX_TEXT, description="Transkript als Text")
    attendance_text: str = Field(default="", max_length=20_000, description="anwesend: …")


class MinutesPublic(BaseModel):
    """Eine Niederschrift mit ihrem Ergebnis je Tagesordnungspunkt."""

    id: int
    title: str
    body_name: str
    meeting_date: dt.datetime | None
    location: str
    status: str = Field(description="entwurf oder fertig")
    agenda: list[dict[str, Any]]
    attendance: list[dict[str, Any]]
    result: dict[str, Any] = Field(description="Ergebnis je Punkt: Beratung, Anträge, "
                                   "Abstimmungen, Beschlüsse, Aufgaben mit Zeitangaben")  # fmt: skip
    docx_url: str
    pdf_url: str


def _public(row: MeetingMinutes) -> MinutesPublic:
    return MinutesPublic(
        id=row.id,
        title=row.title,
        body_name=row.body_name,
        meeting_date=row.meeting_date,
        location=row.location,
        status=row.status,
        agenda=row.agenda or [],
        attendance=row.attendance or [],
        result=row.result or {},
        docx_url=f"{API}/{row.id}.docx",
        pdf_url=f"{API}/{row.id}.pdf",
    )


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


@router.post(
    API,
    tags=["Schreibassistenz"],
    responses=AUTH_RESPONSES,
    response_model=MinutesPublic,
    status_code=201,
)
async def api_create(request: Request, caller: WritingCallerDep, session: SessionDep) -> Response:
    """Tagesordnung und Transkript senden: die Niederschrift wird erstellt und gespeichert."""
    tenant, actor = caller.tenant, caller.actor
    raw = await request.body()
    try:
        body = MinutesCreate.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "Inhalt" for e in exc.errors())
        return _error(400, f"Die Angaben sind unvollständig oder fehlerhaft (Feld: {fields}).")
    agenda = [
        service.AgendaItem(a.number or str(i + 1), a.name, a.public)
        for i, a in enumerate(body.agenda)
    ] or service.parse_agenda_text(body.agenda_text)
    transcript = [s.model_dump() for s in body.transcript] or parse_transcript_text(
        body.transcript_text
    )
    attendance = service.attendance_from_text(body.attendance_text) if body.attendance_text else []
    try:
        row = service.create(
            session,
            tenant_id=tenant.id,
            user_name=actor,
            title=body.title,
            body_name=body.body_name,
            meeting_date=body.meeting_date.replace(tzinfo=None) if body.meeting_date else None,
            location=body.location,
            agenda=agenda,
            attendance=attendance,
            transcript=transcript,
        )
        await run_in_threadpool(service.build, session, row)
        record_minutes(session, row)
    except RathausError as exc:
        session.rollback()
        return _error(400, exc.message)
    session.commit()
    return JSONResponse(_public(row).model_dump(mode="json"), status_code=201)


def _api_row(session: Session, tenant: Tenant, minutes_id: int) -> MeetingMinutes | JSONResponse:
    try:
        return _get(session, tenant, minutes_id)
    except NotFoundError as exc:
        return _error(404, exc.message)


@router.get(
    API + "/{minutes_id:int}",
    tags=["Schreibassistenz"],
    responses=AUTH_RESPONSES,
    response_model=MinutesPublic,
)
def api_get(minutes_id: int, caller: WritingCallerDep, session: SessionDep) -> Response:
    """Eine Niederschrift mit ihrem Ergebnis."""
    row = _api_row(session, caller.tenant, minutes_id)
    if isinstance(row, JSONResponse):
        return row
    return JSONResponse(_public(row).model_dump(mode="json"))


@router.get(API + "/{minutes_id:int}.docx", tags=["Schreibassistenz"], responses=AUTH_RESPONSES)
async def api_docx(minutes_id: int, caller: WritingCallerDep, session: SessionDep) -> Response:
    """Die Niederschrift als DOCX."""
    row = _api_row(session, caller.tenant, minutes_id)
    if isinstance(row, JSONResponse):
        return row
    return await run_in_threadpool(_download, row, caller.tenant, "docx")


@router.get(API + "/{minutes_id:int}.pdf", tags=["Schreibassistenz"], responses=AUTH_RESPONSES)
async def api_pdf(minutes_id: int, caller: WritingCallerDep, session: SessionDep) -> Response:
    """Die Niederschrift als PDF."""
    row = _api_row(session, caller.tenant, minutes_id)
    if isinstance(row, JSONResponse):
        return row
    return await run_in_threadpool(_download, row, caller.tenant, "pdf")
