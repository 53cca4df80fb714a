"""Governance pages: overview, audit log (with chain check and export) and the decision
record of AI suggestions, their JSON API, and the record on the case page.

Every page extends ``governance_base.html`` with :func:`governance_nav.nav_context`. The
overview is open to every signed-in person; audit log and decision record need
``Permission.VIEW_AUDIT``. Every query is limited to the signed-in person's tenant.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from rathaus.core import audit
from rathaus.core.errors import RathausError
from rathaus.core.models import AuditEvent, Case, Tenant, User
from rathaus.core.roles import Permission, permissions_of
from rathaus.governance import audit_log, decisions
from rathaus.insights.export import table_response
from rathaus.web.deps import (
    CsrfDep,
    CurrentTenant,
    CurrentUser,
    DatabaseDep,
    SessionDep,
    SettingsDep,
    require,
)
from rathaus.web.governance_nav import nav_context
from rathaus.web.templating import render, templates

router = APIRouter()

AUDIT = Depends(require(Permission.VIEW_AUDIT))
PAGE_SIZE = 50
EXPORT_LIMIT = 100_000
LIVE_CHECK_LIMIT = 20_000  # entries the overview checks on every visit (~30,000 per second)
CHECK_KIND = "pruefprotokoll_geprueft"
Von = Annotated[str | None, Query(max_length=20, description="Erster Tag (JJJJ-MM-TT)")]
Bis = Annotated[str | None, Query(max_length=20, description="Letzter Tag (JJJJ-MM-TT)")]
Seite = Annotated[int, Query(ge=1, le=100_000)]


# -- the record on the case page (case.html calls this) ----------------------------------------


def _case_record(case: Case) -> list[decisions.Row]:
    """The case's AI suggestions and decisions, read with the session that loaded the case
    (the case page has already checked that the person may see the case)."""
    session = object_session(case)
    return decisions.for_case(session, case) if session is not None else []


templates.env.globals.update(
    ki_entscheidungen=_case_record,
    KI_FUNKTIONEN=decisions.FUNCTION_LABELS,
    KI_ENTSCHEIDUNGEN=decisions.LABELS,
)


# -- helpers -----------------------------------------------------------------------------------


def _last_check(session: Session, tenant_id: int) -> AuditEvent | None:
    return session.scalar(
        select(AuditEvent)
        .where(AuditEvent.tenant_id == tenant_id, AuditEvent.kind == CHECK_KIND)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def _check_chain(database: Any, user: User) -> dict[str, Any]:
    """Check the tenant's chain and record that it was checked (with the result)."""
    with database.session() as session:
        tenant = session.get(Tenant, user.tenant_id)
        report = audit_log.verify_tenant(session, tenant).to_dict()
        audit.record(
            session,
            audit.Event(
                kind=CHECK_KIND,
                actor=user.username,
                tenant_id=user.tenant_id,
                subject="audit_chain",
                data={
                    "ok": report["ok"],
                    "checked": report["checked"],
                    "first_broken_id": (report["first_broken"] or {}).get("id"),
                },
            ),
        )
    return report


def _as_json(data: Any) -> str:
    """Readable JSON for the page (Jinja escapes it; ``tojson`` would show \\u escapes)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def _period(von: str | None, bis: str | None) -> audit_log.Period:
    return audit_log.Period.parse(von, bis)


def _max_id(session: Session, tenant_id: int) -> int:
    return int(
        session.scalar(select(func.max(AuditEvent.id)).where(AuditEvent.tenant_id == tenant_id))
        or 0
    )


# -- overview ----------------------------------------------------------------------------------


@router.get("/governance", include_in_schema=False)
async def overview(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    database: DatabaseDep,
) -> Response:
    """What Rathaus records about AI and people, with links; the chain status for auditors."""
    may_audit = Permission.VIEW_AUDIT in permissions_of(user.roles)
    context = nav_context(
        user, tenant, may_audit=may_audit, chain=None, rates=[], last=None, size=0
    )
    if may_audit:
        context["size"] = audit_log.chain_size(session, tenant.id)
        if context["size"] <= LIVE_CHECK_LIMIT:  # about half a second; longer ones on request
            context["chain"] = await run_in_threadpool(_verify_only, database, user.tenant_id)
        context["last"] = _last_check(session, tenant.id)
        context["rates"] = decisions.rates(session, tenant_id=tenant.id)
    return render(request, "governance_overview.html", context)


def _verify_only(database: Any, tenant_id: int) -> dict[str, Any]:
    with database.session() as session:
        return audit_log.verify_tenant(session, session.get(Tenant, tenant_id)).to_dict()


# -- audit log ---------------------------------------------------------------------------------


def _protokoll_context(
    session: Session,
    user: User,
    tenant: Tenant,
    *,
    art: str,
    akteur: str,
    von: str | None,
    bis: str | None,
    seite: int,
) -> dict[str, Any]:
    form = {"art": art, "akteur": akteur, "von": von or "", "bis": bis or ""}
    context = nav_context(user, tenant, form=form, rows=[], total=0, page=seite, pages=1)
    context["kinds"] = list(
        session.scalars(
            select(AuditEvent.kind)
            .where(AuditEvent.tenant_id == tenant.id)
            .distinct()
            .order_by(AuditEvent.kind)
        )
    )
    context["max_id"] = _max_id(session, tenant.id)
    context["last"] = _last_check(session, tenant.id)
    period = _period(von, bis)
    query = audit_log.events_query(session, tenant.id, period, kind=art, actor=akteur)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.execute(
        query.order_by(None)
        .order_by(AuditEvent.id.desc())
        .offset((seite - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    context.update(
        rows=rows,
        total=total,
        pages=max(1, -(-total // PAGE_SIZE)),
        timestamp=audit.timestamp,
        as_json=_as_json,
    )
    return context


@router.get("/governance/protokoll", dependencies=[AUDIT], include_in_schema=False)
def protokoll(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    art: Annotated[str, Query(max_length=60)] = "",
    akteur: Annotated[str, Query(max_length=120)] = "",
    von: Von = None,
    bis: Bis = None,
    seite: Seite = 1,
) -> Response:
    try:
        context = _protokoll_context(
            session, user, tenant, art=art, akteur=akteur, von=von, bis=bis, seite=seite
        )
    except RathausError as exc:
        context = _protokoll_context(
            session, user, tenant, art=art, akteur=akteur, von=None, bis=None, seite=1
        )
        context["error"] = exc.message
        return render(request, "governance_audit.html", context, status_code=422)
    return render(request, "governance_audit.html", context)


@router.post(
    "/governance/protokoll/pruefen", dependencies=[AUDIT, CsrfDep], include_in_schema=False
)
async def protokoll_check(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    database: DatabaseDep,
) -> Response:
    report = await run_in_threadpool(_check_chain, database, user)
    context = _protokoll_context(
        session, user, tenant, art="", akteur="", von=None, bis=None, seite=1
    )
    context["check"] = report
    return render(request, "governance_audit.html", context)


def _export_file(
    database: Any, secret_key: str, tenant_id: int, fmt: str, period: Any, max_id: int | None
) -> tuple[Path, dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="rathaus-protokoll-"))
    try:
        with database.session() as session:
            tenant = session.get(Tenant, tenant_id)
            name = f"pruefprotokoll-{tenant.slug if tenant else tenant_id}.{fmt}"
            sig = audit_log.export_to_file(
                session,
                folder / name,
                fmt=fmt,
                tenant=tenant,
                period=period,
                secret_key=secret_key,
                max_id=max_id,
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder / name, sig


ExportFormat = Annotated[str, Query(pattern="^(jsonl|csv)$", description="jsonl oder csv")]
BisNr = Annotated[
    int | None,
    Query(ge=0, description="Nur Einträge bis zu dieser Nummer (Export und Signatur gleich)"),
]


@router.get("/governance/protokoll/export", dependencies=[AUDIT], include_in_schema=False)
async def protokoll_export(
    user: CurrentUser,
    database: DatabaseDep,
    settings: SettingsDep,
    format: ExportFormat = "jsonl",
    von: Von = None,
    bis: Bis = None,
    bis_nr: BisNr = None,
) -> Response:
    """The tenant's audit log as a file; the signature for the same ``bis_nr`` matches it."""
    path, _sig = await run_in_threadpool(
        _export_file,
        database,
        settings.secret_key.get_secret_value(),
        user.tenant_id,
        format,
        _period(von, bis),
        bis_nr,
    )
    media = "application/x-ndjson" if format == "jsonl" else "text/csv; charset=utf-8"
    return FileResponse(
        path,
        media_type=media,
        filename=path.name,
        background=BackgroundTask(shutil.rmtree, path.parent, ignore_errors=True),
    )


@router.get("/governance/protokoll/export/signatur", dependencies=[AUDIT], include_in_schema=False)
async def protokoll_signature(
    user: CurrentUser,
    database: DatabaseDep,
    settings: SettingsDep,
    format: ExportFormat = "jsonl",
    von: Von = None,
    bis: Bis = None,
    bis_nr: BisNr = None,
) -> Response:
    path, sig = await run_in_threadpool(
        _export_file,
        database,
        settings.secret_key.get_secret_value(),
        user.tenant_id,
        format,
        _period(von, bis),
        bis_nr,
    )
    shutil.rmtree(path.parent, ignore_errors=True)
    return JSONResponse(
        sig,
        headers={"Content-Disposition": f'attachment; filename="{path.name}.sig"'},
    )


# -- decision record ---------------------------------------------------------------------------

Funktion = Annotated[str, Query(max_length=40)]
Entscheidung = Annotated[str, Query(max_length=20)]


def _filters(funktion: str, entscheidung: str) -> decisions.Filters:
    allowed = {*decisions.HUMAN, *decisions.MACHINE, "offen", ""}
    if entscheidung not in allowed:
        raise RathausError(
            f"Unbekannte Entscheidung „{entscheidung}“. Erlaubt: "
            + ", ".join(sorted(a for a in allowed if a))
            + "."
        )
    return decisions.Filters(function=funktion, decision=entscheidung)


@router.get("/governance/entscheidungen", dependencies=[AUDIT], include_in_schema=False)
def decisions_page(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    funktion: Funktion = "",
    entscheidung: Entscheidung = "",
    seite: Seite = 1,
) -> Response:
    filters = _filters(funktion, entscheidung)
    rows, total = decisions.list_rows(
        session,
        tenant_id=tenant.id,
        filters=filters,
        limit=PAGE_SIZE,
        offset=(seite - 1) * PAGE_SIZE,
    )
    context = nav_context(
        user,
        tenant,
        rows=rows,
        total=total,
        page=seite,
        pages=max(1, -(-total // PAGE_SIZE)),
        rates=decisions.rates(session, tenant_id=tenant.id),
        functions=decisions.functions(session, tenant_id=tenant.id),
        form={"funktion": funktion, "entscheidung": entscheidung},
        choices=[*decisions.HUMAN, *decisions.MACHINE, "offen"],
        query=request.url.query,
    )
    return render(request, "governance_decisions.html", context)


EXPORT_HEADERS = (
    "Nr.",
    "Erstellt",
    "Funktion",
    "Backend",
    "Version",
    "Eingabe-SHA-256",
    "Sicherheit",
    "Entscheidung",
    "Entschieden von",
    "Entschieden am",
    "Aktenzeichen",
    "Gegenstand",
    "Geänderte Zeilen",
)


@router.get("/governance/entscheidungen/export", dependencies=[AUDIT], include_in_schema=False)
def decisions_export(
    tenant: CurrentTenant,
    session: SessionDep,
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",
    funktion: Funktion = "",
    entscheidung: Entscheidung = "",
) -> Response:
    rows, _ = decisions.list_rows(
        session,
        tenant_id=tenant.id,
        filters=_filters(funktion, entscheidung),
        limit=EXPORT_LIMIT,
    )
    table = [
        [
            r.suggestion.id,
            r.suggestion.created_at,
            decisions.FUNCTION_LABELS.get(r.suggestion.function, r.suggestion.function),
            r.suggestion.backend,
            r.suggestion.model_version,
            r.suggestion.input_sha256,
            r.suggestion.confidence,
            decisions.LABELS.get(r.suggestion.decision, r.suggestion.decision),
            r.decided_by or "",
            r.suggestion.decided_at,
            r.case_reference or "",
            f"{r.suggestion.subject_type}:{r.suggestion.subject_id}"
            if r.suggestion.subject_type
            else "",
            sum(1 for line in r.diff if line[:1] in "+-" and line[:3] not in ("+++", "---")),
        ]
        for r in rows
    ]
    return table_response(format, f"ki-entscheidungen-{tenant.slug}", EXPORT_HEADERS, table)


# -- JSON API ----------------------------------------------------------------------------------

TAGS = ["Governance"]


@router.get(
    "/api/v1/governance/entscheidungen",
    dependencies=[AUDIT],
    tags=TAGS,
    summary="KI-Vorschläge mit menschlicher Entscheidung und Annahmequoten je Funktion",
)
def api_decisions(
    tenant: CurrentTenant,
    session: SessionDep,
    funktion: Funktion = "",
    entscheidung: Entscheidung = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Die KI-Vorschläge der eigenen Kommune, neueste zuerst: Funktion, Backend, Version,
    Eingabe-Hash, Sicherheit, Entscheidung, wer und wann, Änderungen (Diff)."""
    rows, total = decisions.list_rows(
        session,
        tenant_id=tenant.id,
        filters=_filters(funktion, entscheidung),
        limit=limit,
        offset=offset,
    )
    return {
        "total": total,
        "items": [r.to_dict() for r in rows],
        "rates": [r.to_dict() for r in decisions.rates(session, tenant_id=tenant.id)],
    }


@router.post(
    "/api/v1/governance/protokoll/pruefen",
    dependencies=[AUDIT, CsrfDep],
    tags=TAGS,
    summary="Hash-Kette des Prüfprotokolls der eigenen Kommune prüfen",
)
async def api_check(user: CurrentUser, database: DatabaseDep) -> dict[str, Any]:
    """Berechnet die Kette neu; ``first_broken`` nennt den ersten gebrochenen Eintrag. Die
    Prüfung selbst wird im Prüfprotokoll vermerkt."""
    return await run_in_threadpool(_check_chain, database, user)
