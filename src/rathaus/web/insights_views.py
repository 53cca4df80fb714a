"""The Lagebild under /lagebild: the Kennzahlen dashboard, its export and JSON API, and the
sub-navigation of the Lagebild functions.

Every Lagebild page extends ``insights_base.html`` and passes :func:`nav_context` so the
sub-navigation lists the functions; viewing needs ``Permission.VIEW_INSIGHTS``. A viewer sees
the departments of :func:`rathaus.insights.dashboard.visible_unit_ids` only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import OrgUnit
from rathaus.core.roles import Permission
from rathaus.insights import charts
from rathaus.insights.dashboard import BUCKETS, MIN_GROUP_SIZE, Period, compute, visible_unit_ids
from rathaus.insights.export import table_response
from rathaus.web.deps import CurrentTenant, CurrentUser, DatabaseDep, require
from rathaus.web.templating import render

router = APIRouter()

VIEW = Depends(require(Permission.VIEW_INSIGHTS))

NAV = (
    ("/lagebild", "Kennzahlen"),
    ("/lagebild/prognose", "Prognose"),
    ("/lagebild/prozesse", "Prozesse"),
    ("/lagebild/buchungen", "Buchungsprüfung"),
    ("/lagebild/winterdienst", "Winterdienst"),
)


def nav_context(tenant: Any, **extra: Any) -> dict[str, Any]:
    """Template context every Lagebild page starts from."""
    return {"tenant": tenant, "insights_nav": NAV, **extra}


Von = Annotated[str | None, Query(alias="von", max_length=20, description="Beginn (inklusive)")]
Bis = Annotated[str | None, Query(alias="bis", max_length=20, description="Ende (inklusive)")]
Einteilung = Annotated[str | None, Query(alias="einteilung", description="tag, woche, monat")]
Fachbereich = Annotated[
    list[int] | None, Query(alias="fachbereich", description="Organisationseinheit(en)")
]


def _dashboard(
    database: Any,
    user: Any,
    von: str | None,
    bis: str | None,
    einteilung: str | None,
    fachbereich: list[int] | None,
) -> Any:
    period = Period.parse(von, bis, einteilung)
    with database.session() as session:
        allowed = visible_unit_ids(session, user)
        selected = [u for u in (fachbereich or []) if allowed is None or u in allowed]
        if fachbereich and not selected:
            raise RathausError("Für diesen Fachbereich haben Sie keine Berechtigung.")
        dashboard = compute(
            session,
            tenant_id=user.tenant_id,
            period=period,
            allowed_units=allowed,
            selected_units=selected,
        )
        units = [
            (u.id, u.name)
            for u in session.scalars(
                select(OrgUnit).where(OrgUnit.tenant_id == user.tenant_id).order_by(OrgUnit.name)
            )
            if allowed is None or u.id in allowed
        ]
    return dashboard, units


@router.get("/lagebild", dependencies=[VIEW], include_in_schema=False)
async def dashboard_page(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    database: DatabaseDep,
    von: Von = None,
    bis: Bis = None,
    einteilung: Einteilung = None,
    fachbereich: Fachbereich = None,
) -> Response:
    context = nav_context(
        tenant,
        buckets=BUCKETS,
        min_group=MIN_GROUP_SIZE,
        form={
            "von": von or "",
            "bis": bis or "",
            "einteilung": einteilung or "woche",
            "fachbereich": fachbereich or [],
        },
    )
    try:
        dashboard, units = await run_in_threadpool(
            _dashboard, database, user, von, bis, einteilung, fachbereich
        )
    except RathausError as exc:
        context |= {"error": exc.message, "units": []}
        return render(request, "insights_dashboard.html", context, status_code=422)
    labels = dashboard.labels
    context |= {
        "d": dashboard,
        "units": units,
        "tables": dashboard.tables(),
        "query": request.url.query,
        "volume_chart": charts.line_chart(
            labels,
            [charts.Line("Eingang gesamt", dashboard.volume_total)]
            + [charts.Line(name, values) for name, values in dashboard.volume.items()][:5],
            title="Eingang je Zeitabschnitt",
            y_label="Vorgänge",
        ),
        "backlog_chart": charts.line_chart(
            labels,
            [charts.Line("Offene Vorgänge am Ende des Abschnitts", dashboard.backlog)],
            title="Rückstand",
            y_label="offen",
        ),
        "channel_chart": charts.bar_chart(
            [c for c, _ in dashboard.by_channel],
            [n for _, n in dashboard.by_channel],
            title="Eingang nach Kanal",
        ),
    }
    return render(request, "insights_dashboard.html", context)


@router.get("/lagebild/export/{tabelle}", dependencies=[VIEW], include_in_schema=False)
async def dashboard_export(
    tabelle: str,
    user: CurrentUser,
    database: DatabaseDep,
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",
    von: Von = None,
    bis: Bis = None,
    einteilung: Einteilung = None,
    fachbereich: Fachbereich = None,
) -> Response:
    dashboard, _ = await run_in_threadpool(
        _dashboard, database, user, von, bis, einteilung, fachbereich
    )
    tables = dashboard.tables()
    if tabelle not in tables:
        raise NotFoundError(f"Unbekannte Tabelle „{tabelle}“. Erlaubt: {', '.join(tables)}.")
    _title, headers, rows = tables[tabelle]
    name = f"kennzahlen-{tabelle}-{dashboard.period.start}-{dashboard.period.end}"
    return table_response(format, name, headers, rows)


@router.get(
    "/api/v1/lagebild/kennzahlen",
    dependencies=[VIEW],
    tags=["Lagebild"],
    summary="Kennzahlen: Eingang, Rückstand, Bearbeitungszeiten, Fristen",
)
async def dashboard_api(
    user: CurrentUser,
    database: DatabaseDep,
    von: Von = None,
    bis: Bis = None,
    einteilung: Einteilung = None,
    fachbereich: Fachbereich = None,
) -> dict[str, Any]:
    """Die Kennzahlen des Zeitraums für die Fachbereiche, die der angemeldete Nutzer sehen darf.
    Personalbezogene Werte nur als Summe über Gruppen ab fünf Personen."""
    dashboard, _ = await run_in_threadpool(
        _dashboard, database, user, von, bis, einteilung, fachbereich
    )
    return dashboard.to_dict()
