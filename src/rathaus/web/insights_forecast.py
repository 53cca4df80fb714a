"""Lagebild: Prognose des Eingangsvolumens – page, export and JSON API.

Page ``/lagebild/prognose`` (choose a source, horizon and resolution; chart with history,
forecast and 80/95 % bands, the back-test error beside it, the table, CSV/XLSX export, the
staffing view, and the import form for count series). Viewing needs ``VIEW_INSIGHTS``;
importing or deleting a data set ``MANAGE_INSIGHTS`` and the CSRF token; deleting also the
password (:mod:`rathaus.web.reauth`), in the page and in the API. The JSON API under
``/api/v1/lagebild/prognose`` takes a staff session like the other Lagebild APIs (state-changing
requests with the ``X-CSRF-Token`` header).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.roles import Permission, permissions_of
from rathaus.core.storage import OriginalStore
from rathaus.insights.charts import Band, Line, line_chart
from rathaus.insights.export import table_response
from rathaus.insights.forecast import DEFAULT_HORIZON, MAX_HORIZON, WEEKDAYS
from rathaus.web import reauth, reauth_step
from rathaus.web.deps import CsrfDep, CurrentTenant, CurrentUser, SessionDep, SettingsDep, require
from rathaus.web.inbox_views import read_upload
from rathaus.web.insights_views import VIEW, nav_context
from rathaus.web.templating import render

router = APIRouter()

MANAGE = Depends(require(Permission.MANAGE_INSIGHTS))
API = "/api/v1/lagebild/prognose"
PAGE = "/lagebild/prognose"
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
HISTORY_SHOWN = {"tag": 56, "woche": 26}
FREQ_LABELS = {"tag": "Tage", "woche": "Wochen"}


# -- shared ----------------------------------------------------------------------------------


def _run(
    session: Any, tenant: Any, source: str, horizon: int | None, freq: str, rate: float | None
) -> Any:
    from rathaus.insights.forecast_service import run_forecast

    return run_forecast(
        session,
        tenant,
        source,
        horizon=horizon or DEFAULT_HORIZON.get(freq, 28),
        freq=freq,
        cases_per_person_day=rate,
    )


def _rate(text: str | None) -> float | None:
    from rathaus.insights.forecast import ForecastError

    if text is None or not text.strip():
        return None
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        raise ForecastError(
            f"„{text.strip()[:20]}“ ist keine Zahl. Bitte im Feld „Fälle je Personentag“ z. B. "
            "12 oder 7,5 angeben."
        ) from None
    if not value > 0:
        raise ForecastError("Bitte im Feld „Fälle je Personentag“ eine Zahl größer als 0 angeben.")
    return value


def _horizon(text: str | None) -> int | None:
    from rathaus.insights.forecast import ForecastError

    if text is None or not str(text).strip():
        return None
    try:
        return int(str(text).strip())
    except ValueError:
        raise ForecastError(
            f"„{str(text)[:20]}“ ist keine ganze Zahl. Bitte beim Horizont z. B. 28 angeben."
        ) from None


def _chart(result: Any) -> Any:
    fc = result.forecast
    shown = fc.history[-HISTORY_SHOWN[fc.freq] :]
    fmt = "%d.%m." if fc.freq == "tag" else "KW %V"
    labels = [d.strftime(fmt) for d, _ in shown] + [r.start.strftime(fmt) for r in fc.rows]
    pad: list[float | None] = [None] * len(shown)
    last = shown[-1][1] if shown else None
    history = [v for _, v in shown] + [None] * len(fc.rows)
    # The forecast line starts at the last observed value so the two lines join.
    expected = (
        pad[:-1] + [last] + [r.expected for r in fc.rows]
        if shown
        else [r.expected for r in fc.rows]
    )
    unit = "je Tag" if fc.freq == "tag" else "je Woche"
    return line_chart(
        labels,
        [Line("Eingänge", history), Line("Prognose", expected, dashed=True)],
        bands=[
            Band(
                "80-%-Intervall",
                pad + [r.lower80 for r in fc.rows],
                pad + [r.upper80 for r in fc.rows],
            ),
            Band(
                "95-%-Intervall",
                pad + [r.lower95 for r in fc.rows],
                pad + [r.upper95 for r in fc.rows],
            ),
        ],
        marker_index=len(shown) if shown else None,
        marker_label="Prognose",
        title=f"Eingänge {unit}: {fc.series} – Vergangenheit und Prognose",
        y_label=f"Eingänge {unit}",
    )


def _can_manage(user: Any) -> bool:
    return Permission.MANAGE_INSIGHTS in permissions_of(user.roles)


# -- page ------------------------------------------------------------------------------------


def _page(
    request: Request,
    tenant: Any,
    user: Any,
    session: Any,
    *,
    form: dict[str, str],
    status_code: int = 200,
    **context: Any,
) -> Response:
    from rathaus.insights.forecast_data import dataset_info, datasets, list_sources

    sources = list_sources(session, tenant.id)
    groups: dict[str, list[Any]] = {}
    for source in sources:
        groups.setdefault(source.group, []).append(source)
    base = nav_context(
        tenant,
        form=form,
        source_groups=groups,
        datasets=[dataset_info(d) for d in datasets(session, tenant.id)],
        can_manage=_can_manage(user),
        max_horizon=MAX_HORIZON,
        freq_labels=FREQ_LABELS,
        result=None,
        error=None,
        import_error=None,
        message=request.query_params.get("importiert"),
        reauth=reauth.state(request),
        step=None,
    )
    return render(request, "insights_forecast.html", base | context, status_code=status_code)


@router.get(PAGE, dependencies=[VIEW], include_in_schema=False)
def page(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    quelle: str = "alle",
    horizont: str | None = None,
    aufloesung: str = "tag",
    faelle_je_personentag: str | None = None,
) -> Response:
    form = {
        "quelle": quelle,
        "horizont": horizont or "",
        "aufloesung": aufloesung,
        "faelle_je_personentag": faelle_je_personentag or "",
    }
    try:
        result = _run(
            session, tenant, quelle, _horizon(horizont), aufloesung, _rate(faelle_je_personentag)
        )
    except RathausError as exc:
        return _page(request, tenant, user, session, form=form, error=exc.message)
    from rathaus.insights.forecast_service import export_table, staffing_table

    headers, rows = export_table(result)
    query = urlencode({k: v for k, v in form.items() if v})
    return _page(
        request,
        tenant,
        user,
        session,
        form=form | {"horizont": str(len(result.forecast.rows))},
        result=result,
        chart=_chart(result),
        headers=headers,
        rows=rows,
        staffing=staffing_table(result) if result.staffing is not None else None,
        query=query,
        weekdays=WEEKDAYS,
        weekday_factors=list(zip(WEEKDAYS, result.forecast.weekday_factors, strict=True)),
    )


@router.get(f"{PAGE}/export", dependencies=[VIEW], include_in_schema=False)
def export(
    tenant: CurrentTenant,
    session: SessionDep,
    quelle: str = "alle",
    horizont: str | None = None,
    aufloesung: str = "tag",
    faelle_je_personentag: str | None = None,
    format: str = "csv",  # noqa: A002 - the query parameter's name
    tabelle: str = "prognose",
) -> Response:
    from rathaus.insights.forecast_service import export_table, staffing_table

    result = _run(
        session, tenant, quelle, _horizon(horizont), aufloesung, _rate(faelle_je_personentag)
    )
    if tabelle == "personal":
        if result.staffing is None:
            raise RathausError("Für den Personalbedarf bitte „Fälle je Personentag“ angeben.")
        headers, rows = staffing_table(result)
    else:
        headers, rows = export_table(result)
    name = f"prognose-{result.forecast.series}-{aufloesung}-{dt.date.today():%Y%m%d}"
    if tabelle == "personal":
        name = "personalbedarf-" + name.removeprefix("prognose-")
    return table_response(format, name, headers, rows)


async def _import(
    session: Any,
    settings: Any,
    tenant_id: int,
    actor: str,
    upload: Any,
    *,
    name: str,
    layout: str,
    mapping: dict[str, str],
) -> Any:
    from rathaus.insights.forecast_data import import_series

    if upload is None or not getattr(upload, "filename", None):
        raise RathausError("Bitte eine Datei wählen (CSV oder XLSX).")
    received = await read_upload(upload, MAX_UPLOAD_BYTES)
    if received.error or received.data is None:
        raise RathausError(received.error or "Die Datei ist leer.")
    dataset = await run_in_threadpool(
        import_series,
        session,
        OriginalStore(settings.originals_dir),
        tenant_id=tenant_id,
        data=received.data,
        filename=received.filename,
        name=name,
        mapping=mapping,
        layout=layout or "auto",
        created_by=actor,
    )
    session.commit()
    return dataset


@router.post(f"{PAGE}/import", dependencies=[MANAGE, CsrfDep], include_in_schema=False)
async def import_page(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    mapping = {
        "datum": values.get("spalte_datum", "").strip(),
        "reihe": values.get("spalte_reihe", "").strip(),
        "anzahl": values.get("spalte_anzahl", "").strip(),
    }
    try:
        dataset = await _import(
            session,
            settings,
            tenant.id,
            user.username,
            form.get("datei"),
            name=values.get("name", ""),
            layout=values.get("format", "auto"),
            mapping={k: v for k, v in mapping.items() if v},
        )
    except RathausError as exc:
        session.rollback()
        return _page(
            request,
            tenant,
            user,
            session,
            form={
                "quelle": "alle",
                "horizont": "",
                "aufloesung": "tag",
                "faelle_je_personentag": "",
            },
            import_error=exc.message,
            import_form=values,
            status_code=422,
        )
    first = sorted(dataset.summary["series"])[0]
    target = urlencode({"quelle": f"datensatz:{dataset.id}:{first}", "importiert": dataset.name})
    return RedirectResponse(f"{PAGE}?{target}", status_code=303)


def _dataset(session: Any, tenant_id: int, dataset_id: int) -> Any:
    """The municipality's imported data set, or :class:`NotFoundError` (before the password is
    asked for, so that a wrong number costs no attempt)."""
    from rathaus.insights.forecast_data import datasets

    for dataset in datasets(session, tenant_id):
        if dataset.id == dataset_id:
            return dataset
    raise NotFoundError(f"Den Datensatz Nr. {dataset_id} gibt es nicht.")


def _confirm_delete(
    request: Request, session: Any, user: Any, password: str, step: str | None = None
) -> tuple[reauth.Gate, str]:
    """The password check before deleting a data set (:mod:`rathaus.web.reauth`), for the page
    (``step``: the list's card) and the API alike: the API takes the same staff session, so it
    would otherwise be a way around the check. Returns the gate and the error to show."""
    return reauth_step.confirm_without_command(
        request,
        session,
        user,
        password=password,
        action="prognose_datensatz_loeschen",
        what="das Löschen",
        step=step,
    )


FORM_DEFAULTS = {"quelle": "alle", "horizont": "", "aufloesung": "tag", "faelle_je_personentag": ""}


@router.post(
    f"{PAGE}/datensatz/{{dataset_id}}/loeschen",
    dependencies=[MANAGE, CsrfDep],
    include_in_schema=False,
)
def delete_page(
    request: Request,
    dataset_id: int,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    passwort: Annotated[str, Form(max_length=500)] = "",
    schritt: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Delete after the password; the list's button asks on a card first
    (:mod:`rathaus.web.reauth_step`) unless this session confirmed in the last minutes."""
    from rathaus.insights.forecast_data import delete_dataset

    dataset = _dataset(session, tenant.id, dataset_id)
    gate, error = _confirm_delete(request, session, user, passwort, step=schritt)
    if not gate.ok:
        step = {
            "id": "datensatz-loeschen",
            "title": f"Datensatz „{dataset.name}“ löschen",
            "text": "Die Zeitreihen dieses Datensatzes stehen danach nicht mehr zur Prognose "
            "bereit; die hochgeladene Datei bleibt im Dateispeicher. Ein erneuter Import legt "
            "sie wieder an.",
            "url": f"{PAGE}/datensatz/{dataset.id}/loeschen",
            "hidden": [],
            "action": "datensatz",
            "when": " das Löschen",
            "button": "Datensatz endgültig löschen",
            "back": PAGE,
        }
        page = _page(
            request,
            tenant,
            user,
            session,
            form=FORM_DEFAULTS,
            status_code=gate.status_code,
            reauth=reauth.state(request, action="datensatz", error=error),
            step=step,
        )
        return gate.finish(request, page)
    delete_dataset(session, tenant.id, dataset_id)
    session.commit()
    return gate.finish(request, RedirectResponse(PAGE, status_code=303))


# -- JSON API --------------------------------------------------------------------------------


class SourcePublic(BaseModel):
    key: str = Field(description="Für den Parameter „quelle“")
    label: str
    group: str


class BacktestPublic(BaseModel):
    mase: float | None = Field(
        description="MAE der Prognose ÷ MAE der saisonal-naiven Prognose (unter 1 ist besser)"
    )
    mae: float | None = Field(description="Mittlerer absoluter Fehler (Eingänge je Zeitraum)")
    naive_mae: float | None
    coverage80: float | None = Field(description="Anteil tatsächlicher Werte im 80-%-Intervall")
    coverage95: float | None
    origins: int = Field(description="Zahl der Prognose-Ursprünge im Rückblick")
    points: int
    interval_points: int
    horizon: int


class ForecastRowPublic(BaseModel):
    start: dt.date
    end: dt.date
    expected: float = Field(description="Erwartete Eingänge")
    lower80: float
    upper80: float
    lower95: float
    upper95: float
    holidays: list[str]


class HistoryPointPublic(BaseModel):
    start: dt.date
    value: float | None


class StaffingPublic(BaseModel):
    week_start: dt.date
    cases: float
    person_days: float = Field(description="Erwartete Eingänge ÷ Fälle je Personentag")
    lower80: float
    upper80: float
    lower95: float
    upper95: float


class ForecastPublic(BaseModel):
    source: str
    series: str
    freq: str = Field(description="tag oder woche")
    land: str = Field(description="Bundesland der Feiertage")
    history: list[HistoryPointPublic]
    forecast: list[ForecastRowPublic]
    backtest: BacktestPublic
    model: dict[str, Any]
    notes: list[str]
    cases_per_person_day: float | None
    staffing: list[StaffingPublic] | None


class DatasetPublic(BaseModel):
    id: int
    name: str
    filename: str
    rows: int
    format: str | None
    columns: dict[str, str]
    first_day: str | None
    last_day: str | None
    series: dict[str, dict[str, Any]]
    original_sha256: str
    created_by: str
    created_at: str | None


def _error(message: str, status: int = 422) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


@router.get(
    f"{API}/quellen",
    dependencies=[VIEW],
    tags=["Lagebild"],
    summary="Zeitreihen, die prognostiziert werden können",
)
def api_sources(tenant: CurrentTenant, session: SessionDep) -> list[SourcePublic]:
    from rathaus.insights.forecast_data import list_sources

    return [
        SourcePublic(key=s.key, label=s.label, group=s.group)
        for s in list_sources(session, tenant.id)
    ]


@router.get(
    API,
    dependencies=[VIEW],
    tags=["Lagebild"],
    summary="Prognose des Eingangsvolumens mit 80-/95-%-Intervallen und Rückblick-Fehler",
    response_model=ForecastPublic,
    responses={
        401: {"description": "Nicht angemeldet"},
        403: {"description": "Berechtigung „Lagebild ansehen“ fehlt"},
        404: {"description": "Quelle unbekannt"},
        422: {"description": "Zeitreihe zu kurz, Horizont oder Eingabe ungültig"},
    },
)
def api_forecast(
    tenant: CurrentTenant,
    session: SessionDep,
    quelle: Annotated[
        str, Query(description="alle, amt:<Nr.>, leistung:<Nr.> oder datensatz:<Nr.>:<Reihe>")
    ] = "alle",
    horizont: Annotated[
        int | None, Query(ge=1, le=184, description="Tage (≤ 184) oder Wochen (≤ 52)")
    ] = None,
    aufloesung: Annotated[str, Query(pattern="^(tag|woche)$")] = "tag",
    faelle_je_personentag: Annotated[
        float | None, Query(gt=0, description="Für den Personalbedarf")
    ] = None,
    vergangenheit: Annotated[
        int | None,
        Query(
            ge=0,
            le=5000,
            description="So viele Zeiträume der Vergangenheit mitliefern (Standard: 56 Tage bzw. 26 Wochen)",
        ),
    ] = None,
) -> Any:
    try:
        result = _run(session, tenant, quelle, horizont, aufloesung, faelle_je_personentag)
    except NotFoundError as exc:
        return _error(exc.message, 404)
    except RathausError as exc:
        return _error(exc.message)
    shown = HISTORY_SHOWN[aufloesung] if vergangenheit is None else vergangenheit
    return ForecastPublic(**result.to_dict(history_periods=shown))


@router.get(
    f"{API}/datensaetze",
    dependencies=[VIEW],
    tags=["Lagebild"],
    summary="Importierte Zeitreihen-Datensätze",
)
def api_datasets(tenant: CurrentTenant, session: SessionDep) -> list[DatasetPublic]:
    from rathaus.insights.forecast_data import dataset_info, datasets

    return [DatasetPublic(**dataset_info(d)) for d in datasets(session, tenant.id)]


@router.post(
    f"{API}/datensaetze",
    dependencies=[MANAGE, CsrfDep],
    tags=["Lagebild"],
    summary="Zeitreihe importieren (CSV/XLSX, aggregiert oder eine Zeile je Anliegen)",
    status_code=201,
    response_model=DatasetPublic,
    responses={
        401: {"description": "Nicht angemeldet"},
        403: {"description": "Berechtigung „Lagebild verwalten“ oder Kopf „X-CSRF-Token“ fehlt"},
        422: {
            "description": "Datei fehlerhaft; die Meldung nennt Zeile und Feld, nichts wurde gespeichert"
        },
    },
)
async def api_import(
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    datei: Annotated[UploadFile, File(description="CSV (auch .csv.gz) oder XLSX")],
    name: Annotated[str, Form(max_length=300)] = "",
    format: Annotated[str, Form(pattern="^(auto|aggregiert|einzeln)$")] = "auto",  # noqa: A002
    spalte_datum: Annotated[str, Form(max_length=200)] = "",
    spalte_reihe: Annotated[str, Form(max_length=200)] = "",
    spalte_anzahl: Annotated[str, Form(max_length=200)] = "",
) -> Any:
    from rathaus.insights.forecast_data import dataset_info

    mapping = {"datum": spalte_datum, "reihe": spalte_reihe, "anzahl": spalte_anzahl}
    try:
        dataset = await _import(
            session,
            settings,
            tenant.id,
            user.username,
            datei,
            name=name,
            layout=format,
            mapping={k: v.strip() for k, v in mapping.items() if v.strip()},
        )
    except RathausError as exc:
        session.rollback()
        return _error(exc.message)
    return JSONResponse(
        DatasetPublic(**dataset_info(dataset)).model_dump(mode="json"), status_code=201
    )


class DeleteConfirmation(BaseModel):
    passwort: str = Field(
        "",
        max_length=500,
        description="Das eigene Passwort; nicht nötig, wenn diese Sitzung es in den letzten "
        "5 Minuten bestätigt hat",
    )


@router.delete(
    f"{API}/datensaetze/{{dataset_id}}",
    dependencies=[MANAGE, CsrfDep],
    tags=["Lagebild"],
    summary="Zeitreihen-Datensatz löschen (das Original bleibt im Dateispeicher)",
    description="Verlangt wie die Oberfläche das Passwort (Feld „passwort“ im JSON-Körper), "
    "außer die Sitzung hat es in den letzten 5 Minuten bestätigt.",
    status_code=204,
    responses={
        401: {"description": "Nicht angemeldet, oder Passwort fehlt bzw. ist falsch"},
        403: {
            "description": "Berechtigung fehlt, Kopf „X-CSRF-Token“ fehlt oder Konto ohne Passwort"
        },
        404: {"description": "Datensatz unbekannt"},
        429: {"description": "Zu viele Fehlversuche; „Retry-After“ nennt die Wartezeit"},
    },
)
def api_delete(
    request: Request,
    dataset_id: int,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    body: Annotated[DeleteConfirmation | None, Body()] = None,
) -> Response:
    from rathaus.insights.forecast_data import delete_dataset

    try:
        _dataset(session, tenant.id, dataset_id)
    except NotFoundError as exc:
        return _error(exc.message, 404)
    gate, error = _confirm_delete(request, session, user, body.passwort if body else "")
    if not gate.ok:
        return gate.finish(request, _error(error, gate.status_code))
    delete_dataset(session, tenant.id, dataset_id)
    session.commit()
    return gate.finish(request, Response(status_code=204))
