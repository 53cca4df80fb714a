"""JSON API of the Posteingang: other systems deliver items with an API key of channel ``api``."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rathaus.core import apikeys
from rathaus.core.access import not_confidential, visible_cases
from rathaus.core.cases import STATUS_LABELS
from rathaus.core.errors import NotFoundError
from rathaus.core.models import ApiKey, Case, CaseStatus, Tenant
from rathaus.core.security import lookup_session
from rathaus.core.storage import OriginalStore
from rathaus.inbox import review
from rathaus.web.cookies import session_token
from rathaus.web.deps import SessionDep, SettingsDep
from rathaus.web.inbox_views import (
    Entry,
    Stored,
    file_item,
    new_case_ids,
    queue_triage,
    read_upload,
    safe_filename,
    store_item,
    text_item,
)
from rathaus.web.limits import client_address, rate_limiter, rule_for, too_many_message

router = APIRouter(prefix="/api/v1/inbox", tags=["Posteingang"])

MAX_META = 300
_bearer = HTTPBearer(auto_error=False, description="API-Schlüssel des Kanals „api“: `rh_…`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API-Schlüssel `rh_…`")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
HeaderDep = Annotated[str | None, Depends(_header)]


class ItemIn(BaseModel):
    """Ein Eingang als JSON (ohne Datei)."""

    text: str = Field(min_length=1, max_length=200_000, description="Text des Anliegens")
    subject: str = Field(default="", max_length=300, description="Betreff (optional)")
    sender_name: str = Field(default="", max_length=200, description="Name der Absenderin")
    sender_contact: str = Field(default="", max_length=300, description="E-Mail oder Telefon")
    address: str = Field(default="", max_length=300, description="Ort des Anliegens")
    lat: float | None = Field(default=None, ge=-90, le=90, description="Breitengrad (WGS 84)")
    long: float | None = Field(default=None, ge=-180, le=180, description="Längengrad (WGS 84)")


class ItemReceipt(BaseModel):
    """Was aus einer eingelieferten Datei oder einem Text wurde."""

    filename: str | None = Field(description="Dateiname, bei Text „text“")
    case_id: int | None = Field(description="Nummer des Vorgangs (leer bei Fehler)")
    reference: str | None = Field(description="Aktenzeichen")
    duplicate: bool = Field(description="Dasselbe Original lag schon vor: bestehender Vorgang")
    status_url: str | None = Field(description="Adresse für den Stand der Vorprüfung")
    error: str | None = Field(default=None, description="Warum nichts angenommen wurde")


class SuggestionPublic(BaseModel):
    org_unit: str = Field(description="Vorgeschlagenes Amt")
    org_unit_code: str
    service: str | None = Field(description="Vorgeschlagene Leistung")
    confidence: float = Field(description="Sicherheit 0…1")
    source: str = Field(description="regel, modell oder ähnlichkeit")


class TriagePublic(BaseModel):
    org_unit: str | None = Field(description="Zugeordnetes Amt (leer: liegt in der Triage)")
    org_unit_code: str | None
    service: str | None = Field(description="Zugeordnete Leistung")
    request_type: str | None = Field(description="Anliegenart, z. B. Antrag, Beschwerde")
    urgency: str = Field(description="normal, hoch oder kritisch")
    flags: list[str] = Field(description="Prüfhinweise für die Beschäftigten")
    suggestion: SuggestionPublic | None = Field(description="Bester Zuordnungsvorschlag")


class ItemStatus(BaseModel):
    case_id: int
    reference: str = Field(description="Aktenzeichen")
    status: CaseStatus
    status_label: str
    received_at: dt.datetime
    triaged: bool = Field(description="Vorprüfung abgeschlossen")
    triaged_at: dt.datetime | None
    triage: TriagePublic | None


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {
            "detail": "Gültiger API-Schlüssel fehlt. Bitte im Kopf „Authorization: Bearer rh_…“ "
            "oder „X-API-Key: rh_…“ senden; Schlüssel für den Kanal „api“ gibt die Kommune aus."
        },
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def given_key(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    """The key from ``Authorization: Bearer …`` or ``X-API-Key`` (``None`` if neither)."""
    return (bearer.credentials if bearer else None) or header or None


def authenticate_key(session: Session, key: str | None) -> tuple[ApiKey, Tenant] | None:
    """The active key of channel ``api`` and its active tenant, or ``None``."""
    row = apikeys.authenticate(session, key=key, channel="api")
    if row is None:
        return None
    tenant = session.get(Tenant, row.tenant_id)
    if tenant is None or not tenant.is_active:
        return None
    return row, tenant


async def _limited_body(request: Request, max_bytes: int) -> bytes | None:
    """The request body, or ``None`` as soon as it exceeds ``max_bytes``."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        return None
    buffer = bytearray()
    async for chunk in request.stream():
        buffer += chunk
        if len(buffer) > max_bytes:
            return None
    return bytes(buffer)


def admit_key(
    request: Request, session: Session, key: str | None
) -> tuple[ApiKey, Tenant] | Response:
    """The key's row and tenant, or the answer: 401 for a key that does not hold, 429 over
    ``limits.api_per_minute`` (per key; failed attempts count per client address, so guessing
    keys is limited too)."""
    limiter, rule = rate_limiter(request.app), rule_for(request, "eingang-api")
    address = f"adresse:{client_address(request)}"
    wait = limiter.wait(rule, address)
    if not wait:
        found = authenticate_key(session, key)
        if found is None:
            limiter.record(rule, address)
            return _unauthorized()
        wait = limiter.hit(rule, f"schluessel:{found[0].id}")
        if not wait:
            return found
    return JSONResponse(
        {"detail": too_many_message(wait)}, status_code=429, headers={"Retry-After": str(wait)}
    )


class _BadInput(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _coordinate(value: Any, name: str, low: float, high: float) -> float | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        number = float(value.replace(",", "."))
    except ValueError:
        raise _BadInput(400, f"„{name}“ ist keine Zahl.") from None
    if not low <= number <= high:
        raise _BadInput(400, f"„{name}“ liegt außerhalb von {low:g} bis {high:g}.")
    return number


def _meta(form: Any) -> dict[str, Any]:
    def text(name: str, limit: int = MAX_META) -> str:
        value = form.get(name)
        return value.strip()[:limit] if isinstance(value, str) else ""

    lat = _coordinate(form.get("lat"), "lat", -90, 90)
    lon = _coordinate(form.get("long"), "long", -180, 180)
    if (lat is None) != (lon is None):
        raise _BadInput(400, "„lat“ und „long“ müssen zusammen angegeben werden.")
    return {
        "sender_name": text("sender_name", 200),
        "sender_contact": text("sender_contact"),
        "address": text("address"),
        "latitude": lat,
        "longitude": lon,
    }


async def _entries(request: Request, max_bytes: int, max_files: int) -> AsyncIterator[Entry]:
    """The items of the request one by one (each file read up to the limit when its turn
    comes); a malformed request raises :class:`_BadInput` before the first item."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        raw = await _limited_body(request, max_bytes)
        if raw is None:
            raise _BadInput(413, f"Der Inhalt ist größer als {max_bytes // 1048576} MB.")
        try:
            body = ItemIn.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) or "Inhalt" for e in exc.errors())
            raise _BadInput(
                400, f"Der Eingang ist unvollständig oder fehlerhaft (Feld: {fields})."
            ) from None
        if (body.lat is None) != (body.long is None):
            raise _BadInput(400, "„lat“ und „long“ müssen zusammen angegeben werden.")
        item = text_item(
            body.text,
            subject=body.subject,
            channel="api",
            sender_name=body.sender_name,
            sender_contact=body.sender_contact,
            address=body.address,
            latitude=body.lat,
            longitude=body.long,
        )
        yield ("text", item, None, False)
        return
    if not content_type.startswith("multipart/form-data"):
        raise _BadInput(
            415, "Bitte als multipart/form-data (Dateien) oder application/json senden."
        )
    form = await request.form(max_files=max_files + 50, max_fields=50)
    meta = _meta(form)
    subject = form.get("subject")
    subject = subject.strip()[:300] if isinstance(subject, str) else ""
    uploads = [
        f
        for name in ("files", "file")
        for f in form.getlist(name)
        if isinstance(f, UploadFile) and f.filename
    ]
    for index, upload in enumerate(uploads):
        if index >= max_files:
            name = safe_filename(upload.filename)
            yield (name, None, f"„{name}“ nicht angenommen: höchstens {max_files} Dateien.", False)
            continue
        read = await read_upload(upload, max_bytes)
        if read.data is None:
            yield (read.filename, None, read.error, read.too_big)
        else:
            yield (
                read.filename,
                file_item(read, subject=subject, channel="api", **meta),
                None,
                False,
            )
    text = form.get("text")
    if isinstance(text, str) and text.strip():
        yield ("text", text_item(text.strip(), subject=subject, channel="api", **meta), None, False)


RECEIPTS_EXAMPLE = [
    {
        "filename": "antrag.pdf",
        "case_id": 42,
        "reference": "MS-2026-000042",
        "duplicate": False,
        "status_url": "/api/v1/inbox/items/42",
        "error": None,
    }
]
MULTIPART_SCHEMA = {
    "type": "object",
    "properties": {
        "files": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "Eine oder mehrere Dateien (PDF, Bild, DOCX, E-Mail .eml, Text)",
        },
        "text": {"type": "string", "description": "Text des Anliegens (optional)"},
        "subject": {"type": "string"},
        "sender_name": {"type": "string"},
        "sender_contact": {"type": "string"},
        "address": {"type": "string"},
        "lat": {"type": "number"},
        "long": {"type": "number"},
    },
}


@router.post(
    "/items",
    status_code=201,
    summary="Eingänge einliefern",
    description=(
        "Liefert Dateien und/oder einen Text als Eingänge in den Posteingang der Kommune des "
        "API-Schlüssels (Kanal „api“; Kopf `Authorization: Bearer rh_…` oder `X-API-Key`).\n\n"
        "* `multipart/form-data`: Felder `files` (mehrfach), optional `text`, `subject`, "
        "`sender_name`, `sender_contact`, `address`, `lat`/`long`. Jede Datei wird ein Vorgang, "
        "der Text ebenfalls.\n"
        "* `application/json`: `{text, subject, sender_name, sender_contact, address, lat, long}`.\n\n"
        "Dasselbe Original ein zweites Mal ergibt keinen neuen Vorgang (`duplicate: true`). "
        "Eine zu große Datei wird mit Fehlertext abgewiesen, die übrigen werden trotzdem "
        "angenommen; nur wenn gar nichts angenommen wurde, antwortet die API mit 413 bzw. 400. "
        "Danach läuft die Vorprüfung (Zuordnung, Felder, Dringlichkeit) im Hintergrund; ihren "
        "Stand zeigt `status_url`."
    ),
    response_model=list[ItemReceipt],
    responses={
        201: {"content": {"application/json": {"example": RECEIPTS_EXAMPLE}}},
        400: {"description": "Leere oder fehlerhafte Eingabe"},
        401: {"description": "API-Schlüssel fehlt oder gilt nicht für den Kanal „api“"},
        413: {"description": "Alle Dateien waren zu groß"},
        415: {"description": "Weder multipart/form-data noch JSON"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": MULTIPART_SCHEMA},
                "application/json": {"schema": ItemIn.model_json_schema()},
            },
        }
    },
)
async def post_items(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    bearer: BearerDep,
    header: HeaderDep,
) -> Response:
    found = await run_in_threadpool(admit_key, request, session, given_key(bearer, header))
    if isinstance(found, Response):
        return found
    _key, tenant = found
    max_bytes = settings.inbox.max_upload_mb * 1024 * 1024
    store = OriginalStore(settings.originals_dir)
    results: list[Stored] = []
    try:
        # One item at a time: read, store, let go of its bytes.
        async for entry in _entries(request, max_bytes, settings.inbox.max_files_per_upload):
            results.append(await run_in_threadpool(store_item, session, tenant, entry, store))
    except _BadInput as exc:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)
    if not results:
        return JSONResponse(
            {"detail": "Der Eingang ist leer: bitte Dateien (`files`) oder `text` senden."},
            status_code=400,
        )

    def work() -> None:
        session.commit()
        queue_triage(settings, new_case_ids(results))

    await run_in_threadpool(work)
    receipts = [
        ItemReceipt(
            filename=r.filename,
            case_id=r.case_id,
            reference=r.reference,
            duplicate=r.duplicate,
            status_url=f"/api/v1/inbox/items/{r.case_id}" if r.case_id else None,
            error=r.error,
        ).model_dump()
        for r in results
    ]
    if any(r.case_id for r in results):
        return JSONResponse(receipts, status_code=201)
    status = 413 if any(r.too_big for r in results) else 400
    detail = next((r.error for r in results if r.error), "Nichts angenommen.")
    return JSONResponse({"detail": detail, "items": receipts}, status_code=status)


def _status(session: Session, case: Case) -> ItemStatus:
    routing = review.latest_suggestion(session, case, "routing")
    candidates = (routing.output or {}).get("candidates") or [] if routing else []
    top = candidates[0] if candidates else None
    triage = None
    if case.triaged_at is not None:
        triage = TriagePublic(
            org_unit=case.org_unit.name if case.org_unit else None,
            org_unit_code=case.org_unit.code if case.org_unit else None,
            service=case.service.name if case.service else None,
            request_type=case.request_type,
            urgency=case.urgency,
            flags=case.needs_review_reason.split("\n") if case.needs_review_reason else [],
            suggestion=SuggestionPublic(
                org_unit=top["unit_name"],
                org_unit_code=top["unit_code"],
                service=top.get("service_name"),
                confidence=float(top["probability"]),
                source=str(top.get("source", "")),
            )
            if top
            else None,
        )
    return ItemStatus(
        case_id=case.id,
        reference=case.reference,
        status=CaseStatus(case.status),
        status_label=STATUS_LABELS[CaseStatus(case.status)],
        received_at=case.received_at,
        triaged=case.triaged_at is not None,
        triaged_at=case.triaged_at,
        triage=triage,
    )


@router.get(
    "/items/{case_id}",
    summary="Stand eines Eingangs",
    description=(
        "Status und Ergebnis der Vorprüfung (Amt, Leistung, Anliegenart, Dringlichkeit, "
        "Prüfhinweise, bester Zuordnungsvorschlag) eines Eingangs der eigenen Kommune. Mit "
        "API-Schlüssel (Kanal „api“) oder als angemeldete Person (dann nur Vorgänge, die sie "
        "sehen darf). Ein Vorgang einer anderen Kommune gilt als nicht vorhanden (404)."
    ),
    response_model=ItemStatus,
    responses={401: {"description": "Weder API-Schlüssel noch Anmeldung"}, 404: {}},
)
def get_item(
    case_id: int, request: Request, session: SessionDep, bearer: BearerDep, header: HeaderDep
) -> Response | ItemStatus:
    given = given_key(bearer, header)
    if given:
        found = admit_key(request, session, given)
        if isinstance(found, Response):
            return found
        # A channel key sees the status of its tenant's items, never of confidential cases.
        case = session.scalar(
            select(Case).where(
                Case.id == case_id, Case.tenant_id == found[1].id, not_confidential()
            )
        )
    else:
        login = lookup_session(
            session,
            session_token(request),
            idle_s=request.app.state.settings.session_idle_s,
        )
        if login is None:
            return _unauthorized()
        case = session.scalar(visible_cases(session, login[1]).where(Case.id == case_id))
    if case is None:
        raise NotFoundError(f"Einen Eingang {case_id} gibt es für diesen Zugang nicht.")
    return _status(session, case)
