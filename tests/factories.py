"""Small builders for test data: a tenant with departments, staff and cases."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from sqlalchemy import update
from sqlalchemy.orm import Session

from rathaus.core.db import Database
from rathaus.core.models import (
    Case,
    CaseStatus,
    Membership,
    Message,
    OrgUnit,
    OrgUnitKind,
    Tenant,
    User,
    UserRole,
)

# Cheap parameters: tests hash many passwords; production uses argon2's defaults.
_fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "richtig-langes-passwort"


def fast_hash(password: str) -> str:
    return _fast.hash(password)


@dataclass
class World:
    tenant: Tenant
    units: dict[str, OrgUnit]
    users: dict[str, User]
    cases: dict[str, Case] = field(default_factory=dict)


def build_tenant(session: Session, slug: str, name: str | None = None) -> World:
    """A tenant with two Ämter, one Sachgebiet, five staff and one case per unit."""
    tenant = Tenant(slug=slug, name=name or f"Stadt {slug.title()}", city=slug.title(), land="BW")
    session.add(tenant)
    session.flush()
    buerger = OrgUnit(tenant_id=tenant.id, kind=OrgUnitKind.AMT, code="BA", name="Bürgeramt")
    ordnung = OrgUnit(tenant_id=tenant.id, kind=OrgUnitKind.AMT, code="OA", name="Ordnungsamt")
    session.add_all([buerger, ordnung])
    session.flush()
    gewerbe = OrgUnit(
        tenant_id=tenant.id,
        kind=OrgUnitKind.SACHGEBIET,
        code="OA-GW",
        name="Gewerbe",
        parent_id=ordnung.id,
    )
    session.add(gewerbe)
    session.flush()
    units = {"BA": buerger, "OA": ordnung, "OA-GW": gewerbe}

    def user(name: str, roles: list[str], unit_codes: list[str]) -> User:
        u = User(
            tenant_id=tenant.id,
            username=name,
            display_name=name.title(),
            password_hash=fast_hash(PASSWORD),
        )
        u.role_rows = [UserRole(role=r) for r in roles]
        u.memberships = [Membership(org_unit_id=units[c].id) for c in unit_codes]
        session.add(u)
        return u

    users = {
        "admin": user("admin", ["admin"], []),
        "sb": user("sb", ["sachbearbeitung"], ["BA"]),
        "leitung": user("leitung", ["fachbereichsleitung"], ["OA"]),
        "dsb": user("dsb", ["datenschutz"], []),
        "redaktion": user("redaktion", ["redaktion"], []),
    }
    session.flush()
    world = World(tenant=tenant, units=units, users=users)
    for i, code in enumerate(["BA", "OA-GW", None]):
        case = Case(
            tenant_id=tenant.id,
            reference=f"{slug.upper()[:3]}-2026-{i + 1:06d}",
            subject=f"Anliegen {i + 1} von {slug}",
            status=CaseStatus.ZUGEWIESEN if code else CaseStatus.NEU,
            org_unit_id=units[code].id if code else None,
        )
        session.add(case)
        session.flush()
        session.add(
            Message(tenant_id=tenant.id, case_id=case.id, direction="in", body=f"Text {slug} {i}")
        )
        world.cases[code or "unrouted"] = case
    session.flush()
    return world


def drop_password(db: Database, username: str) -> None:
    """Remove the password of ``username`` (in every tenant), as for an account that signs in
    through the identity provider (single sign-on) only."""
    with db.session() as session:
        session.execute(update(User).where(User.username == username).values(password_hash=None))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for servers, or as a 'down' address)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
