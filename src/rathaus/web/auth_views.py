"""Login and logout for staff (password with argon2; optional OIDC in :mod:`rathaus.web.oidc`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from rathaus.core import audit
from rathaus.core.models import Tenant, User
from rathaus.core.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    create_session,
    end_session,
    lookup_session,
    new_login_csrf,
    tokens_match,
    verify_password,
)
from rathaus.web.deps import AuthDep, CsrfDep, SessionDep, SettingsDep
from rathaus.web.templating import render

router = APIRouter(include_in_schema=False)

LOGIN_FAILED = "Benutzername oder Passwort ist falsch, oder das Konto ist gesperrt."


def safe_next(target: str | None) -> str:
    """Only same-site paths are allowed as a redirect target after login."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def login_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    *,
    error: str = "",
    username: str = "",
    next_url: str = "/",
    status_code: int = 200,
) -> Response:
    token = new_login_csrf()
    tenants = session.scalars(select(Tenant).where(Tenant.is_active).order_by(Tenant.name)).all()
    response = render(
        request,
        "login.html",
        {
            "login_csrf": token,
            "error": error,
            "username": username,
            "next_url": safe_next(next_url),
            "tenants": tenants,
            "default_tenant": settings.default_tenant,
            "demo_credentials": request.app.state.demo_credentials if settings.is_demo else [],
            "oidc_enabled": settings.oidc.enabled,
        },
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        max_age=3600,
    )
    return response


def signed_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: User,
    *,
    next_url: str,
    audit_kind: str,
) -> RedirectResponse:
    """Start a session for ``user`` (password or OIDC), audit it and redirect to ``next_url``."""
    token, _ = create_session(
        session,
        user,
        max_age_s=settings.session_max_age_s,
        user_agent=request.headers.get("user-agent", ""),
    )
    audit.record(
        session, audit.Event(kind=audit_kind, actor=user.username, tenant_id=user.tenant_id)
    )
    response = RedirectResponse(safe_next(next_url), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=settings.session_max_age_s,
    )
    return response


@router.get("/login")
def login_form(
    request: Request, session: SessionDep, settings: SettingsDep, next: str = "/"
) -> Response:
    if lookup_session(session, request.cookies.get(SESSION_COOKIE)):
        return RedirectResponse(safe_next(next), status_code=303)
    return login_page(request, session, settings, next_url=next)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=500)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    kommune: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
        return login_page(
            request,
            session,
            settings,
            error="Das Formular ist abgelaufen. Bitte melden Sie sich erneut an.",
            username=username,
            next_url=next,
            status_code=403,
        )
    tenant = session.scalar(
        select(Tenant).where(Tenant.slug == (kommune or settings.default_tenant))
    )
    user = None
    if tenant is not None:
        user = session.scalar(
            select(User).where(User.tenant_id == tenant.id, User.username == username.strip())
        )
    ok = verify_password(user.password_hash if user else None, password)
    if not (ok and user is not None and user.is_active and tenant is not None and tenant.is_active):
        audit.record(
            session,
            audit.Event(
                kind="login_failed",
                actor=username.strip()[:100] or "unbekannt",
                tenant_id=tenant.id if tenant else None,
                data={"ip": request.client.host if request.client else ""},
            ),
        )
        return login_page(
            request,
            session,
            settings,
            error=LOGIN_FAILED,
            username=username,
            next_url=next,
            status_code=401,
        )
    response = signed_in(request, session, settings, user, next_url=next, audit_kind="login")
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout", dependencies=[CsrfDep])
def logout(request: Request, session: SessionDep, auth: AuthDep) -> Response:
    end_session(session, request.cookies.get(SESSION_COOKIE))
    user = auth[1]
    audit.record(session, audit.Event(kind="logout", actor=user.username, tenant_id=user.tenant_id))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
