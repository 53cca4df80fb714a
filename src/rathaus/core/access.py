"""Who may see which case: tenant first, then departments (with their sub-units), then roles and
the confidentiality level. Every list, count, search, export, API answer and case page asks here.

The rule, in one place (documented in docs/access-control.md):

* a case of another tenant is never visible;
* ``VIEW_ALL_DEPARTMENTS`` (Administration) sees every case of the tenant that is not
  ``vertraulich``;
* ``VIEW_CASES`` sees the cases of the own departments (with their sub-units), the cases
  assigned to oneself, and with ``TRIAGE`` the cases no department has yet;
* a case marked ``vertraulich`` is visible only with ``VIEW_CONFIDENTIAL`` and only through the
  own departments, the assignment or (with ``TRIAGE``) while it has no department yet – never
  through ``VIEW_ALL_DEPARTMENTS``: the administration runs the installation, it does not read
  confidential files.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true
from sqlalchemy.orm import Session

from rathaus.core.models import Case, Confidentiality, OrgUnit, User
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


def not_confidential() -> ColumnElement[bool]:
    """Cases that are not ``vertraulich``: what may leave the circle of the responsible staff
    (public Open311 status, example lists on administration pages, integration keys)."""
    return Case.confidentiality != Confidentiality.VERTRAULICH


def case_condition(session: Session, user: User) -> ColumnElement[bool]:
    """The WHERE condition for the cases of ``user``'s tenant that ``user`` may open."""
    perms = permissions_of(user.roles)
    tenant = Case.tenant_id == user.tenant_id
    if not perms & {Permission.VIEW_CASES, Permission.VIEW_ALL_DEPARTMENTS}:
        return false()
    own: list[ColumnElement[bool]] = [Case.assignee_id == user.id]
    units = unit_subtree_ids(session, user.tenant_id, set(user.org_unit_ids))
    if units:
        own.append(Case.org_unit_id.in_(units))
    if Permission.TRIAGE in perms:
        own.append(Case.org_unit_id.is_(None))
    own_cases = or_(*own)
    scope = true() if Permission.VIEW_ALL_DEPARTMENTS in perms else own_cases
    confidential = own_cases if Permission.VIEW_CONFIDENTIAL in perms else false()
    return and_(tenant, scope, or_(not_confidential(), confidential))


def visible_cases(session: Session, user: User) -> Select[tuple[Case]]:
    """Cases of the user's tenant that the user may open (a query to refine further)."""
    return select(Case).where(case_condition(session, user))


def get_visible(session: Session, user: User, case_id: int) -> Case | None:
    """The case with ``case_id`` if ``user`` may open it, else ``None`` (answer: not found)."""
    return session.scalar(visible_cases(session, user).where(Case.id == case_id))


def can_view_case(session: Session, user: User, case: Case) -> bool:
    return session.scalar(visible_cases(session, user).where(Case.id == case.id)) is not None
