"""The second step of a password login: a code from the authenticator app (or a recovery code),
or, where the policy demands a factor and none is set up, its enrolment first.

After a right password :func:`begin` starts no session yet. It stores an unfinished login
(``login_challenges``: only the SHA-256 of a random token, the user, where to go next) and gives
the browser the token in a cookie (``rathaus_login_factor``, ``__Host-`` with secure cookies,
``HttpOnly``, ``SameSite=Strict``) that lasts :data:`CODE_S` seconds (:data:`ENROL_S` for an
enrolment). The session is created only when the step is done (:func:`rathaus.web.auth_views.
signed_in`), and the unfinished login is deleted then: it is used once. Every form of the step
carries a token bound to the unfinished login (CSRF).

Wrong codes count towards the login's lock-out (:class:`rathaus.web.auth_views.LoginGuard`,
per address and per account) and towards the factor's own limit of wrong codes in a row
(:mod:`rathaus.core.second_factor`). Single sign-on logins (:mod:`rathaus.web.oidc`) never pass
here: the provider's factor applies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rathaus.core import audit, second_factor, totp
from rathaus.core.models import LoginChallenge, Tenant, User, utcnow
from rathaus.core.security import tokens_match
from rathaus.web.auth_views import LoginGuard, login_blocked_message, safe_next, signed_in
from rathaus.web.cookies import delete_cookie, read_cookie, set_cookie
from rathaus.web.deps import SessionDep, SettingsDep
from rathaus.web.templating import render

router = APIRouter(include_in_schema=False)

CHALLENGE_COOKIE = "rathaus_login_factor"
# A typed code: six digits or a recovery code, with room for spaces and dashes.
CodeField = Annotated[str, Form(max_length=40)]
TokenField = Annotated[str, Form(max_length=200)]
CODE_S = 300
ENROL_S = 900  # installing an app and typing the key takes longer than a code
PATH = "/login/zweiter-faktor"
ENROL_PATH = f"{PATH}/einrichten"
DONE_PATH = f"{PATH}/weiter"
CODE, ENROL, DONE = "code", "einrichtung", "fertig"
EXPIRED_REASON = "zweiter-faktor"  # the login page's notice (auth_views.NOTICES)
# After a login with a recovery code: the page of the own factor says how many are left.
RECOVERY_NOTICE = "/konto/zweiter-faktor?meldung=wiederherstellungscode"

MESSAGES = {
    second_factor.WRONG: (
        "Der Code ist falsch oder abgelaufen. Bitte geben Sie den aktuellen Code aus Ihrer "
        "App ein. Nach mehreren Fehlversuchen wird die Anmeldung für Ihr Konto vorübergehend "
        "gesperrt."
    ),
    second_factor.REPLAYED: (
        "Dieser Code wurde schon verwendet. Bitte warten Sie, bis Ihre App einen neuen Code "
        "zeigt (alle 30 Sekunden), und geben Sie diesen ein."
    ),
    second_factor.LOCKED: (
        "Zu viele falsche Codes in Folge: Codes aus der App werden für dieses Konto nicht mehr "
        "angenommen. Bitte melden Sie sich mit einem Ihrer Wiederherstellungscodes an, oder "
        "lassen Sie den zweiten Faktor von der Administration zurücksetzen "
        "(rathaus users zweiter-faktor-zuruecksetzen)."
    ),
    second_factor.MALFORMED: (
        "Bitte geben Sie den sechsstelligen Code aus Ihrer App ein (nur Ziffern) oder einen "
        "Wiederherstellungscode (zehn Zeichen, z. B. ABCDE-FGH23)."
    ),
}
ENROL_WRONG = (
    "Der Code passt nicht zum angezeigten Schlüssel. Bitte prüfen Sie, ob Sie den Schlüssel "
    "vollständig übernommen haben und die Uhr Ihres Geräts stimmt, und geben Sie den aktuellen "
    "Code ein."
)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def form_token(settings: Any, challenge: LoginChallenge) -> str:
    """The CSRF token of the step's forms: an HMAC (installation secret) over the unfinished
    login; worthless for any other."""
    key = settings.secret_key.get_secret_value().encode()
    message = f"zweiter-faktor\0{challenge.id}\0{challenge.token_hash}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def guard_for(request: Request, tenant: Tenant, user: User) -> LoginGuard:
    """The login's brute-force protection of ``user``'s account (the same keys as the login)."""
    return LoginGuard(request, f"{tenant.slug}:{user.username.strip().casefold()}")


def record_failure(
    request: Request,
    session: Session,
    user: User,
    tenant: Tenant,
    *,
    reason: str,
    where: str,
) -> None:
    """Audit a refused code (``second_factor_failed``; never the code) and count it towards the
    login's lock-out. Commits: the record must outlive a page that rolls back."""
    audit.record(
        session,
        audit.Event(
            kind="second_factor_failed",
            actor=user.username,
            tenant_id=user.tenant_id,
            subject=f"user:{user.id}",
            data={
                "grund": reason,
                "schritt": where,
                "ip": request.client.host if request.client else "",
            },
        ),
    )
    guard_for(request, tenant, user).failed(session, request.app.state.settings, user, tenant)
    session.commit()


def record_success(session: Session, user: User, check: second_factor.Check, *, where: str) -> None:
    """Audit an accepted code: ``second_factor_ok``, or ``second_factor_recovery_used`` with
    the number of recovery codes left."""
    recovery = check.method == second_factor.RECOVERY
    audit.record(
        session,
        audit.Event(
            kind="second_factor_recovery_used" if recovery else "second_factor_ok",
            actor=user.username,
            tenant_id=user.tenant_id,
            subject=f"user:{user.id}",
            data={"schritt": where, **({"verbleibend": check.recovery_left} if recovery else {})},
        ),
    )


def begin(
    request: Request,
    session: Session,
    settings: Any,
    user: User,
    *,
    next_url: str,
    password_listed: bool,
) -> Response | None:
    """After a right password: the way to the second step, or ``None`` when ``user`` has no
    active factor and the policy demands none (the login is complete)."""
    if second_factor.is_active(session, user_id=user.id):
        purpose, lifetime, target = CODE, CODE_S, PATH
    elif second_factor.required(settings, user):
        purpose, lifetime, target = ENROL, ENROL_S, ENROL_PATH
    else:
        return None
    now = utcnow()
    session.execute(delete(LoginChallenge).where(LoginChallenge.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(
        LoginChallenge(
            token_hash=_hash(token),
            user_id=user.id,
            purpose=purpose,
            next_url=safe_next(next_url)[:500],
            password_listed=password_listed,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=lifetime),
        )
    )
    session.flush()
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, settings, CHALLENGE_COOKIE, token, samesite="strict", max_age=lifetime)
    return response


def _challenge(request: Request, session: Session) -> tuple[LoginChallenge, User, Tenant] | None:
    """The unfinished login of this browser, its active user and tenant; ``None`` when there is
    none, it expired, or the account or municipality was disabled meanwhile."""
    token = read_cookie(request, CHALLENGE_COOKIE)
    if not token or len(token) > 100:
        return None
    row = session.scalar(
        select(LoginChallenge).where(
            LoginChallenge.token_hash == _hash(token), LoginChallenge.expires_at > utcnow()
        )
    )
    if row is None:
        return None
    user = session.get(User, row.user_id)
    tenant = session.get(Tenant, user.tenant_id) if user is not None else None
    if user is None or tenant is None or not (user.is_active and tenant.is_active):
        return None
    return row, user, tenant


def _at(
    request: Request, session: Session, settings: Any, purpose: str
) -> tuple[LoginChallenge, User, Tenant] | Response:
    """This browser's unfinished login at step ``purpose``; otherwise the answer: back to the
    login (none, or expired), or to the page of the step it is at."""
    found = _challenge(request, session)
    if found is None:
        return _expired(settings)
    if found[0].purpose != purpose:
        return _elsewhere(settings, found[0])
    return found


def _expired(settings: Any) -> Response:
    response = RedirectResponse(f"/login?grund={EXPIRED_REASON}", status_code=303)
    delete_cookie(response, settings, CHALLENGE_COOKIE)
    return response


def _elsewhere(settings: Any, challenge: LoginChallenge) -> Response:
    """The page of the step this unfinished login is at. Once the recovery codes of an
    enrolment were shown (:data:`DONE`) only their page's button leads on; leaving it means
    signing in anew, with the factor that is now active."""
    if challenge.purpose == DONE:
        return _expired(settings)
    return RedirectResponse(ENROL_PATH if challenge.purpose == ENROL else PATH, status_code=303)


def _code_page(
    request: Request,
    settings: Any,
    challenge: LoginChallenge,
    user: User,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "login_zweiter_faktor.html",
        {
            "form_token": form_token(settings, challenge),
            "account": user.username,
            "error": error,
            "minutes": CODE_S // 60,
        },
        status_code=status_code,
    )


def qr_svg(uri: str) -> Markup:
    """The ``otpauth://`` URI as a QR code for the authenticator app's camera: inline SVG drawn
    by segno on the server (no script, no external asset; black on white, so it reads on a dark
    page too). Only path data and a fixed title come out, never text from the URI."""
    import segno

    code = segno.make(uri, error="m", micro=False)
    svg = code.svg_inline(scale=4, border=4, dark="#000", light="#fff", title=QR_TITLE)
    return Markup(svg)  # noqa: S704 - segno writes only path data and the fixed, escaped title


QR_TITLE = "QR-Code zum Einrichten in der Authenticator-App"
FORM_EXPIRED = "Das Formular ist abgelaufen. Bitte geben Sie den Code erneut ein."


def enrolment_context(
    session: Session, settings: Any, user: User, tenant: Tenant, *, fresh: bool = False
) -> dict[str, Any]:
    """What the enrolment's key block shows: the key grouped for typing, the ``otpauth://`` URI
    and until when the key can be confirmed (``templates/_zweiter_faktor_schluessel.html``)."""
    key = settings.secret_key.get_secret_value()
    secret, until = second_factor.pending_secret(session, user=user, secret_key=key, fresh=fresh)
    name = second_factor.issuer(tenant.name)
    uri = totp.otpauth_uri(secret, issuer=name, account=user.username)
    return {
        "key_grouped": totp.grouped(totp.to_base32(secret)),
        "uri": uri,
        "qr_svg": qr_svg(uri),
        "issuer": name,
        "account": user.username,
        "until": until,
    }


def _enrol_page(
    request: Request,
    session: Session,
    settings: Any,
    found: tuple[LoginChallenge, User, Tenant],
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    challenge, user, tenant = found
    return render(
        request,
        "login_zweiter_faktor_einrichten.html",
        {
            "enrolment": enrolment_context(session, settings, user, tenant),
            "form_token": form_token(settings, challenge),
            "error": error,
        },
        status_code=status_code,
    )


def _finish(
    request: Request, session: Session, settings: Any, challenge: LoginChallenge, user: User
) -> Response:
    """The step is done: the unfinished login is used up and the session begins."""
    target, listed = challenge.next_url, challenge.password_listed
    session.delete(challenge)
    session.flush()
    response = signed_in(
        request,
        session,
        settings,
        user,
        next_url=target,
        audit_kind="login",
        password_listed=listed,
    )
    delete_cookie(response, settings, CHALLENGE_COOKIE)
    return response


@router.get(PATH)
def code_form(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    found = _at(request, session, settings, CODE)
    if isinstance(found, Response):
        return found
    return _code_page(request, settings, found[0], found[1])


@router.post(PATH)
def code_sent(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    code: CodeField = "",
    csrf_token: TokenField = "",
) -> Response:
    found = _at(request, session, settings, CODE)
    if isinstance(found, Response):
        return found
    challenge, user, tenant = found
    if not tokens_match(form_token(settings, challenge), csrf_token):
        error = FORM_EXPIRED
        return _code_page(request, settings, challenge, user, error=error, status_code=403)
    wait = guard_for(request, tenant, user).wait()
    if wait:
        response = _code_page(
            request, settings, challenge, user, error=login_blocked_message(wait), status_code=429
        )
        response.headers["Retry-After"] = str(wait)
        return response
    key = settings.secret_key.get_secret_value()
    check = second_factor.check(session, user=user, secret_key=key, code=code)
    if check.reason == second_factor.MALFORMED:
        error = MESSAGES[second_factor.MALFORMED]
        return _code_page(request, settings, challenge, user, error=error, status_code=422)
    if not check.ok:
        record_failure(request, session, user, tenant, reason=check.reason, where="anmeldung")
        error = MESSAGES.get(check.reason, MESSAGES[second_factor.WRONG])
        return _code_page(request, settings, challenge, user, error=error, status_code=401)
    record_success(session, user, check, where="anmeldung")
    if check.method == second_factor.RECOVERY and not challenge.password_listed:
        challenge.next_url = RECOVERY_NOTICE
    return _finish(request, session, settings, challenge, user)


@router.get(ENROL_PATH)
def enrol_form(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    found = _at(request, session, settings, ENROL)
    if isinstance(found, Response):
        return found
    return _enrol_page(request, session, settings, found)


@router.post(ENROL_PATH)
def enrol_sent(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    code: CodeField = "",
    csrf_token: TokenField = "",
) -> Response:
    """Confirm the enrolment the policy demands; the response shows the recovery codes once and
    leads on with :data:`DONE_PATH`, which starts the session."""
    found = _at(request, session, settings, ENROL)
    if isinstance(found, Response):
        return found
    challenge, user, tenant = found
    if not tokens_match(form_token(settings, challenge), csrf_token):
        error = FORM_EXPIRED
        return _enrol_page(request, session, settings, found, error=error, status_code=403)
    key = settings.secret_key.get_secret_value()
    codes = second_factor.confirm(session, user=user, secret_key=key, code=code)
    if codes is None:
        return _enrol_page(request, session, settings, found, error=ENROL_WRONG, status_code=422)
    challenge.purpose = DONE
    challenge.expires_at = utcnow() + dt.timedelta(seconds=CODE_S)
    session.flush()
    return render(
        request,
        "zweiter_faktor_codes.html",
        {
            "codes": codes,
            "continue_action": DONE_PATH,
            "form_token": form_token(settings, challenge),
        },
    )


@router.post(DONE_PATH)
def enrolled_continue(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    csrf_token: TokenField = "",
) -> Response:
    found = _at(request, session, settings, DONE)
    if isinstance(found, Response):
        return found
    challenge, user, _ = found
    if not tokens_match(form_token(settings, challenge), csrf_token):
        return _expired(settings)
    return _finish(request, session, settings, challenge, user)
