"""core/access.py: departments, assignment, triage and the confidentiality level, on SQLite and
PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from rathaus.core.access import can_view_case, get_visible, not_confidential, visible_cases
from rathaus.core.db import Database
from rathaus.core.models import Case, Confidentiality, UserRole
from tests.factories import build_tenant


def _refs(session, user) -> set[str]:  # type: ignore[no-untyped-def]
    return set(session.scalars(visible_cases(session, user).with_only_columns(Case.reference)))


def test_confidentiality_departments_assignment_and_triage(db: Database) -> None:
    with db.session() as session:
        world = build_tenant(session, "alpha")
        other = build_tenant(session, "beta")
        ba, gw, unrouted = world.cases["BA"], world.cases["OA-GW"], world.cases["unrouted"]
        for case in (ba, gw, unrouted):
            case.confidentiality = Confidentiality.VERTRAULICH
        session.flush()
        users = world.users
        assert _refs(session, users["sb"]) == {ba.reference}
        # Leitung of OA: the Sachgebiet below OA, and (triage) the unrouted case.
        assert _refs(session, users["leitung"]) == {gw.reference, unrouted.reference}
        for name in ("admin", "dsb", "redaktion"):
            assert _refs(session, users[name]) == set(), name

        # The assignee sees a confidential case outside the own unit …
        gw.assignee_id = users["sb"].id
        session.flush()
        assert _refs(session, users["sb"]) == {ba.reference, gw.reference}
        assert get_visible(session, users["sb"], gw.id) is gw
        # … and lowering the level gives the administration its view of every case back.
        for case in (ba, gw, unrouted):
            case.confidentiality = Confidentiality.INTERN
        session.flush()
        assert _refs(session, users["admin"]) == {c.reference for c in world.cases.values()}
        assert not can_view_case(session, users["admin"], other.cases["BA"])

        # Administration plus Sachbearbeitung: confidential only through the own unit.
        ba.confidentiality = Confidentiality.VERTRAULICH
        gw.confidentiality = Confidentiality.VERTRAULICH
        gw.assignee_id = None
        admin = users["admin"]
        admin.role_rows.append(UserRole(role="sachbearbeitung"))
        session.flush()
        session.refresh(admin)
        assert _refs(session, admin) == {unrouted.reference}
        public = session.scalars(
            select(Case.reference).where(Case.tenant_id == world.tenant.id, not_confidential())
        )
        assert set(public) == {unrouted.reference}
