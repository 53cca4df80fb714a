"""The JSON API (``/api/v1``): separate public schemas, never table rows."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from rathaus.core import case_service
from rathaus.core.models import Case, CaseStatus
from rathaus.core.roles import Permission, permissions_of
from rathaus.governance import access_log
from rathaus.web.deps import CsrfDep, CurrentTenant, CurrentUser, SessionDep, require

router = APIRouter(prefix="/api/v1", tags=["API"])


class MePublic(BaseModel):
    username: str
    display_name: str
    tenant: str
    roles: list[str]
    permissions: list[str]
    org_units: list[str]


class CasePublic(BaseModel):
    id: int
    reference: str = Field(description="Aktenzeichen")
    subject: str
    status: CaseStatus
    channel: str
    request_type: str | None
    urgency: str
    org_unit: str | None
    service: str | None
    received_at: dt.datetime
    due_at: dt.datetime | None

    @classmethod
    def of(cls, case: Case) -> CasePublic:
        return cls(
            id=case.id,
            reference=case.reference,
            subject=case.subject,
            status=CaseStatus(case.status),
            channel=case.channel,
            request_type=case.request_type,
            urgency=case.urgency,
            org_unit=case.org_unit.name if case.org_unit else None,
            service=case.service.name if case.service else None,
            received_at=case.received_at,
            due_at=case.due_at,
        )


class StatusChange(BaseModel):
    status: CaseStatus
    reason: str = Field(default="", max_length=2000)


@router.get("/me", summary="Angemeldete Person, Rollen und Organisationseinheiten")
def me(user: CurrentUser, tenant: CurrentTenant) -> MePublic:
    return MePublic(
        username=user.username,
        display_name=user.display_name,
        tenant=tenant.slug,
        roles=sorted(user.roles),
        permissions=sorted(p.value for p in permissions_of(user.roles)),
        org_units=sorted(m.org_unit.name for m in user.memberships),
    )


@router.get(
    "/cases",
    summary="Vorgänge, die die angemeldete Person sehen darf",
    dependencies=[Depends(require(Permission.VIEW_CASES))],
)
def cases(
    user: CurrentUser,
    session: SessionDep,
    status: CaseStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[CasePublic]:
    rows = case_service.list_cases(
        session, user=user, status=status, limit=max(1, min(limit, 500)), offset=max(0, offset)
    )
    return [CasePublic.of(c) for c in rows]


@router.get("/cases/{case_id}", summary="Ein Vorgang")
def case(case_id: int, user: CurrentUser, session: SessionDep) -> CasePublic:
    found = case_service.get(session, user=user, case_id=case_id)
    access_log.record_access(session, case=found, user=user, action="angesehen", channel="api")
    return CasePublic.of(found)


@router.post(
    "/cases/{case_id}/status", summary="Status eines Vorgangs ändern", dependencies=[CsrfDep]
)
def change_status(
    case_id: int, body: StatusChange, user: CurrentUser, session: SessionDep
) -> CasePublic:
    case = case_service.change_status(
        session, user=user, case_id=case_id, to=body.status, reason=body.reason
    )
    return CasePublic.of(case)
