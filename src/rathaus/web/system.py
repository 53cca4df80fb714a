"""The system page for administrators: health, model backends with a live check, model calls,
and the municipality's settings for letters (Bankverbindung)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import or_, select

from rathaus.core.errors import RathausError
from rathaus.core.models import ModelCall, Tenant
from rathaus.core.roles import Permission
from rathaus.web import reauth
from rathaus.web.deps import CsrfDep, CurrentTenant, CurrentUser, SessionDep, require
from rathaus.web.health import collect_health
from rathaus.web.templating import render
from rathaus.writing import bank

BANK_CLI = "`rathaus mandanten bankverbindung`"

router = APIRouter(
    include_in_schema=False, dependencies=[Depends(require(Permission.MANAGE_SETTINGS))]
)


def _recent_calls(session: SessionDep, tenant_id: int) -> list[ModelCall]:
    query = (
        select(ModelCall)
        .where(or_(ModelCall.tenant_id == tenant_id, ModelCall.tenant_id.is_(None)))
        .order_by(ModelCall.id.desc())
        .limit(25)
    )
    return list(session.scalars(query))


def _bank_form(session: SessionDep, tenant: Tenant) -> dict[str, str]:
    found = bank.get(session, tenant_id=tenant.id)
    if found is None:
        return {"kreditinstitut": "", "iban": "", "bic": ""}
    return {"kreditinstitut": found.institute, "iban": found.iban_grouped, "bic": found.bic}


def _system_page(
    request: Request, session: SessionDep, tenant: Tenant, status: int = 200, **extra: Any
) -> Response:
    context = {
        "tenant": tenant,
        "health": collect_health(request.app, fresh=True),
        "calls": _recent_calls(session, tenant.id),
        "checks": None,
        "bank": bank.get(session, tenant_id=tenant.id),
        "bank_form": _bank_form(session, tenant),
        "bank_error": "",
        "bank_notice": "",
        "reauth": reauth.state(request),
    }
    context.update(extra)
    return render(request, "system.html", context, status_code=status)


BANK_NOTICES = {
    "gespeichert": "Die Bankverbindung wurde gespeichert; neue Briefe nennen sie in der Fußzeile.",
    "entfernt": "Die Bankverbindung wurde entfernt.",
}


@router.get("/system")
def system(
    request: Request, session: SessionDep, tenant: CurrentTenant, meldung: str = ""
) -> Response:
    return _system_page(request, session, tenant, bank_notice=BANK_NOTICES.get(meldung, ""))


@router.post("/system/bankverbindung", dependencies=[CsrfDep])
def save_bank(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    tenant: CurrentTenant,
    kreditinstitut: Annotated[str, Form(max_length=300)] = "",
    iban: Annotated[str, Form(max_length=100)] = "",
    bic: Annotated[str, Form(max_length=40)] = "",
    entfernen: Annotated[str, Form(max_length=5)] = "",
    passwort: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The municipality's Bankverbindung for the letter footer (checked IBAN), or removed;
    either only after the password (:mod:`rathaus.web.reauth`): a changed IBAN would send
    citizens' payments elsewhere."""
    typed = {"kreditinstitut": kreditinstitut, "iban": iban, "bic": bic}
    gate = reauth.confirm(
        request, session, password=passwort, action="bankverbindung", cli=BANK_CLI
    )
    if not gate.ok:
        state = reauth.state(
            request, action="entfernen" if entfernen == "1" else "bank", error=gate.error
        )
        form = typed if entfernen != "1" else _bank_form(session, tenant)
        page = _system_page(
            request, session, tenant, status=gate.status_code, bank_form=form, reauth=state
        )
        return gate.finish(request, page)
    if entfernen == "1":
        bank.save(session, tenant=tenant, details=None, actor=user.username)
        done = RedirectResponse("/system?meldung=entfernt#bankverbindung", status_code=303)
        return gate.finish(request, done)
    try:
        details = bank.make(institute=kreditinstitut, iban=iban, bic=bic)
    except RathausError as exc:
        page = _system_page(
            request, session, tenant, status=422, bank_form=typed, bank_error=exc.message
        )
        return gate.finish(request, page)
    bank.save(session, tenant=tenant, details=details, actor=user.username)
    done = RedirectResponse("/system?meldung=gespeichert#bankverbindung", status_code=303)
    return gate.finish(request, done)


@router.post("/system/modelle/pruefen", dependencies=[CsrfDep])
def check_models(request: Request, user: CurrentUser, tenant: CurrentTenant) -> Response:
    from rathaus.ai.calls import DatabaseRecorder
    from rathaus.ai.checks import check_backends
    from rathaus.governance.gateway import model_context

    # The probe sentences are fixed and public: level oeffentlich (docs/pseudonymisation.md).
    with model_context(level="oeffentlich", tenant_id=tenant.id, actor=user.username):
        checks = check_backends(
            request.app.state.settings,
            recorder=DatabaseRecorder(request.app.state.db),
            actor=user.username,
            tenant_id=tenant.id,
        )
    with request.app.state.db.session() as session:
        calls = _recent_calls(session, tenant.id)
    name = "_model_checks.html" if request.headers.get("hx-request") else "system.html"
    with request.app.state.db.session() as session:
        found = bank.get(session, tenant_id=tenant.id)
        bank_form = _bank_form(session, tenant)
    return render(
        request,
        name,
        {
            "tenant": tenant,
            "health": collect_health(request.app, fresh=True),
            "calls": calls,
            "checks": checks,
            "bank": found,
            "bank_form": bank_form,
            "bank_error": "",
            "bank_notice": "",
            "reauth": reauth.state(request),
        },
    )
