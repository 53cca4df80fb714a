"""Staff pages: the start page, the case list and status changes (the case view with its review
is in :mod:`rathaus.web.inbox_views`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from rathaus.core import case_service
from rathaus.core.errors import RathausError
from rathaus.core.models import CaseStatus
from rathaus.core.roles import Permission
from rathaus.web.deps import CsrfDep, CurrentTenant, CurrentUser, SessionDep, require
from rathaus.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/")
def start(
    request: Request, user: CurrentUser, tenant: CurrentTenant, session: SessionDep
) -> Response:
    return render(
        request,
        "start.html",
        {
            "tenant": tenant,
            "counts": case_service.status_counts(session, user=user),
            "by_unit": case_service.open_by_unit(session, user=user),
            "recent": case_service.list_cases(session, user=user, open_only=True, limit=10),
            "memberships": [m.org_unit for m in user.memberships],
        },
    )


@router.get("/vorgaenge", dependencies=[Depends(require(Permission.VIEW_CASES))])
def cases_list(
    request: Request,
    session: SessionDep,
    tenant: CurrentTenant,
    current: CurrentUser,
    status: str = "",
    offen: bool = True,
) -> Response:
    chosen = CaseStatus(status) if status in CaseStatus._value2member_map_ else None
    cases = case_service.list_cases(
        session, user=current, status=chosen, open_only=offen and chosen is None, limit=200
    )
    return render(
        request,
        "cases.html",
        {
            "tenant": tenant,
            "cases": cases,
            "status": chosen,
            "offen": offen,
            "statuses": list(CaseStatus),
        },
    )


@router.post("/vorgaenge/{case_id}/status", dependencies=[CsrfDep])
def case_status(
    request: Request,
    case_id: int,
    user: CurrentUser,
    session: SessionDep,
    status: Annotated[str, Form(max_length=30)],
    begruendung: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        target = CaseStatus(status)
    except ValueError:
        raise RathausError(f"Unbekannter Status „{status}“.") from None
    case_service.change_status(session, user=user, case_id=case_id, to=target, reason=begruendung)
    return RedirectResponse(f"/vorgaenge/{case_id}", status_code=303)
