"""Who may see which case: tenant first, then departments (with their sub-units), then roles."""

from __future__ import annotations

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from rathaus.core.models import Case, OrgUnit, User
from rathaus.core.roles import Permission, permissions_of


def unit_subtree_ids(session: Session, tenant_id: int, root_ids: set[int]) -> set[int]:
    """The given units and all units below them (a Fachbereich includes its Ämter)."""
    if not root_ids:
        return set()
    rows = session.execute(
        select(OrgUnit.id, OrgUnit.parent_id).where(OrgUnit.tenant_id == tenant_id)
    ).all()
    children: dict[int | None, list[int]] = {}
    for unit_id, parent_id in rows:
        children.setdefault(parent_id, []).append(unit_id)
    result: set[int] = set()
    stack = [i for i in root_ids]
    while stack:
        unit_id = stack.pop()
        if unit_id in result:
            continue
        result.add(unit_id)
        stack.extend(children.get(unit_id, []))
    return result


def visible_cases(session: Session, user: User) -> Select[tuple[Case]]:
    """Cases of the user's tenant that the user may open."""
    perms = permissions_of(user.roles)
    query = select(Case).where(Case.tenant_id == user.tenant_id)
    if Permission.VIEW_ALL_DEPARTMENTS in perms:
        return query
    if Permission.VIEW_CASES not in perms:
        return query.where(Case.id.is_(None))
    units = unit_subtree_ids(session, user.tenant_id, user.org_unit_ids)
    conditions = [Case.org_unit_id.in_(units), Case.assignee_id == user.id]
    if Permission.TRIAGE in perms:
        conditions.append(Case.org_unit_id.is_(None))
    return query.where(or_(*conditions))


def can_view_case(session: Session, user: User, case: Case) -> bool:
    return session.scalar(visible_cases(session, user).where(Case.id == case.id)) is not None
