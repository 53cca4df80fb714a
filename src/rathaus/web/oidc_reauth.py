"""Re-authentication at the identity provider before a critical action (ASVS 3.7.1).

Accounts without a password in Rathaus (OIDC only) confirm a critical action
(:mod:`rathaus.web.reauth`) by signing in at the provider once more: ``/login/oidc?erneut=1``
from a signed-in session asks the provider for a fresh sign-in (``prompt=login``,
``max_age=0``). The callback then checks, besides the ID token, that its ``sub`` is the
session's account, that the flow began in this session and that ``auth_time`` is fresh, and sets
the re-authentication mark instead of opening a session. It needs no further redirect URI at
the provider.

The boundary: :mod:`rathaus.web.oidc` owns the routes, the login flow and everything that talks
to the provider (discovery, keys, code exchange, ID-token checks, the signed flow cookie); it
hands a signed-in ``/login/oidc?erneut=1`` to :func:`start` and a callback whose flow carries
:data:`rathaus.web.oidc.REAUTH_PURPOSE` to :func:`callback`. This module adds only what a
confirmation checks on top of a login, and its pages.

A form sent before the confirmation (:mod:`rathaus.web.reauth_keep`) travels as a reference
(``formular``) in the flow; after a successful return the page shows the kept form with the
action's name and a button that sends it, with a fresh CSRF token, to the action's path, so
nothing runs without a click. A refused or abandoned confirmation runs nothing and leaves the
form kept until it expires; the refusal says so, and trying again carries the reference on.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from rathaus.core.config import Settings
from rathaus.core.models import User, WebSession
from rathaus.core.security import lookup_session
from rathaus.web import oidc, reauth, reauth_keep
from rathaus.web.auth_views import safe_next
from rathaus.web.cookies import delete_cookie, session_token
from rathaus.web.oidc import OIDCLoginError
from rathaus.web.templating import render

log = logging.getLogger(__name__)

# A re-authentication counts when the provider saw the credentials at most two minutes ago, and
# not before the flow began; the clocks of Rathaus and the provider may differ by the skew.
REAUTH_MAX_AGE_S = 120
REAUTH_SKEW_S = 30

REAUTH_NOT_FRESH = (
    "Der Anmeldedienst hat keine frische Anmeldung bestätigt: Er hat Ihre Anmeldedaten nicht "
    "erneut abgefragt. Ausgeführt wurde nichts. Bitte versuchen Sie es noch einmal; geschieht "
    "das wieder, wenden Sie sich an die IT (der Anmeldedienst muss „prompt=login“ beachten und "
    "„auth_time“ mitsenden)."
)
REAUTH_OTHER_ACCOUNT = (
    "Beim Anmeldedienst hat sich ein anderes Konto angemeldet als das, mit dem Sie in Rathaus "
    "angemeldet sind; die Bestätigung gilt nicht und ausgeführt wurde nichts. Bitte melden Sie "
    "sich dort mit Ihrem eigenen Konto an."
)
REAUTH_SESSION_ENDED = (
    "Ihre Rathaus-Sitzung ist während der Bestätigung beim Anmeldedienst abgelaufen; "
    "ausgeführt wurde nichts. Bitte melden Sie sich erneut an."
)
REAUTH_SESSION_CHANGED = (
    "Die Bestätigung gehört zu einer anderen oder beendeten Rathaus-Sitzung und gilt nicht; "
    "ausgeführt wurde nichts. Bitte starten Sie die Bestätigung auf der Seite der Aktion neu."
)
# The audit trail's reason (``reauth_failed``) for each refusal of a confirmation.
_REAUTH_REASONS = {
    oidc.NOT_CONFIGURED: "sso_nicht_eingerichtet",
    oidc.PROVIDER_DOWN: "sso_nicht_erreichbar",
    oidc.PROVIDER_BLOCKED: "sso_adresse_gesperrt",
    oidc.FLOW_INVALID: "sso_ablauf_ungueltig",
    oidc.DENIED: "sso_abgelehnt",
    oidc.CONFIRMATION_INVALID: "sso_bestaetigung_ungueltig",
    REAUTH_NOT_FRESH: "sso_nicht_frisch",
    REAUTH_OTHER_ACCOUNT: "sso_anderes_konto",
    REAUTH_SESSION_CHANGED: "sso_andere_sitzung",
}
_ACTION = re.compile(r"[a-z0-9_-]{1,40}")


def _action(given: str) -> str:
    """The confirmed form's name for the audit trail (from the page's link, so only a tame
    word is kept)."""
    return given if _ACTION.fullmatch(given) else "anmeldedienst"


def _kept_token(given: str) -> str:
    """The reference to a kept form (from the URL), if it has the shape of one."""
    return given if reauth_keep.valid_token(given) else ""


def _flow(web_session: WebSession, action: str, kept: str) -> dict[str, str]:
    """What a confirmation's flow carries besides the login's: the session it is for, the
    form's name, the time it began (the provider's ``auth_time`` must not be older) and the
    reference to a form kept meanwhile."""
    flow = {
        "zweck": oidc.REAUTH_PURPOSE,
        "sitzung": str(web_session.id),
        "aktion": _action(action),
        "beginn": str(int(time.time())),
    }
    if _kept_token(kept):
        flow["formular"] = kept
    return flow


def check_fresh(claims: dict[str, Any], *, began: int, now: float | None = None) -> None:
    """Refuse an ID token whose ``auth_time`` does not prove a sign-in during this flow: it
    must exist, lie after ``began`` and be at most :data:`REAUTH_MAX_AGE_S` old (each with
    :data:`REAUTH_SKEW_S` for the clocks). A provider that ignored ``prompt=login`` answers
    with the time of an earlier sign-in, or with none."""
    now = time.time() if now is None else now
    auth_time = claims.get("auth_time")
    if isinstance(auth_time, bool) or not isinstance(auth_time, int | float):
        raise OIDCLoginError(401, REAUTH_NOT_FRESH, f"ID-Token ohne auth_time: {auth_time!r}")
    if not (
        began - REAUTH_SKEW_S <= auth_time <= now + REAUTH_SKEW_S
        and now - auth_time <= REAUTH_MAX_AGE_S + REAUTH_SKEW_S
    ):
        raise OIDCLoginError(
            401,
            REAUTH_NOT_FRESH,
            f"auth_time {int(auth_time)} nicht frisch (Beginn {began}, jetzt {int(now)})",
        )


def start(
    request: Request,
    session: Session,
    settings: Settings,
    current: tuple[WebSession, User],
    *,
    next_url: str,
    action: str,
    kept: str = "",
) -> Response:
    """Send a signed-in person to the provider to confirm the form ``action``: the login's
    authorization request plus ``prompt=login`` and ``max_age=0``. ``kept`` is the reference
    to the form kept for it (:mod:`rathaus.web.reauth_keep`), if any."""
    request.state.auth = current  # the confirmation's pages show the signed-in layout
    try:
        provider = oidc.provider_of(settings)
    except OIDCLoginError as exc:
        return _refused(
            request,
            session,
            exc,
            current=current,
            action=_action(action),
            back=next_url,
            kept=_kept_token(kept),
        )
    # OIDC Core 3.1.2.1: sign in again even with a live session at the provider, and (max_age)
    # name the time of that sign-in in the ID token's auth_time.
    return oidc.authorization_redirect(
        request,
        settings,
        provider,
        next_url=next_url,
        extra_flow=_flow(current[0], action, kept),
        extra_params={"prompt": "login", "max_age": "0"},
    )


def callback(
    request: Request,
    session: Session,
    settings: Settings,
    flow: dict[str, str],
    *,
    code: str,
    state: str,
    error: str,
) -> Response:
    """Check the provider's answer to a confirmation and set the mark for this session."""
    back = safe_next(flow["next"])
    action = _action(flow.get("aktion", ""))
    kept_token = _kept_token(flow.get("formular", ""))
    current = lookup_session(session, session_token(request), idle_s=settings.session_idle_s)
    if current is None:
        # The session ended meanwhile: nothing to confirm, and no one to name in the audit.
        exc = OIDCLoginError(401, REAUTH_SESSION_ENDED, "Sitzung des Ablaufs beendet")
        return oidc.login_refused(request, session, settings, exc, next_url=back)
    request.state.auth = current
    web_session, user = current
    try:
        if not oidc.same(flow["state"], state):
            raise OIDCLoginError(400, oidc.FLOW_INVALID, "state passt nicht")
        if str(web_session.id) != flow.get("sitzung"):
            raise OIDCLoginError(400, REAUTH_SESSION_CHANGED, "Ablauf einer anderen Sitzung")
        if error:
            raise OIDCLoginError(401, oidc.DENIED, f"Anbieter meldet: {error[:100]}")
        if not code:
            raise OIDCLoginError(400, oidc.FLOW_INVALID, "Antwort ohne code")
        claims = oidc.verified_claims(settings, code=code, flow=flow)
        subject = str(claims["sub"])
        if not oidc.same(user.oidc_subject or "", subject):
            raise OIDCLoginError(
                403, REAUTH_OTHER_ACCOUNT, f"sub={subject!r}, Sitzung von {user.username!r}"
            )
        began = flow.get("beginn", "")
        check_fresh(claims, began=int(began) if began.isdigit() else 2**62)
    except OIDCLoginError as exc:
        return _refused(
            request, session, exc, current=current, action=action, back=back, kept=kept_token
        )

    gate = reauth.confirmed_by_provider(
        request, session, web_session=web_session, user=user, action=action
    )
    kept = reauth_keep.take(session, web_session, kept_token) if kept_token else None
    session.commit()  # the kept form is used up before its page is shown
    context: dict[str, Any] = {"back": back, "error": "", "minutes": reauth.WINDOW_S // 60}
    if kept is not None:
        # The kept form, to be sent with a click (a fresh CSRF token comes from render).
        context["kept"] = kept
        context["target"] = safe_next(kept.path)
    elif kept_token:
        context["kept_gone"] = True
    response = render(request, "oidc_reauth.html", context)
    if not kept_token:
        # Not a redirect: the mark is a SameSite=Strict cookie, and a browser leaves such
        # cookies off every request of a redirect chain that began at another site (the
        # provider). A refresh is a new navigation started by this page, so the page comes
        # back confirmed. With a kept form the person reads the page and clicks on.
        response.headers["Refresh"] = f"0; url={_header_path(back)}"
    gate.finish(request, response)
    delete_cookie(response, settings, oidc.FLOW_COOKIE, path=oidc.FLOW_COOKIE_PATH)
    return response


def _header_path(path: str) -> str:
    # As Starlette quotes a redirect's Location: no control characters reach the header.
    return quote(path, safe=":/%#?=@[]!$&'()*+,;")


def _refused(
    request: Request,
    session: Session,
    exc: OIDCLoginError,
    *,
    current: tuple[WebSession, User],
    action: str,
    back: str,
    kept: str = "",
) -> Response:
    """No mark: audit the refusal and show it with the ways on (try again, back). A kept form
    stays kept (nothing ran, nothing is thrown away); trying again carries it on."""
    web_session, user = current
    log.warning("SSO-Bestätigung abgelehnt (%s): %s", exc.http_status, exc.detail)
    reauth.refused_by_provider(
        request,
        session,
        user=user,
        action=action,
        reason=_REAUTH_REASONS.get(exc.message, "sso_fehler"),
    )
    back = safe_next(back)
    query = {"erneut": "1", "next": back, "aktion": action}
    expires = reauth_keep.waiting(session, web_session, kept) if kept else None
    if expires is not None:
        query["formular"] = kept
    again = "/login/oidc?" + urlencode(query)
    response = render(
        request,
        "oidc_reauth.html",
        {
            "back": back,
            "again": again,
            "error": exc.message,
            "kept_minutes": _minutes_left(expires) if expires else 0,
        },
        status_code=exc.http_status,
    )
    delete_cookie(
        response, request.app.state.settings, oidc.FLOW_COOKIE, path=oidc.FLOW_COOKIE_PATH
    )
    return response


def _minutes_left(expires: dt.datetime) -> int:
    if expires.tzinfo is None:  # SQLite gives back the UTC digits without their offset
        expires = expires.replace(tzinfo=dt.UTC)
    return max(1, math.ceil((expires - dt.datetime.now(dt.UTC)).total_seconds() / 60))
