"""Readable route signatures: ``SessionDep``, ``CurrentUser``, permission and CSRF checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from rathaus.core.config import Settings
from rathaus.core.db import Database
from rathaus.core.models import Tenant, User, WebSession
from rathaus.core.roles import Permission, permissions_of
from rathaus.core.security import check_session, tokens_match
from rathaus.web.cookies import session_token


class LoginRequired(Exception):
    """No valid session: the UI redirects to the login page, the API answers 401.

    ``reason`` is :data:`rathaus.core.security.IDLE` when the session ended for inactivity
    (the login page then says so), else why else there is none."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(Exception):
    """Logged in, but the roles do not allow this (answered with 403 and a German message)."""

    def __init__(self, message: str = "Für diese Seite fehlt Ihnen die Berechtigung.") -> None:
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    """A state-changing request without the session's CSRF token."""


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_database(request: Request) -> Database:
    return request.app.state.db


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.db.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_web_session(request: Request, session: SessionDep) -> tuple[WebSession, User]:
    cached = getattr(request.state, "auth", None)
    if cached is not None:
        return cached
    checked = check_session(
        session,
        session_token(request),
        idle_s=request.app.state.settings.session_idle_s,
    )
    found = checked.found
    if found is None:
        raise LoginRequired(checked.reason)
    # Detach the loaded user so a rollback of this request (e.g. after a refused action)
    # does not expire it before the error page is rendered with the user's name.
    for obj in found:
        session.expunge(obj)
    request.state.auth = found
    return found


AuthDep = Annotated[tuple[WebSession, User], Depends(get_web_session)]


def get_current_user(auth: AuthDep) -> User:
    return auth[1]


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_tenant(user: CurrentUser, session: SessionDep) -> Tenant:
    tenant = session.get(Tenant, user.tenant_id)
    assert tenant is not None  # a user always belongs to a tenant (foreign key)
    return tenant


CurrentTenant = Annotated[Tenant, Depends(get_tenant)]


def require(*permissions: Permission) -> Callable[[User], User]:
    """Dependency: the current user must hold every one of ``permissions``.

    The returned callable carries them as ``required_permissions``, so that the generated
    access-matrix test (tests/web/test_access_matrix.py) reads what every route demands straight
    from the route's dependencies instead of from a hand-kept list."""
    wanted = frozenset(permissions)

    def check(user: CurrentUser) -> User:
        if not wanted <= permissions_of(user.roles):
            raise Forbidden()
        return user

    check.required_permissions = wanted  # type: ignore[attr-defined]
    return check


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def check_csrf_header(request: Request, web_session: WebSession) -> None:
    """JSON API: a state-changing request must carry the session's token in ``X-CSRF-Token``."""
    if request.method in UNSAFE_METHODS and not tokens_match(
        web_session.csrf_token, request.headers.get("x-csrf-token")
    ):
        raise CsrfFailed()


async def csrf_protect(request: Request, auth: AuthDep) -> None:
    """State-changing requests must carry the session's token (form field or header)."""
    if request.method not in UNSAFE_METHODS:
        return
    given = request.headers.get("x-csrf-token")
    if not given:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            given = value if isinstance(value, str) else None
    if not tokens_match(auth[0].csrf_token, given):
        raise CsrfFailed()


CsrfDep = Depends(csrf_protect)
