"""Lagebild: Winterdienst-Tourenplanung des Bauhofs – pages and JSON API.

A thin shell over :mod:`rathaus.insights.winter.service`. Viewing needs
``Permission.VIEW_INSIGHTS``; importing a network and starting a planning needs
``Permission.MANAGE_INSIGHTS`` (and the CSRF token: form field, or ``X-CSRF-Token`` for the
JSON API of a staff session). Planning runs as a background job; the page polls its status.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rathaus.core.errors import InvalidTransitionError, NotFoundError, RathausError
from rathaus.core.roles import Permission, permissions_of
from rathaus.insights.winter import service
from rathaus.web.deps import (
    CsrfDep,
    CurrentTenant,
    CurrentUser,
    SessionDep,
    SettingsDep,
    require,
)
from rathaus.web.inbox_views import read_upload
from rathaus.web.insights_views import VIEW, nav_context
from rathaus.web.templating import render

router = APIRouter()

MANAGE = Depends(require(Permission.MANAGE_INSIGHTS))
MAX_BYTES = 20 * 1024 * 1024
POLL_SECONDS = 2
BASE = "/lagebild/winterdienst"
API = "/api/v1/lagebild/winterdienst"


async def _read_upload(request: Request, fields: tuple[str, ...]) -> tuple[str, bytes, dict]:
    form = await request.form(max_files=2, max_fields=10)
    upload = next(
        (
            f
            for name in fields
            for f in form.getlist(name)
            if isinstance(f, UploadFile) and f.filename
        ),
        None,
    )
    if upload is None:
        raise RathausError("Bitte eine Netzdatei (ROAR-NET-JSON) auswählen.")
    received = await read_upload(upload, MAX_BYTES)
    if received.error:
        raise RathausError(received.error)
    return upload.filename or "netz.json", received.data, dict(form)


def _list_page(
    request: Request,
    session: Any,
    tenant: Any,
    user: Any,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    context = nav_context(
        tenant,
        plans=service.list_plans(session, tenant_id=tenant.id),
        can_manage=Permission.MANAGE_INSIGHTS in permissions_of(user.roles),
        error=error,
    )
    return render(request, "insights_winter.html", context, status_code=status_code)


@router.get(BASE, dependencies=[VIEW], include_in_schema=False)
def plans_page(
    request: Request, session: SessionDep, tenant: CurrentTenant, user: CurrentUser
) -> Response:
    return _list_page(request, session, tenant, user)


@router.post(BASE, dependencies=[CsrfDep, MANAGE], include_in_schema=False)
async def import_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    tenant: CurrentTenant,
    user: CurrentUser,
) -> Response:
    try:
        filename, data, form = await _read_upload(request, ("datei",))
        name = form.get("name") if isinstance(form.get("name"), str) else None
        plan = await run_in_threadpool(
            service.import_plan,
            session,
            settings=settings,
            tenant_id=tenant.id,
            user_name=user.username,
            filename=filename,
            data=data,
            name=name or None,
        )
        session.commit()
    except RathausError as exc:
        session.rollback()
        return _list_page(request, session, tenant, user, error=exc.message, status_code=422)
    return RedirectResponse(f"{BASE}/{plan.id}", status_code=303)


def _plan_context(plan: Any, tenant: Any, user: Any) -> dict[str, Any]:
    from rathaus.insights.winter import export
    from rathaus.insights.winter.layout import layout

    network = service.network_of(plan)
    ev = service.evaluation_of(plan)
    shape = layout(network)
    turns = export.turn_list(ev) if ev else []
    by_vehicle: dict[str, list[Any]] = {}
    for t in turns:
        by_vehicle.setdefault(t.vehicle, []).append(t)
    return nav_context(
        tenant,
        plan=plan,
        summary=network.summary(),
        warnings=network.warnings,
        ev=ev,
        stats=(plan.solution or {}).get("stats"),
        map_svg=export.svg_map(network, ev, shape),
        layout=shape,
        colour_names=export.COLOUR_NAMES,
        turns=by_vehicle,
        running=plan.status in service.RUNNING,
        poll_seconds=POLL_SECONDS,
        can_manage=Permission.MANAGE_INSIGHTS in permissions_of(user.roles),
        time_limit=(plan.options or {}).get("time_limit_s", service.DEFAULT_TIME_LIMIT_S),
        fmt=lambda v, d=1: service.fmt_num(v, d),
    )


@router.get(BASE + "/{plan_id}", dependencies=[VIEW], include_in_schema=False)
def plan_page(
    request: Request, plan_id: int, session: SessionDep, tenant: CurrentTenant, user: CurrentUser
) -> Response:
    plan = service.get_plan(session, tenant_id=tenant.id, plan_id=plan_id)
    return render(request, "insights_winter_plan.html", _plan_context(plan, tenant, user))


@router.get(BASE + "/{plan_id}/stand", dependencies=[VIEW], include_in_schema=False)
def plan_status(
    request: Request, plan_id: int, session: SessionDep, tenant: CurrentTenant, user: CurrentUser
) -> Response:
    """The status block alone, for HTMX polling; once finished, the page reloads."""
    plan = service.get_plan(session, tenant_id=tenant.id, plan_id=plan_id)
    context = {
        "plan": plan,
        "running": plan.status in service.RUNNING,
        "poll_seconds": POLL_SECONDS,
    }
    response = render(request, "insights_winter_status.html", context)
    if not context["running"] and request.headers.get("hx-request"):
        response.headers["HX-Refresh"] = "true"
    return response


@router.post(BASE + "/{plan_id}/planen", dependencies=[CsrfDep, MANAGE], include_in_schema=False)
async def plan_start(
    request: Request,
    plan_id: int,
    session: SessionDep,
    settings: SettingsDep,
    tenant: CurrentTenant,
    user: CurrentUser,
) -> Response:
    form = await request.form()
    try:
        await run_in_threadpool(
            service.start_planning,
            session,
            settings=settings,
            tenant_id=tenant.id,
            plan_id=plan_id,
            user_name=user.username,
            time_limit_s=form.get("zeitlimit") or service.DEFAULT_TIME_LIMIT_S,
        )
    except (InvalidTransitionError, RathausError) as exc:
        if isinstance(exc, NotFoundError):
            raise
        session.rollback()
        plan = service.get_plan(session, tenant_id=tenant.id, plan_id=plan_id)
        context = _plan_context(plan, tenant, user) | {"error": exc.message}
        return render(
            request,
            "insights_winter_plan.html",
            context,
            status_code=409 if isinstance(exc, InvalidTransitionError) else 422,
        )
    return RedirectResponse(f"{BASE}/{plan_id}", status_code=303)


@router.get(BASE + "/{plan_id}/export.{fmt}", dependencies=[VIEW], include_in_schema=False)
def plan_export(plan_id: int, fmt: str, session: SessionDep, tenant: CurrentTenant) -> Response:
    plan = service.get_plan(session, tenant_id=tenant.id, plan_id=plan_id)
    body, media, name = service.export_bytes(plan, fmt)
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


# -- JSON API -------------------------------------------------------------------------------------


@router.get(API, dependencies=[VIEW], tags=["Lagebild"], summary="Winterdienst: Pläne der Kommune")
def api_plans(session: SessionDep, tenant: CurrentTenant) -> list[dict[str, Any]]:
    """Alle Winterdienstpläne (neueste zuerst) mit Stand, Gesamtfahrzeit und Zulässigkeit."""
    return [service.plan_public(p) for p in service.list_plans(session, tenant_id=tenant.id)]


@router.post(
    API,
    dependencies=[CsrfDep, MANAGE],
    tags=["Lagebild"],
    status_code=201,
    summary="Winterdienst: Streckennetz importieren",
)
async def api_import(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    tenant: CurrentTenant,
    user: CurrentUser,
) -> Response:
    """Nimmt ein Streckennetz im ROAR-NET-Salzstreu-Format (`multipart/form-data`, Feld
    `file`, optional `name`) an, prüft es (fehlende Felder, unbekannte Knoten, nicht
    erreichbare Strecken – mit Namen) und legt einen Plan an. Fehler: 422 mit `detail`."""
    try:
        filename, data, form = await _read_upload(request, ("file", "datei"))
        name = form.get("name") if isinstance(form.get("name"), str) else None
        plan = await run_in_threadpool(
            service.import_plan,
            session,
            settings=settings,
            tenant_id=tenant.id,
            user_name=user.username,
            filename=filename,
            data=data,
            name=name or None,
        )
        session.commit()
    except RathausError as exc:
        session.rollback()
        body: dict[str, Any] = {"detail": exc.message}
        if hasattr(exc, "problems"):
            body["problems"] = exc.problems
        return JSONResponse(body, status_code=422)
    return JSONResponse(service.plan_public(plan, details=True), status_code=201)


@router.get(
    API + "/{plan_id}",
    dependencies=[VIEW],
    tags=["Lagebild"],
    summary="Winterdienst: Plan mit Touren und Prüfung",
)
def api_plan(plan_id: int, session: SessionDep, tenant: CurrentTenant) -> dict[str, Any]:
    """Stand, Netz-Kennzahlen, Touren (ROAR-NET-Lösungsformat), Zeiten und Salz je Fahrzeug,
    Zulässigkeit und Regelverstöße."""
    plan = service.get_plan(session, tenant_id=tenant.id, plan_id=plan_id)
    return service.plan_public(plan, details=True)


@router.post(
    API + "/{plan_id}/planen",
    dependencies=[CsrfDep, MANAGE],
    tags=["Lagebild"],
    status_code=202,
    summary="Winterdienst: Planung starten (Hintergrundauftrag)",
)
def api_start(
    plan_id: int,
    session: SessionDep,
    settings: SettingsDep,
    tenant: CurrentTenant,
    user: CurrentUser,
    zeitlimit: Annotated[
        int, Query(ge=1, le=service.MAX_TIME_LIMIT_S, description="Rechenzeit in Sekunden")
    ] = 60,
) -> Response:
    """Startet die Tourenberechnung im Hintergrund; den Stand zeigt `status_url`.
    Läuft bereits eine Berechnung: 409."""
    try:
        plan = service.start_planning(
            session,
            settings=settings,
            tenant_id=tenant.id,
            plan_id=plan_id,
            user_name=user.username,
            time_limit_s=zeitlimit,
        )
    except InvalidTransitionError as exc:
        return JSONResponse({"detail": exc.message}, status_code=409)
    return JSONResponse(service.plan_public(plan), status_code=202)


@router.get(
    API + "/{plan_id}/abbiegeliste",
    dependencies=[VIEW],
    tags=["Lagebild"],
    summary="Winterdienst: Abbiegeliste je Fahrzeug",
)
def api_turns(plan_id: int, session: SessionDep, tenant: CurrentTenant) -> list[dict[str, Any]]:
    """Die Anweisungen je Fahrzeug: streuen, Leerfahrt, Nachladen, Tourende."""
    from rathaus.insights.winter.export import TURN_HEADERS, turn_rows

    plan = service.get_plan(session, tenant_id=tenant.id, plan_id=plan_id)
    ev = service.evaluation_of(plan)
    if ev is None:
        raise RathausError(f"Der Plan {plan_id} hat noch keine Touren.")
    return [dict(zip(TURN_HEADERS, row, strict=True)) for row in turn_rows(ev)]
