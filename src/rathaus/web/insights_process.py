"""Lagebild: Prozessanalyse (Process Mining) – pages and JSON API.

Pages ``/lagebild/prozesse`` (data sets, the own case log, import form) and
``/lagebild/prozesse/{quelle}`` (map, variants, bottlenecks, rework, throughput; CSV/XLSX
export of every table, OCEL 2.0 download), where ``quelle`` is a data set number or ``eigen``.
JSON API under ``/api/v1/lagebild/prozesse`` for a staff session (like the other Lagebild
APIs): viewing needs ``VIEW_INSIGHTS``, importing and deleting ``MANAGE_INSIGHTS`` and the CSRF
token (form field, or ``X-CSRF-Token`` header for the API).

Waiting and throughput times are calendar time unless the query asks for office time
(``zeit=arbeitszeit&von=08:00&bis=16:00`` on the pages, ``time_mode=arbeitszeit&work_start=…
&work_end=…`` in the API), with the public holidays of the tenant's Land.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rathaus.core.errors import RathausError
from rathaus.core.roles import Permission, permissions_of
from rathaus.core.storage import OriginalStore
from rathaus.insights import eventlog_store as store
from rathaus.insights.charts import bar_chart, histogram_bins
from rathaus.insights.eventlog import DEFAULT_ZONE, FORMATS
from rathaus.insights.export import table_response
from rathaus.insights.process import ProcessAnalysis, analyse
from rathaus.insights.process_hours import DEFAULT_END, DEFAULT_START, working_hours
from rathaus.insights.process_map import map_data, render_map
from rathaus.insights.process_tables import TABLES, table
from rathaus.web.deps import CsrfDep, CurrentTenant, CurrentUser, SessionDep, SettingsDep, require
from rathaus.web.inbox_views import read_upload
from rathaus.web.insights_views import VIEW, nav_context
from rathaus.web.templating import render

router = APIRouter()

MANAGE = Depends(require(Permission.MANAGE_INSIGHTS))
MAX_UPLOAD_BYTES = 300 * 1024 * 1024
API = "/api/v1/lagebild/prozesse"
COLUMN_FIELDS = (
    ("case", "spalte_fall", "Fall-ID"),
    ("activity", "spalte_aktivitaet", "Aktivität"),
    ("timestamp", "spalte_zeit", "Zeitpunkt"),
    ("resource", "spalte_ressource", "Ressource (optional)"),
    ("group", "spalte_gruppe", "Gruppe (optional)"),
)


def _can_manage(user: Any) -> bool:
    return Permission.MANAGE_INSIGHTS in permissions_of(user.roles)


def _sources(session: Any, tenant_id: int) -> dict[str, Any]:
    return {
        "datasets": store.list_datasets(session, tenant_id),
        "own_count": store.own_log_count(session, tenant_id),
        "own_key": store.OWN_LOG,
        "own_name": store.OWN_LOG_NAME,
    }


def _analysis(
    session: Any,
    tenant: Any,
    source: str,
    min_count: int,
    top_variants: int | None,
    time: tuple[str | None, str | None, str | None] = (None, None, None),
) -> tuple[ProcessAnalysis, str]:
    """The analysis of ``source``; ``time`` is (mode, start, end) of the time basis (checked
    before the log is loaded, so a bad time fails fast with a German message)."""
    hours = working_hours(*time, land=tenant.land)
    log, title = store.load_source(session, tenant.id, source)
    return analyse(log, min_edge_count=min_count, top_variants=top_variants, hours=hours), title


# -- pages -------------------------------------------------------------------------------------


def _list_page(request: Request, tenant: Any, user: Any, session: Any, **extra: Any) -> Response:
    status = extra.pop("status_code", 200)
    defaults: dict[str, Any] = {
        **_sources(session, tenant.id),
        "can_manage": _can_manage(user),
        "formats": FORMATS,
        "column_fields": COLUMN_FIELDS,
        "default_zone": DEFAULT_ZONE,
        "form": {},
        "error": None,
    }
    context = nav_context(tenant, **(defaults | extra))
    return render(request, "insights_process.html", context, status_code=status)


@router.get("/lagebild/prozesse", dependencies=[VIEW], include_in_schema=False)
def page(
    request: Request, tenant: CurrentTenant, user: CurrentUser, session: SessionDep
) -> Response:
    return _list_page(request, tenant, user, session)


@router.post("/lagebild/prozesse", dependencies=[MANAGE, CsrfDep], include_in_schema=False)
async def import_page(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    try:
        dataset_id = await _import(
            request, form, values, tenant.id, user.username, session, settings
        )
    except RathausError as exc:
        session.rollback()
        return _list_page(
            request, tenant, user, session, form=values, error=exc.message, status_code=422
        )
    return RedirectResponse(f"/lagebild/prozesse/{dataset_id}", status_code=303)


async def _import(
    request: Request,
    form: Any,
    values: dict[str, str],
    tenant_id: int,
    actor: str,
    session: Any,
    settings: Any,
) -> int:
    upload = form.get("datei")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise RathausError("Bitte eine Datei wählen (CSV, XES oder OCEL 2.0).")
    received = await read_upload(upload, MAX_UPLOAD_BYTES)
    if received.error or received.data is None:
        raise RathausError(received.error or "Die Datei ist leer.")
    fmt = values.get("format") or None
    if fmt and fmt not in (*FORMATS, "auto"):
        raise RathausError(f"Unbekanntes Format „{fmt}“. Erlaubt sind: csv, xes, ocel.")
    mapping = {name: values.get(key, "").strip() for name, key, _ in COLUMN_FIELDS}
    result = await run_in_threadpool(
        store.import_event_log,
        session,
        tenant_id,
        received.data,
        filename=received.filename,
        name=values.get("name", "").strip(),
        fmt=None if fmt in (None, "auto") else fmt,
        mapping={k: v for k, v in mapping.items() if v},
        object_type=values.get("objekttyp", "").strip() or None,
        zone=values.get("zeitzone", "").strip() or None,
        store=OriginalStore(settings.originals_dir),
        actor=actor,
    )
    session.commit()
    return result.dataset.id


def _int_or_none(value: str | None) -> int | None:
    try:
        number = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is None or number > 0 else None


@router.get("/lagebild/prozesse/{source}", dependencies=[VIEW], include_in_schema=False)
def detail(
    request: Request,
    source: str,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    min: str | None = None,  # noqa: A002 - the query parameter's German-neutral name
    varianten: str | None = None,
    zeit: str | None = None,
    von: str | None = None,
    bis: str | None = None,
) -> Response:
    min_count = _int_or_none(min) or 1
    top = _int_or_none(varianten)
    time_error, requested = None, (zeit or "").strip().lower()
    try:
        working_hours(zeit, von, bis, land=tenant.land)
    except RathausError as exc:  # show calendar time, keep the typed values, say why
        time_error = f"{exc.message} Angezeigt wird deshalb Kalenderzeit."
        zeit = None
    analysis, title = _analysis(session, tenant, source, min_count, top, (zeit, von, bis))
    basis = analysis.time_basis
    svg, map_notes = render_map(analysis, title=f"Prozesslandkarte: {title}")
    day_unit = "Arbeitstage" if basis.business else "Tage"
    labels, counts = histogram_bins(
        [v / basis.day_s for v in analysis.throughput.values_s], bins=12
    )
    dataset = (
        None if source == store.OWN_LOG else store.get_dataset(session, tenant.id, int(source))
    )
    context = nav_context(
        tenant,
        source=source,
        title=title,
        dataset=dataset,
        analysis=analysis,
        map_svg=svg,
        map_json=map_data(analysis),
        notes=[*(dataset.summary.get("notes", []) if dataset else []), *analysis.notes, *map_notes],
        histogram=bar_chart(
            labels, counts, title=f"Durchlaufzeiten der Fälle ({day_unit})", unit=" Fälle"
        ),
        activity_chart=bar_chart(
            [a.name for a in analysis.activities[:15]],
            [a.events for a in analysis.activities[:15]],
            title="Häufigste Aktivitäten",
        ),
        tables=TABLES,
        fmt=basis.fmt,
        basis=basis,
        work_start=basis.start or von or DEFAULT_START,
        work_end=basis.end or bis or DEFAULT_END,
        time_error=time_error,
        chosen_mode="arbeitszeit" if requested == "arbeitszeit" else "kalender",
        min_count=min_count,
        top_variants=top,
        can_manage=_can_manage(user),
    )
    return render(request, "insights_process_detail.html", context)


@router.get(
    "/lagebild/prozesse/{source}/export/{name}", dependencies=[VIEW], include_in_schema=False
)
def export_table(
    source: str,
    name: str,
    tenant: CurrentTenant,
    session: SessionDep,
    format: str = "csv",  # noqa: A002 - the query parameter
    min: str | None = None,  # noqa: A002
    varianten: str | None = None,
    zeit: str | None = None,
    von: str | None = None,
    bis: str | None = None,
) -> Response:
    analysis, _ = _analysis(
        session,
        tenant,
        source,
        _int_or_none(min) or 1,
        _int_or_none(varianten),
        (zeit, von, bis),
    )
    headers, rows = table(analysis, name)
    suffix = "-arbeitszeit" if analysis.time_basis.business else ""
    return table_response(format, f"prozess-{source}-{name}{suffix}", headers, rows)


def _ocel_response(session: Any, tenant_id: int, source: str) -> Response:
    document = store.export_ocel(session, tenant_id, source)
    body = json.dumps(document, ensure_ascii=False, indent=1)
    return Response(
        body.encode("utf-8"),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="prozess-{source}.jsonocel"'},
    )


@router.get("/lagebild/prozesse/{source}/ocel", dependencies=[VIEW], include_in_schema=False)
def ocel_download(source: str, tenant: CurrentTenant, session: SessionDep) -> Response:
    return _ocel_response(session, tenant.id, source)


@router.post(
    "/lagebild/prozesse/{dataset_id}/loeschen",
    dependencies=[MANAGE, CsrfDep],
    include_in_schema=False,
)
def delete(
    dataset_id: int, tenant: CurrentTenant, user: CurrentUser, session: SessionDep
) -> Response:
    store.delete_dataset(session, tenant.id, dataset_id, user.username)
    return RedirectResponse("/lagebild/prozesse", status_code=303)


# -- JSON API ----------------------------------------------------------------------------------


def _dataset_json(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "filename": d.filename,
        "events": d.rows,
        "summary": d.summary,
        "mapping": d.mapping,
        "original_sha256": d.original_sha256,
        "created_at": d.created_at.isoformat(),
        "created_by": d.created_by,
        "url": f"{API}/{d.id}",
    }


@router.get(API, dependencies=[VIEW], tags=["Lagebild"], summary="Ereignisprotokolle auflisten")
def api_list(tenant: CurrentTenant, session: SessionDep) -> dict[str, Any]:
    return {
        "datasets": [_dataset_json(d) for d in store.list_datasets(session, tenant.id)],
        "own_log": {
            "key": store.OWN_LOG,
            "name": store.OWN_LOG_NAME,
            "events": store.own_log_count(session, tenant.id),
            "url": f"{API}/{store.OWN_LOG}",
        },
    }


@router.post(
    API,
    dependencies=[MANAGE, CsrfDep],
    tags=["Lagebild"],
    summary="Ereignisprotokoll importieren (CSV, XES, OCEL 2.0; multipart, Feld „datei“)",
    status_code=201,
)
async def api_import(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    try:
        dataset_id = await _import(
            request, form, values, tenant.id, user.username, session, settings
        )
    except RathausError as exc:
        session.rollback()
        return JSONResponse({"detail": exc.message}, status_code=422)
    dataset = store.get_dataset(session, tenant.id, dataset_id)
    return JSONResponse(_dataset_json(dataset), status_code=201)


@router.get(
    API + "/{source}",
    dependencies=[VIEW],
    tags=["Lagebild"],
    summary="Prozessanalyse eines Ereignisprotokolls (Nummer) oder des eigenen Protokolls (eigen)",
)
def api_analysis(
    source: str,
    tenant: CurrentTenant,
    session: SessionDep,
    min_edge_count: int = Query(1, ge=1, description="Übergänge seltener als das weglassen"),
    top_variants: int | None = Query(None, ge=1, description="Nur die k häufigsten Varianten"),
    time_mode: str = Query(
        "kalender",
        description="Zeitbasis der Warte- und Durchlaufzeiten: kalender oder arbeitszeit "
        "(Mo–Fr, ohne Feiertage des Landes der Kommune)",
    ),
    work_start: str = Query(DEFAULT_START, description="Beginn der Arbeitszeit (HH:MM)"),
    work_end: str = Query(DEFAULT_END, description="Ende der Arbeitszeit (HH:MM)"),
) -> dict[str, Any]:
    """A bad ``time_mode`` or time answers 400 with a German ``detail``."""
    analysis, title = _analysis(
        session, tenant, source, min_edge_count, top_variants, (time_mode, work_start, work_end)
    )
    return {"source": source, "title": title, **analysis.to_dict()}


@router.get(
    API + "/{source}/ocel",
    dependencies=[VIEW],
    tags=["Lagebild"],
    summary="Export als OCEL 2.0 (JSON)",
)
def api_ocel(source: str, tenant: CurrentTenant, session: SessionDep) -> Response:
    return _ocel_response(session, tenant.id, source)
