"""Re-authentication before critical actions in the web UI (ASVS 3.7.1).

Before a DSGVO erasure, the execution of retention rules or a change of the municipality's
Bankverbindung the signed-in person enters their password once more. The action's page shows
the password field inline and the action's POST carries it (field ``passwort``), so nothing
typed into the form is lost. A confirmation holds for :data:`WINDOW_S` seconds.

Where the confirmation is kept: ``web_sessions`` has no free column and a migration is out of
the question for this, so the mark is a cookie (``rathaus_reauth``, ``__Host-`` with secure
cookies, ``HttpOnly``, ``SameSite=Strict``) holding the time of the confirmation and an HMAC
over that time, the server-side session (row id and token hash) and the user, keyed with the
installation secret. It cannot be forged, counts only together with the very session it was
made for (a logout or an ended session voids it) and is checked against the server's clock.

The password check is the login's: argon2, and failures count toward the login's lock-out
(the same limiter rules and keys, per address and per account); success and failure are
audited (``reauth_confirmed``, ``reauth_failed``).

Accounts without a password in Rathaus (OIDC only) confirm at the identity provider instead:
the page links to a fresh sign-in there (``/login/oidc?erneut=1``, :mod:`rathaus.web.oidc_reauth`:
``prompt=login``, ``max_age=0``, a fresh ``auth_time`` for the session's own ``sub``), which
sets the same mark (:func:`confirmed_by_provider`) and brings the person back to the page. With
single sign-on switched off they are refused with a pointer to the command line.

What such an account typed is not lost on the way: when it sends the form of a critical action
unconfirmed, :func:`confirm` keeps the form server-side (:mod:`rathaus.web.reauth_keep`) and the
action's :meth:`Gate.finish` sends the browser to the provider with a reference to it; after the
confirmation a page shows the kept form, which the person sends with a click.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from rathaus.core import audit
from rathaus.core.models import Tenant, User, WebSession
from rathaus.core.security import verify_password
from rathaus.web import reauth_keep
from rathaus.web.auth_views import LoginGuard, safe_next, session_mac
from rathaus.web.cookies import read_cookie, set_cookie
from rathaus.web.limits import seconds_text
from rathaus.web.templating import render

MARK_COOKIE = "rathaus_reauth"
# As Starlette quotes a redirect's Location: no control characters reach a header.
_URL_SAFE = ":/%#?=@[]!$&'()*+,;"
WINDOW_S = 300
FIELD = "passwort"

MISSING = "Bitte bestätigen Sie diese Aktion mit Ihrem Passwort; ausgeführt wurde noch nichts."
SSO_MISSING = (
    "Bitte bestätigen Sie diese Aktion zuerst mit einer erneuten Anmeldung beim Anmeldedienst "
    "(„Beim Anmeldedienst erneut anmelden“); ausgeführt wurde noch nichts."
)
WRONG = (
    "Das Passwort ist falsch; ausgeführt wurde nichts. Nach mehreren Fehlversuchen wird die "
    "Anmeldung für Ihr Konto vorübergehend gesperrt."
)


def blocked_message(seconds: int) -> str:
    return (
        "Zu viele fehlgeschlagene Passwort-Eingaben. Zum Schutz Ihres Kontos sind Anmeldung und "
        f"Bestätigung für {seconds_text(seconds)} gesperrt; ausgeführt wurde nichts. Bitte "
        "versuchen Sie es danach erneut."
    )


def no_password_message(cli: str) -> str:
    return (
        "Ihr Konto meldet sich über den Anmeldedienst (SSO) an und hat kein Passwort in "
        "Rathaus, mit dem Sie diese Aktion bestätigen könnten; ausgeführt wurde nichts. Bitte "
        f"lassen Sie sie von der Administration auf der Kommandozeile des Servers ausführen "
        f"({cli})."
    )


def _now() -> int:
    return int(time.time())


def _digest(request: Request, web_session: WebSession, at: int) -> str:
    return session_mac(request.app.state.settings, "reauth", web_session, at)


def _auth(request: Request) -> tuple[WebSession, User]:
    """The request's session and user (cached by :func:`rathaus.web.deps.get_web_session`,
    which every protected route runs before its body)."""
    return request.state.auth  # type: ignore[no-any-return]


def sso_possible(request: Request, user: User) -> bool:
    """Whether ``user`` confirms at the identity provider: single sign-on is on and the account
    has no password in Rathaus but is bound to a provider account."""
    settings = request.app.state.settings
    return bool(settings.oidc.enabled and user.password_hash is None and user.oidc_subject)


def return_path(request: Request) -> str:
    """The page to come back to after a confirmation at the provider (a same-site path).

    A page itself (plain GET) is its own return path; for a form's POST or an HTMX request it
    is the page the browser showed, taken from ``HX-Current-URL`` or ``Referer`` (both only
    as a path: the browser sends ``Referer`` to this site only, ``Referrer-Policy:
    same-origin``); without either, the start page."""
    if request.method == "GET" and "hx-request" not in request.headers:
        query = request.url.query
        return safe_next(request.url.path + (f"?{query}" if query else ""))
    for header in ("hx-current-url", "referer"):
        parts = urlsplit(request.headers.get(header, ""))
        if parts.path:
            return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
    return "/"


def recently_confirmed(request: Request) -> bool:
    """Whether this session confirmed with a password in the last :data:`WINDOW_S` seconds."""
    value = read_cookie(request, MARK_COOKIE) or ""
    at_text, _, digest = value.partition(".")
    if not at_text.isdigit() or len(at_text) > 12:
        return False
    at = int(at_text)
    if not 0 <= _now() - at <= WINDOW_S:
        return False
    return hmac.compare_digest(_digest(request, _auth(request)[0], at), digest)


def state(request: Request, *, action: str = "", error: str = "", back: str = "") -> dict[str, Any]:
    """What a page needs to show the password field: ``needed``, ``oidc`` (no password to
    enter), and the ``error`` of the failed ``action`` (a form's name).

    For an account that confirms at the provider (:func:`sso_possible`), ``sso_url`` starts
    that sign-in and returns to ``back`` (default :func:`return_path`); the template adds
    ``&aktion=`` with the form's name. Empty otherwise."""
    user = _auth(request)[1]
    sso_url = ""
    if sso_possible(request, user):
        query = urlencode({"erneut": "1", "next": safe_next(back or return_path(request))})
        sso_url = f"/login/oidc?{query}"
    return {
        "needed": not recently_confirmed(request),
        "oidc": user.password_hash is None,
        "sso_url": sso_url,
        "action": action,
        "error": error,
        "minutes": WINDOW_S // 60,
    }


@dataclass(frozen=True)
class Gate:
    """The outcome of :func:`confirm`: go ahead (``ok``), or the German ``error`` with the
    status to answer. :meth:`finish` puts a fresh confirmation on the action's response, or,
    with ``redirect`` (a kept form, :func:`confirm`), answers with the way to the provider
    instead of the action's page."""

    ok: bool
    error: str = ""
    status_code: int = 200
    retry_after: int = 0
    mark: str = ""
    redirect: str = ""

    def finish(self, request: Request, response: Response) -> Response:
        if self.redirect:
            return _leaving(request, self.redirect)
        if self.mark:
            set_cookie(
                response,
                request.app.state.settings,
                MARK_COOKIE,
                self.mark,
                max_age=WINDOW_S,
                samesite="strict",
            )
        if self.retry_after:
            response.headers["Retry-After"] = str(self.retry_after)
        return response


def confirm(
    request: Request, session: Session, *, password: str, action: str, cli: str = "rathaus …"
) -> Gate:
    """Check that the signed-in person is really there before ``action`` (an audit name).

    Passes when the session confirmed recently; else checks ``password`` like the login does
    (limiter first, then argon2) and audits the outcome. ``cli`` names the command an account
    without a password is pointed to."""
    web_session, user = _auth(request)
    if recently_confirmed(request):
        return Gate(ok=True)
    tenant = session.get(Tenant, user.tenant_id)
    assert tenant is not None  # a user always belongs to a tenant (foreign key)

    def failed(reason: str) -> None:
        _record_failure(request, session, user, action=action, data={"grund": reason})

    if user.password_hash is None and sso_possible(request, user):
        # Like a missing password: the confirmation at the provider has not happened yet.
        return _to_provider(request, session, web_session, action=action)
    if user.password_hash is None:
        failed("kein_passwort")
        return Gate(ok=False, error=no_password_message(cli), status_code=403)
    if not password:
        # 401 as for a wrong password, not 403: the role allows the action, only the
        # confirmation is missing (tests/web/test_access_matrix.py tells the two apart).
        return Gate(ok=False, error=MISSING, status_code=401)
    # The login's brute-force protection, with its keys: failures here and at the login add up.
    guard = LoginGuard(request, f"{tenant.slug}:{user.username.strip().casefold()}")
    wait = guard.wait()
    if wait:
        failed("gesperrt")
        return Gate(ok=False, error=blocked_message(wait), status_code=429, retry_after=wait)
    if not verify_password(user.password_hash, password):
        failed("passwort_falsch")
        guard.failed(session, request.app.state.settings, user, tenant)
        return Gate(ok=False, error=WRONG, status_code=401)
    return _confirmed(request, session, web_session, user, action=action, data={})


def _to_provider(
    request: Request, session: Session, web_session: WebSession, *, action: str
) -> Gate:
    """An unconfirmed account that confirms at the provider sent a critical action's form:
    keep the form (:mod:`rathaus.web.reauth_keep`) and send the browser to the provider with
    the reference. Without a form (a JSON request) it is refused as before; a form too large to
    keep is refused with the advice to confirm first."""
    form = reauth_keep.sent_form(request)
    if request.method != "POST" or form is None:
        return Gate(ok=False, error=SSO_MISSING, status_code=401)
    token = reauth_keep.keep(request, session, web_session, form=form, action=action)
    if not token:
        return Gate(ok=False, error=reauth_keep.TOO_LARGE, status_code=413)
    query = urlencode(
        {"erneut": "1", "next": return_path(request), "aktion": action, "formular": token}
    )
    return Gate(ok=False, error=SSO_MISSING, status_code=401, redirect=f"/login/oidc?{query}")


def _leaving(request: Request, url: str) -> Response:
    """The way from a kept form to the provider (``url``, a path of this site).

    Not a redirect of the form's POST: the pages' ``form-action 'self'`` also covers where a
    form's redirects lead, and the provider lies on another site. A refresh is a navigation of
    its own; HTMX is told with ``HX-Redirect``. The page names the way for a browser that does
    not refresh."""
    if "hx-request" in request.headers:
        return Response(status_code=200, headers={"HX-Redirect": url})
    response = render(request, "oidc_reauth.html", {"leaving": url, "back": return_path(request)})
    response.headers["Refresh"] = f"0; url={quote(url, safe=_URL_SAFE)}"
    return response


def confirmed_by_provider(
    request: Request, session: Session, *, web_session: WebSession, user: User, action: str
) -> Gate:
    """The identity provider confirmed a fresh sign-in of ``user`` in ``web_session`` (checked
    by :mod:`rathaus.web.oidc_reauth`): audit it and hand out the same mark as the password does."""
    return _confirmed(request, session, web_session, user, action=action, data={"methode": "oidc"})


def refused_by_provider(
    request: Request, session: Session, *, user: User, action: str, reason: str
) -> None:
    """Audit a confirmation at the identity provider that did not count (``reason``)."""
    _record_failure(
        request, session, user, action=action, data={"grund": reason, "methode": "oidc"}
    )


def _confirmed(
    request: Request,
    session: Session,
    web_session: WebSession,
    user: User,
    *,
    action: str,
    data: dict[str, Any],
) -> Gate:
    """Audit a confirmation (``reauth_confirmed``, ``data`` added to the window) and hand out a
    fresh mark for ``web_session``."""
    audit.record(
        session,
        audit.Event(
            kind="reauth_confirmed",
            actor=user.username,
            tenant_id=user.tenant_id,
            subject=action,
            data={"gueltig_s": WINDOW_S, **data},
        ),
    )
    at = _now()
    return Gate(ok=True, mark=f"{at}.{_digest(request, web_session, at)}")


def _record_failure(
    request: Request, session: Session, user: User, *, action: str, data: dict[str, Any]
) -> None:
    audit.record(
        session,
        audit.Event(
            kind="reauth_failed",
            actor=user.username,
            tenant_id=user.tenant_id,
            subject=action,
            data={**data, "ip": request.client.host if request.client else ""},
        ),
    )
    # Kept even if the action's page rolls its own work back afterwards.
    session.commit()
