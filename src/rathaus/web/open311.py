"""HTTP shell of the Open311 GeoReport v2 server under ``/open311/v2/`` (JSON and XML)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core import apikeys
from rathaus.core.models import Case, Tenant
from rathaus.core.storage import OriginalStore
from rathaus.inbox.channels import open311
from rathaus.inbox.channels.open311 import Open311Error
from rathaus.web.deps import SessionDep, SettingsDep
from rathaus.web.inbox_views import queue_triage
from rathaus.web.limits import limit_by_address

# Public: every request counts against the client address's limit (limits.open311_per_minute).
router = APIRouter(
    prefix="/open311/v2",
    tags=["Open311 GeoReport v2"],
    dependencies=[Depends(limit_by_address("open311"))],
    responses={429: {"description": "Zu viele Anfragen; `Retry-After` nennt die Sekunden"}},
)

FORMATS = ("json", "xml")
MAX_FORM_BYTES = 64 * 1024


def _respond(
    fmt: str, root: str, item: str, rows: list[dict[str, Any]], status: int = 200
) -> Response:
    if fmt == "xml":
        return Response(
            open311.to_xml(root, item, rows), status_code=status, media_type="application/xml"
        )
    return JSONResponse(rows, status_code=status)


def _error(fmt: str, exc: Open311Error) -> Response:
    return _respond(fmt if fmt in FORMATS else "json", "errors", "error", exc.as_list(), exc.status)


def _tenant(session: Session, settings: SettingsDep, params: dict[str, str]) -> Tenant:
    slug = (params.get("jurisdiction_id") or settings.default_tenant).strip()
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug, Tenant.is_active))
    if tenant is None:
        raise Open311Error(
            404, f"Die Zuständigkeit „{slug[:60]}“ (jurisdiction_id) gibt es hier nicht."
        )
    return tenant


def _handle(fmt: str, call: Callable[[], Response]) -> Response:
    if fmt not in FORMATS:
        return _error("json", Open311Error(404, "Format nicht unterstützt: bitte .json oder .xml."))
    try:
        return call()
    except Open311Error as exc:
        return _error(fmt, exc)


@router.get("/services.{fmt}", summary="Dienste, für die Meldungen angenommen werden")
def services(fmt: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    params = dict(request.query_params)
    return _handle(
        fmt,
        lambda: _respond(
            fmt,
            "services",
            "service",
            open311.list_services(session, _tenant(session, settings, params)),
        ),
    )


@router.get("/services/{code}.{fmt}", summary="Definition eines Dienstes")
def service_definition(
    code: str, fmt: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    params = dict(request.query_params)

    def call() -> Response:
        definition = open311.service_definition(session, _tenant(session, settings, params), code)
        if fmt == "xml":
            return Response(
                open311.to_xml("service_definition", "service", [definition]),
                media_type="application/xml",
            )
        return JSONResponse(definition)

    return _handle(fmt, call)


@router.post("/requests.{fmt}", summary="Meldung einreichen (api_key erforderlich)")
async def post_request(
    fmt: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        return _error(fmt, Open311Error(413, "Die Meldung ist zu groß (höchstens 64 kB)."))
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            raw = await request.json()
        except ValueError:
            return _error(fmt, Open311Error(400, "Der Inhalt ist kein gültiges JSON."))
        params = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    else:
        form = await request.form()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
    params.update({k: v for k, v in request.query_params.items() if k not in params})

    def call() -> Response:
        tenant = _tenant(session, settings, params)
        key = apikeys.authenticate(session, key=params.get("api_key"), channel="open311")
        if key is None or key.tenant_id != tenant.id:
            raise Open311Error(403, "Gültiger „api_key“ fehlt. Schlüssel gibt die Kommune aus.")
        rows = open311.submit(session, tenant, params, store=OriginalStore(settings.originals_dir))
        case_id = session.scalar(
            select(Case.id).where(
                Case.tenant_id == tenant.id,
                Case.reference == rows[0]["service_request_id"],
                Case.triaged_at.is_(None),
            )
        )
        session.commit()  # the worker must see the case before it triages it
        queue_triage(settings, [case_id] if case_id else [])
        return _respond(fmt, "service_requests", "request", rows, status=201)

    return _handle(fmt, call)


@router.get("/requests.{fmt}", summary="Meldungen abfragen")
def get_requests(
    fmt: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    params = dict(request.query_params)
    return _handle(
        fmt,
        lambda: _respond(
            fmt,
            "service_requests",
            "request",
            open311.query_requests(session, _tenant(session, settings, params), params),
        ),
    )


@router.get("/requests/{request_id}.{fmt}", summary="Eine Meldung")
def get_request(
    request_id: str, fmt: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    params = dict(request.query_params)
    return _handle(
        fmt,
        lambda: _respond(
            fmt,
            "service_requests",
            "request",
            open311.get_request(session, _tenant(session, settings, params), request_id),
        ),
    )
