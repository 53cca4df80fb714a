"""Lagebild: Buchungsprüfung der Kämmerei – the review queue page and its JSON API.

Page ``/lagebild/buchungen`` (``VIEW_INSIGHTS``): payment lists, import form, running the checks
and deciding flags need ``MANAGE_INSIGHTS`` and the CSRF token. JSON API under
``/api/v1/lagebild/buchungen`` with the staff session (state-changing calls with the
``X-CSRF-Token`` header).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rathaus.core.errors import RathausError
from rathaus.core.models import BookingFlag, InsightDataset
from rathaus.core.roles import Permission
from rathaus.core.storage import OriginalStore
from rathaus.insights import bookings
from rathaus.insights.booking_checks import KINDS, money
from rathaus.insights.charts import Line, line_chart
from rathaus.insights.export import table_response
from rathaus.web.deps import CsrfDep, CurrentTenant, CurrentUser, SessionDep, SettingsDep, require
from rathaus.web.inbox_views import read_upload
from rathaus.web.insights_views import VIEW, nav_context
from rathaus.web.templating import render

router = APIRouter()

MANAGE = Depends(require(Permission.MANAGE_INSIGHTS))
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
PAGE_SIZE = 100
MAPPING_FIELDS = tuple(bookings.FIELDS)


def _benford_chart(result: Any, title: str) -> Any:
    """Expected (Benford) and observed first-digit shares in %, as an inline SVG."""
    if not result.n:
        return None
    return line_chart(
        [str(d) for d in range(1, 10)],
        [
            Line("Erwartet (Benford)", [round(100 * e, 1) for e in result.expected], dashed=True),
            Line("Beobachtet", [round(100 * s, 1) for s in result.shares]),
        ],
        title=title,
        y_label="Anteil in %",
    )


def _dataset_view(session: Any, dataset: InsightDataset, **filters: Any) -> dict[str, Any]:
    page = max(1, int(filters.pop("page", 1) or 1))
    flags, total = bookings.list_flags(
        session, dataset, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **filters
    )
    result = bookings.dataset_benford(session, dataset)
    return {
        "dataset": dataset,
        "flags": flags,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "counts": bookings.flag_counts(session, dataset),
        "benford": result,
        "benford_chart": _benford_chart(result, f"Erste Ziffern: {dataset.name}"),
        "filters": filters,
    }


def _page(request: Request, tenant: Any, session: Any, **context: Any) -> Response:
    status = context.pop("status_code", 200)
    base = nav_context(
        tenant,
        datasets=bookings.datasets(session, tenant),
        kinds=KINDS,
        statuses=bookings.STATUSES,
        mapping_fields=bookings.FIELDS,
        money=money,
        error=None,
        dataset=None,
    )
    return render(request, "insights_bookings.html", base | context, status_code=status)


@router.get("/lagebild/buchungen", dependencies=[VIEW], include_in_schema=False)
def page(
    request: Request,
    tenant: CurrentTenant,
    session: SessionDep,
    datensatz: int | None = None,
    art: str = "",
    status: str = "",
    lieferant: str = "",
    seite: int = 1,
) -> Response:
    context: dict[str, Any] = {}
    found = bookings.datasets(session, tenant)
    if datensatz is None and found:
        datensatz = found[0].id
    if datensatz is not None:
        dataset = bookings.get_dataset(session, tenant, datensatz)
        context = _dataset_view(
            session, dataset, kind=art, status=status, supplier=lieferant, page=seite
        )
    return _page(request, tenant, session, **context)


async def _upload(request: Request) -> tuple[bytes, str, dict[str, str], bool, str]:
    form = await request.form()
    upload = form.get("datei")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise bookings.BookingError("Bitte eine Datei auswählen (CSV oder XLSX).")
    received = await read_upload(upload, MAX_UPLOAD_BYTES)
    if received.error:
        raise bookings.BookingError(received.error)
    data = received.data
    mapping = {f: str(form.get(f"spalte_{f}") or "").strip() for f in MAPPING_FIELDS}
    skip = str(form.get("ueberspringen") or "") in ("1", "on", "true", "ja")
    return data, upload.filename, mapping, skip, str(form.get("name") or "")


def _import(session: Any, tenant: Any, user: Any, settings: Any, upload: tuple) -> InsightDataset:  # type: ignore[type-arg]
    data, filename, mapping, skip, name = upload
    return bookings.import_payments(
        session,
        tenant=tenant,
        data=data,
        filename=filename,
        actor=user.username,
        store=OriginalStore(settings.originals_dir),
        name=name,
        mapping={k: v for k, v in mapping.items() if v},
        skip_invalid=skip,
    )


@router.post(
    "/lagebild/buchungen/import", dependencies=[VIEW, MANAGE, CsrfDep], include_in_schema=False
)
async def import_page(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    try:
        upload = await _upload(request)
        dataset = await run_in_threadpool(_import, session, tenant, user, settings, upload)
    except RathausError as exc:
        session.rollback()
        return _page(request, tenant, session, error=exc.message, status_code=422)
    session.commit()
    return RedirectResponse(f"/lagebild/buchungen?datensatz={dataset.id}", status_code=303)


def _form_config(tenant: Any, form: Any) -> Any:
    def number(name: str) -> float | None:
        value = str(form.get(name) or "").strip().replace(",", ".")
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            raise bookings.BookingError(f"„{value}“ ist keine Zahl (Feld {name}).") from None

    thresholds = str(form.get("wertgrenzen") or "").strip()
    near_days, split_days, new_amount = (
        number("tage_aehnlich"),
        number("tage_splitting"),
        number("neu_ab"),
    )
    return bookings.config_for(
        tenant,
        split_thresholds_cents=bookings.parse_thresholds(thresholds) if thresholds else None,
        near_days=int(near_days) if near_days is not None else None,
        near_tolerance_pct=number("toleranz"),
        split_days=int(split_days) if split_days is not None else None,
        new_amount_cents=round(new_amount * 100) if new_amount is not None else None,
    )


@router.post(
    "/lagebild/buchungen/{dataset_id}/pruefen",
    dependencies=[VIEW, MANAGE, CsrfDep],
    include_in_schema=False,
)
async def run_page(
    dataset_id: int,
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
) -> Response:
    form = await request.form()
    dataset = bookings.get_dataset(session, tenant, dataset_id)
    try:
        config = _form_config(tenant, form)
    except RathausError as exc:
        context = _dataset_view(session, dataset)
        return _page(request, tenant, session, error=exc.message, status_code=422, **context)
    await run_in_threadpool(
        bookings.run_checks,
        session,
        tenant=tenant,
        dataset=dataset,
        config=config,
        actor=user.username,
    )
    return RedirectResponse(f"/lagebild/buchungen?datensatz={dataset.id}", status_code=303)


@router.get("/lagebild/buchungen/hinweise/{flag_id}", dependencies=[VIEW], include_in_schema=False)
def flag_page(
    flag_id: int, request: Request, tenant: CurrentTenant, session: SessionDep
) -> Response:
    flag = bookings.get_flag(session, tenant, flag_id)
    dataset = bookings.get_dataset(session, tenant, flag.dataset_id)
    context = nav_context(
        tenant,
        flag=flag,
        dataset=dataset,
        payments=bookings.payments_of(session, flag),
        kinds=KINDS,
        statuses=bookings.STATUSES,
        money=money,
        error=None,
    )
    if flag.kind == "benford" and flag.details.get("benford"):
        result = bookings.dataset_benford(session, dataset, flag.supplier)
        context["benford_chart"] = _benford_chart(result, f"Erste Ziffern: {flag.supplier}")
        context["benford"] = result
    return render(request, "insights_booking_flag.html", context)


@router.post(
    "/lagebild/buchungen/hinweise/{flag_id}/entscheidung",
    dependencies=[VIEW, MANAGE, CsrfDep],
    include_in_schema=False,
)
async def decide_page(
    flag_id: int, request: Request, tenant: CurrentTenant, user: CurrentUser, session: SessionDep
) -> Response:
    form = await request.form()
    bookings.decide(
        session,
        tenant=tenant,
        flag_id=flag_id,
        status=str(form.get("entscheidung") or ""),
        note=str(form.get("notiz") or ""),
        actor=user.username,
    )
    return RedirectResponse(f"/lagebild/buchungen/hinweise/{flag_id}", status_code=303)


@router.get(
    "/lagebild/buchungen/{dataset_id}/export.{fmt}", dependencies=[VIEW], include_in_schema=False
)
def export(
    dataset_id: int,
    fmt: str,
    tenant: CurrentTenant,
    session: SessionDep,
    art: str = "",
    status: str = "",
    lieferant: str = "",
) -> Response:
    dataset = bookings.get_dataset(session, tenant, dataset_id)
    rows = bookings.export_rows(session, dataset, kind=art, status=status, supplier=lieferant)
    return table_response(fmt, f"pruefhinweise-{dataset.id}", bookings.EXPORT_HEADERS, rows)


# -- JSON API ------------------------------------------------------------------------------------

API = "/api/v1/lagebild/buchungen"
TAGS = ["Lagebild"]


class DatasetPublic(BaseModel):
    id: int
    name: str
    filename: str
    rows: int
    mapping: dict[str, str]
    summary: dict[str, Any]
    created_by: str
    created_at: Any

    @classmethod
    def of(cls, d: InsightDataset) -> DatasetPublic:
        return cls(
            id=d.id,
            name=d.name,
            filename=d.filename,
            rows=d.rows,
            mapping=dict(d.mapping),
            summary=dict(d.summary),
            created_by=d.created_by,
            created_at=d.created_at,
        )


class FlagPublic(BaseModel):
    id: int
    dataset_id: int
    kind: str
    kind_label: str
    supplier: str
    payment_ids: list[int]
    score: float
    explanation: str
    details: dict[str, Any]
    status: str
    decision_note: str
    decided_by: str
    decided_at: Any

    @classmethod
    def of(cls, f: BookingFlag) -> FlagPublic:
        return cls(
            id=f.id,
            dataset_id=f.dataset_id,
            kind=f.kind,
            kind_label=KINDS.get(f.kind, f.kind),
            supplier=f.supplier,
            payment_ids=list(f.payment_ids),
            score=f.score,
            explanation=f.explanation,
            details=dict(f.details),
            status=f.status,
            decision_note=f.decision_note,
            decided_by=f.decided_by,
            decided_at=f.decided_at,
        )


class FlagList(BaseModel):
    total: int
    flags: list[FlagPublic]


class CheckOptions(BaseModel):
    thresholds: list[float] | None = Field(default=None, description="Wertgrenzen (ganze Beträge)")
    near_days: int | None = Field(default=None, ge=0, le=90)
    near_tolerance_pct: float | None = Field(default=None, ge=0, le=20)
    split_days: int | None = Field(default=None, ge=1, le=365)
    new_amount: float | None = Field(default=None, ge=0)
    holiday_country: str | None = Field(default=None, max_length=3)
    holiday_subdiv: str | None = Field(default=None, max_length=10)
    currency: str | None = Field(default=None, max_length=5)


class Decision(BaseModel):
    status: str = Field(description="unauffaellig oder pruefen")
    note: str = Field(default="", max_length=4000)


def _error(message: str, status: int = 422) -> Response:
    return JSONResponse({"detail": message}, status_code=status)


@router.get(API, dependencies=[VIEW], tags=TAGS, summary="Zahlungslisten der Kommune")
def api_datasets(tenant: CurrentTenant, session: SessionDep) -> list[DatasetPublic]:
    return [DatasetPublic.of(d) for d in bookings.datasets(session, tenant)]


@router.post(
    API,
    dependencies=[VIEW, MANAGE, CsrfDep],
    tags=TAGS,
    summary="Zahlungsliste importieren (multipart: datei, name, ueberspringen, spalte_FELD)",
    status_code=201,
)
async def api_import(
    request: Request,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> Any:
    try:
        upload = await _upload(request)
        dataset = await run_in_threadpool(_import, session, tenant, user, settings, upload)
    except RathausError as exc:
        session.rollback()
        return _error(exc.message)
    return JSONResponse(DatasetPublic.of(dataset).model_dump(mode="json"), status_code=201)


@router.get(API + "/{dataset_id}", dependencies=[VIEW], tags=TAGS, summary="Eine Zahlungsliste")
def api_dataset(dataset_id: int, tenant: CurrentTenant, session: SessionDep) -> dict[str, Any]:
    dataset = bookings.get_dataset(session, tenant, dataset_id)
    return {
        "dataset": DatasetPublic.of(dataset).model_dump(mode="json"),
        "counts": bookings.flag_counts(session, dataset),
        "benford": bookings.dataset_benford(session, dataset).to_dict(),
    }


@router.post(
    API + "/{dataset_id}/pruefung",
    dependencies=[VIEW, MANAGE, CsrfDep],
    tags=TAGS,
    summary="Prüfungen laufen lassen (Entscheidungen bleiben erhalten)",
)
def api_run(
    dataset_id: int,
    body: CheckOptions,
    tenant: CurrentTenant,
    user: CurrentUser,
    session: SessionDep,
) -> dict[str, Any]:
    dataset = bookings.get_dataset(session, tenant, dataset_id)
    config = bookings.config_for(
        tenant,
        split_thresholds_cents=tuple(sorted(round(t * 100) for t in body.thresholds))
        if body.thresholds
        else None,
        near_days=body.near_days,
        near_tolerance_pct=body.near_tolerance_pct,
        split_days=body.split_days,
        new_amount_cents=round(body.new_amount * 100) if body.new_amount is not None else None,
        holiday_country=body.holiday_country,
        holiday_subdiv=body.holiday_subdiv,
        currency=body.currency,
    )
    report = bookings.run_checks(
        session, tenant=tenant, dataset=dataset, config=config, actor=user.username
    )
    return report.to_dict()


@router.get(API + "/{dataset_id}/hinweise", dependencies=[VIEW], tags=TAGS, summary="Prüfhinweise")
def api_flags(
    dataset_id: int,
    tenant: CurrentTenant,
    session: SessionDep,
    art: str = "",
    status: str = "",
    lieferant: str = "",
    limit: int = 100,
    offset: int = 0,
) -> FlagList:
    dataset = bookings.get_dataset(session, tenant, dataset_id)
    flags, total = bookings.list_flags(
        session,
        dataset,
        kind=art,
        status=status,
        supplier=lieferant,
        limit=max(1, min(limit, 1000)),
        offset=max(0, offset),
    )
    return FlagList(total=total, flags=[FlagPublic.of(f) for f in flags])


@router.get(
    API + "/hinweise/{flag_id}",
    dependencies=[VIEW],
    tags=TAGS,
    summary="Ein Prüfhinweis mit den betroffenen Zahlungen",
)
def api_flag(flag_id: int, tenant: CurrentTenant, session: SessionDep) -> dict[str, Any]:
    flag = bookings.get_flag(session, tenant, flag_id)
    payments = [
        {
            "id": p.id,
            "row_number": p.row_number,
            "supplier": p.supplier,
            "amount_cents": p.amount_cents,
            "booked_on": p.booked_on.isoformat(),
            "reference": p.reference,
            "category": p.category,
            "unit": p.unit,
            "description": p.description,
        }
        for p in bookings.payments_of(session, flag)
    ]
    return {"flag": FlagPublic.of(flag).model_dump(mode="json"), "payments": payments}


@router.post(
    API + "/hinweise/{flag_id}/entscheidung",
    dependencies=[VIEW, MANAGE, CsrfDep],
    tags=TAGS,
    summary="Entscheidung zu einem Prüfhinweis: unauffaellig oder pruefen, mit Notiz",
)
def api_decide(
    flag_id: int, body: Decision, tenant: CurrentTenant, user: CurrentUser, session: SessionDep
) -> FlagPublic:
    flag = bookings.decide(
        session,
        tenant=tenant,
        flag_id=flag_id,
        status=body.status,
        note=body.note,
        actor=user.username,
    )
    return FlagPublic.of(flag)
