"""User service functions: create, disable, roles and department memberships."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import Membership, OrgUnit, User, UserRole
from rathaus.core.repo import tenant_by_slug
from rathaus.core.roles import parse_role

MIN_PASSWORD_LENGTH = 12
BREACHED_MESSAGE = (
    "Das Passwort ist zu leicht zu erraten: Es steht auf der Liste häufig verwendeter "
    "Passwörter aus Datenlecks (auch mit angehängten Ziffern oder Satzzeichen und ohne "
    "Unterschied von Groß- und Kleinschreibung). Bitte wählen Sie ein anderes Passwort, am "
    "besten aus mehreren zufälligen Wörtern."
)


def check_password(password: str) -> None:
    """Refuse a new password that is too short or a known breached one (ASVS 2.1.1, 2.1.7).

    Checked whenever a password is set; the login only reports a listed one
    (:mod:`rathaus.web.auth_views`)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RathausError(
            f"Das Passwort ist zu kurz: mindestens {MIN_PASSWORD_LENGTH} Zeichen sind nötig."
        )
    from rathaus.core.breached import is_listed  # reads the list on first use

    if is_listed(password):
        raise RathausError(BREACHED_MESSAGE)


def get(session: Session, *, tenant_slug: str, username: str) -> User:
    tenant = tenant_by_slug(session, tenant_slug)
    user = session.scalar(
        select(User).where(User.tenant_id == tenant.id, User.username == username)
    )
    if user is None:
        raise NotFoundError(f"Die Person „{username}“ gibt es in „{tenant_slug}“ nicht.")
    return user


def list_users(session: Session, *, tenant_slug: str) -> list[User]:
    tenant = tenant_by_slug(session, tenant_slug)
    return list(
        session.scalars(select(User).where(User.tenant_id == tenant.id).order_by(User.username))
    )


def _units(session: Session, tenant_id: int, codes: Iterable[str]) -> list[OrgUnit]:
    units = []
    for code in codes:
        unit = session.scalar(
            select(OrgUnit).where(OrgUnit.tenant_id == tenant_id, OrgUnit.code == code)
        )
        if unit is None:
            raise NotFoundError(f"Die Organisationseinheit „{code}“ gibt es nicht.")
        units.append(unit)
    return units


def create(
    session: Session,
    *,
    tenant_slug: str,
    username: str,
    password: str | None,
    password_hasher: Callable[[str], str],
    display_name: str = "",
    email: str = "",
    roles: Iterable[str] = (),
    unit_codes: Iterable[str] = (),
    actor: str = "cli",
) -> User:
    tenant = tenant_by_slug(session, tenant_slug)
    username = username.strip()
    if not username or len(username) > 100:
        raise RathausError("Der Benutzername muss 1 bis 100 Zeichen lang sein.")
    exists = session.scalar(
        select(User).where(User.tenant_id == tenant.id, User.username == username)
    )
    if exists is not None:
        raise RathausError(f"Die Person „{username}“ gibt es in „{tenant_slug}“ schon.")
    if password is not None:
        check_password(password)
    parsed = [parse_role(r) for r in roles]
    user = User(
        tenant_id=tenant.id,
        username=username,
        display_name=display_name or username,
        email=email,
        password_hash=password_hasher(password) if password else None,
    )
    user.role_rows = [UserRole(role=r.value) for r in parsed]
    user.memberships = [
        Membership(org_unit_id=u.id) for u in _units(session, tenant.id, unit_codes)
    ]
    session.add(user)
    session.flush()
    audit.record(
        session,
        audit.Event(
            kind="user_created",
            actor=actor,
            tenant_id=tenant.id,
            subject=f"user:{username}",
            data={"roles": sorted(r.value for r in parsed), "units": sorted(unit_codes)},
        ),
    )
    return user


def set_active(
    session: Session, *, tenant_slug: str, username: str, active: bool, actor: str = "cli"
) -> User:
    from rathaus.core.security import end_all_sessions

    user = get(session, tenant_slug=tenant_slug, username=username)
    user.is_active = active
    if not active:
        end_all_sessions(session, user.id)
    audit.record(
        session,
        audit.Event(
            kind="user_enabled" if active else "user_disabled",
            actor=actor,
            tenant_id=user.tenant_id,
            subject=f"user:{username}",
        ),
    )
    return user


def set_roles(
    session: Session, *, tenant_slug: str, username: str, roles: Iterable[str], actor: str = "cli"
) -> User:
    user = get(session, tenant_slug=tenant_slug, username=username)
    parsed = sorted({parse_role(r).value for r in roles})
    user.role_rows = [UserRole(role=r) for r in parsed]
    audit.record(
        session,
        audit.Event(
            kind="user_roles",
            actor=actor,
            tenant_id=user.tenant_id,
            subject=f"user:{username}",
            data={"roles": parsed},
        ),
    )
    return user


def set_units(
    session: Session,
    *,
    tenant_slug: str,
    username: str,
    unit_codes: Iterable[str],
    actor: str = "cli",
) -> User:
    user = get(session, tenant_slug=tenant_slug, username=username)
    units = _units(session, user.tenant_id, unit_codes)
    user.memberships = [Membership(org_unit_id=u.id) for u in units]
    audit.record(
        session,
        audit.Event(
            kind="user_units",
            actor=actor,
            tenant_id=user.tenant_id,
            subject=f"user:{username}",
            data={"units": sorted(u.code for u in units)},
        ),
    )
    return user


def set_password(
    session: Session,
    *,
    tenant_slug: str,
    username: str,
    password: str,
    password_hasher: Callable[[str], str],
    actor: str = "cli",
) -> User:
    from rathaus.core.security import end_all_sessions

    check_password(password)
    user = get(session, tenant_slug=tenant_slug, username=username)
    user.password_hash = password_hasher(password)
    end_all_sessions(session, user.id)
    audit.record(
        session,
        audit.Event(
            kind="user_password", actor=actor, tenant_id=user.tenant_id, subject=f"user:{username}"
        ),
    )
    return user
