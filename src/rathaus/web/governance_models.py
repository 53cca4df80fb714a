"""Governance: model locations, the policy per confidentiality level and refused calls."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select

from rathaus.core import tenants
from rathaus.core.errors import RathausError
from rathaus.core.models import AuditEvent
from rathaus.core.roles import Permission
from rathaus.governance import keys, policy
from rathaus.governance.gateway import REFUSED_EVENT
from rathaus.web.deps import CurrentTenant, CurrentUser, SessionDep, SettingsDep, require
from rathaus.web.governance_nav import nav_context
from rathaus.web.templating import render

router = APIRouter()

AUDIT = Depends(require(Permission.VIEW_AUDIT))
LATEST_REFUSALS = 50


@router.get("/governance/modelle", dependencies=[AUDIT], include_in_schema=False)
def models_page(
    request: Request,
    user: CurrentUser,
    tenant: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Which model runs where, what each level allows, and the latest refused calls."""
    error = ""
    models: list[policy.ConfiguredModel] = []
    rows: list[policy.PolicyRow] = []
    problems: list[str] = []
    try:
        overrides = tenants.model_policies(session, tenant.id)
        models = policy.configured_models(settings)
        rows = policy.matrix(settings, overrides)
        problems = policy.problems(settings, overrides, tenant.slug)
        keyring = keys.Keyring.from_settings(settings)
        key_info = {
            "current": keyring.current_id,
            "count": len(keyring.ids),
            "derived": keyring.derived,
        }
    except RathausError as exc:
        error, key_info = exc.message, None
    refused = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.tenant_id == tenant.id, AuditEvent.kind == REFUSED_EVENT)
        .order_by(AuditEvent.id.desc())
        .limit(LATEST_REFUSALS)
    ).all()
    return render(
        request,
        "governance_models.html",
        nav_context(
            user,
            tenant,
            models=models,
            rows=rows,
            problems=problems,
            refused=refused,
            keys=key_info,
            error=error,
            levels=policy.LEVEL_NAMES,
            locations=policy.LOCATION_NAMES,
            tenant_slug=tenant.slug,
        ),
    )
