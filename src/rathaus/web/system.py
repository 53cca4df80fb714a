"""The system page for administrators: health, model backends with a live check, model calls."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import or_, select

from rathaus.core.models import ModelCall
from rathaus.core.roles import Permission
from rathaus.web.deps import CsrfDep, CurrentTenant, CurrentUser, SessionDep, require
from rathaus.web.health import collect_health
from rathaus.web.templating import render

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


@router.get("/system")
def system(request: Request, session: SessionDep, tenant: CurrentTenant) -> Response:
    return render(
        request,
        "system.html",
        {
            "tenant": tenant,
            "health": collect_health(request.app, fresh=True),
            "calls": _recent_calls(session, tenant.id),
            "checks": None,
        },
    )


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
    return render(
        request,
        name,
        {
            "tenant": tenant,
            "health": collect_health(request.app, fresh=True),
            "calls": calls,
            "checks": checks,
        },
    )
