"""Case service functions used by the web UI, the API and the CLI (tenant- and role-aware)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rathaus.core.access import visible_cases
from rathaus.core.cases import OPEN_STATUSES, transition
from rathaus.core.errors import NotFoundError, PermissionDeniedError
from rathaus.core.models import Case, CaseStatus, OrgUnit, User
from rathaus.core.roles import Permission, permissions_of


def list_cases(
    session: Session,
    *,
    user: User,
    status: CaseStatus | None = None,
    org_unit_id: int | None = None,
    open_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[Case]:
    query = visible_cases(session, user)
    if status is not None:
        query = query.where(Case.status == status)
    elif open_only:
        query = query.where(Case.status.in_(list(OPEN_STATUSES)))
    if org_unit_id is not None:
        query = query.where(Case.org_unit_id == org_unit_id)
    query = query.order_by(Case.received_at.desc(), Case.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))


def get(session: Session, *, user: User, case_id: int) -> Case:
    """The case if the user may open it; a case of another tenant or department is 'not found'."""
    case = session.scalar(visible_cases(session, user).where(Case.id == case_id))
    if case is None:
        raise NotFoundError(
            f"Vorgang {case_id} wurde nicht gefunden oder ist für Sie nicht freigegeben."
        )
    return case


def status_counts(session: Session, *, user: User) -> dict[str, int]:
    sub = visible_cases(session, user).subquery()
    rows = session.execute(select(sub.c.status, func.count()).group_by(sub.c.status)).all()
    counts: Counter[str] = Counter({str(s): n for s, n in rows})
    return {status.value: counts.get(status.value, 0) for status in CaseStatus}


def open_by_unit(session: Session, *, user: User) -> list[dict[str, Any]]:
    sub = visible_cases(session, user).where(Case.status.in_(list(OPEN_STATUSES))).subquery()
    rows = session.execute(
        select(OrgUnit.id, OrgUnit.name, func.count(sub.c.id))
        .join(sub, sub.c.org_unit_id == OrgUnit.id)
        .group_by(OrgUnit.id, OrgUnit.name)
        .order_by(func.count(sub.c.id).desc())
    ).all()
    return [{"id": i, "name": n, "open": c} for i, n, c in rows]


def change_status(
    session: Session, *, user: User, case_id: int, to: CaseStatus, reason: str = ""
) -> Case:
    if Permission.EDIT_CASES not in permissions_of(user.roles):
        raise PermissionDeniedError("Sie dürfen den Status von Vorgängen nicht ändern.")
    case = get(session, user=user, case_id=case_id)
    transition(session, case, to, actor=user, reason=reason)
    return case
