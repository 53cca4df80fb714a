"""The KI-Register for staff and the public transparency page for citizens.

``/governance/ki-register`` (every signed-in person of the tenant) shows the register of
:mod:`rathaus.governance.register` as a table with details per function, and offers it as
JSON and PDF. ``/transparenz`` is public (no login, no cookie), like ``/assistent``: it tells
citizens in plain language which AI functions the municipality uses, what a person decides,
and whom to ask or complain to.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core.config import Settings
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import Tenant, User, UserRole
from rathaus.core.roles import Role
from rathaus.governance.register import LAENDER, RISK_LABELS, Register, build_register
from rathaus.web.assistant_api import public_tenant
from rathaus.web.deps import CurrentTenant, CurrentUser, SessionDep, SettingsDep
from rathaus.web.governance_nav import nav_context
from rathaus.web.templating import render

router = APIRouter(include_in_schema=False)


def _filename(tenant: Tenant, extension: str) -> str:
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in tenant.slug)
    return f"KI-Register_{safe[:40]}_{dt.date.today():%Y-%m-%d}.{extension}"


def _register(settings: Settings, session: Session, tenant: Tenant) -> Register:
    return build_register(settings, session=session, tenant=tenant)


@router.get("/governance/ki-register")
def register_page(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    register = _register(settings, session, tenant)
    areas: dict[str, list[Any]] = {}
    for entry in register.entries:
        areas.setdefault(entry.area, []).append(entry)
    counts = {
        key: sum(1 for e in register.entries if e.risk.risk_class == key) for key in RISK_LABELS
    }
    return render(
        request,
        "governance_register.html",
        nav_context(
            user,
            tenant,
            register=register,
            areas=areas,
            counts=counts,
            register_risk_labels=RISK_LABELS,
        ),
    )


@router.get("/governance/ki-register.json")
def register_json(
    user: CurrentUser, tenant: CurrentTenant, session: SessionDep, settings: SettingsDep
) -> Response:
    data = _register(settings, session, tenant).as_dict()
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{_filename(tenant, "json")}"'},
    )


@router.get("/governance/ki-register.pdf")
def register_pdf(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    from rathaus.governance.register_pdf import to_pdf

    register = _register(settings, session, tenant)
    try:
        content = to_pdf(register)
    except RathausError as exc:
        return render(
            request,
            "governance_register.html",
            nav_context(user, tenant, register=register, areas={}, counts={}, error=exc.message),
            status_code=503,
        )
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{_filename(tenant, "pdf")}"'},
    )


# -- public ---------------------------------------------------------------------------------


def privacy_contacts(session: Session, tenant: Tenant) -> list[str]:
    """E-mail addresses of the tenant's active data protection staff (role ``datenschutz``)."""
    rows = session.scalars(
        select(User.email)
        .join(UserRole, UserRole.user_id == User.id)
        .where(
            User.tenant_id == tenant.id,
            User.is_active.is_(True),
            UserRole.role == Role.DATENSCHUTZ.value,
            User.email != "",
        )
        .order_by(User.email)
    )
    return sorted(set(rows))


@router.get("/transparenz")
def transparency_page(
    request: Request, session: SessionDep, settings: SettingsDep, kommune: str | None = None
) -> Response:
    try:
        tenant = public_tenant(session, settings, kommune)
    except NotFoundError as exc:
        response = render(
            request, "transparenz.html", {"tenant": None, "error": exc.message}, status_code=404
        )
        response.headers["Cache-Control"] = "no-store"
        return response
    register = build_register(settings, session=session, tenant=tenant)
    areas: dict[str, list[Any]] = {}
    for entry in register.entries:
        if entry.active:
            areas.setdefault(entry.area, []).append(entry)
    response = render(
        request,
        "transparenz.html",
        {
            "tenant": tenant,
            "embed": False,
            "areas": areas,
            "any_high": any(e.risk.risk_class == "hoch" for e in register.entries if e.active),
            "contacts": privacy_contacts(session, tenant),
            "land": LAENDER.get(tenant.land, ("Ihrem Land", ""))[0],
            "retention_days": settings.assistant.retention_days,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response
