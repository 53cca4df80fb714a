"""The own second factor under /konto/zweiter-faktor: set it up, renew it, switch it off.

Setting up: the page shows a fresh key (and its ``otpauth://`` URI) for any authenticator app;
the factor is active only once a current code of that key is confirmed. The ten recovery codes
are shown once, in the answer to that confirmation. Renewing (a new phone) and switching off
are critical actions: they need the password again (:mod:`rathaus.web.reauth`, five minutes for
the session) and a valid code of the active factor (or a recovery code). A factor the policy
demands cannot be switched off, only renewed. Accounts without a password (single sign-on)
have no factor here: the provider's applies.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from rathaus.core import second_factor
from rathaus.core.models import Tenant, User
from rathaus.web import reauth
from rathaus.web.deps import AuthDep, CsrfDep, CurrentTenant, SessionDep, SettingsDep
from rathaus.web.second_factor_login import (
    ENROL_WRONG,
    MESSAGES,
    CodeField,
    enrolment_context,
    record_failure,
    record_success,
)
from rathaus.web.templating import render

router = APIRouter(include_in_schema=False)

BASE = "/konto/zweiter-faktor"
NOTICES = {
    "neu": (
        "Ein neuer Schlüssel steht unten bereit. Ihr bisheriger zweiter Faktor gilt weiter, bis "
        "Sie den neuen mit einem Code bestätigen."
    ),
    "abgeschaltet": "Der zweite Faktor ist abgeschaltet. Sie melden sich jetzt nur mit Passwort an.",
    "wiederherstellungscode": (
        "Sie haben sich mit einem Wiederherstellungscode angemeldet; er gilt nun nicht mehr. "
        "Haben Sie Ihr Gerät verloren, richten Sie den zweiten Faktor bitte neu ein."
    ),
}
NOT_ACTIVE = "Für Ihr Konto ist kein zweiter Faktor eingerichtet; es gibt nichts zu ändern."
NO_PENDING = (
    "Es wartet kein neuer Schlüssel auf Bestätigung (abgelaufen nach 15 Minuten). Bitte "
    "fordern Sie mit Passwort und Code einen neuen an."
)
REQUIRED = (
    "Für Ihre Rolle ist der zweite Faktor vorgeschrieben; Sie können ihn nicht abschalten, "
    "nur neu einrichten (zum Beispiel für ein neues Gerät)."
)


def _page(
    request: Request,
    session: Session,
    settings: Any,
    user: User,
    tenant: Tenant,
    *,
    notice: str = "",
    error: str = "",
    action: str = "",
    reauth_error: str = "",
    status_code: int = 200,
) -> Response:
    """The page in the state the factor is in: no password (SSO), active (status, renew,
    switch off), and, when not active or a renewal waits, the key to confirm."""
    factor = second_factor.get(session, user_id=user.id)
    active = bool(factor and factor.enabled_at and factor.secret_sealed)
    context: dict[str, Any] = {
        "sso_only": user.password_hash is None,
        "active": active,
        "enabled_at": factor.enabled_at if active and factor else None,
        "recovery_left": (
            second_factor.recovery_left(session, factor.id) if active and factor else 0
        ),
        "required": second_factor.required(settings, user),
        "notice": notice,
        "error": error,
        "action": action,
        "reauth": reauth.state(request, action=action, error=reauth_error),
        "enrolment": None,
    }
    if not context["sso_only"] and (
        not active or second_factor.has_pending(session, user_id=user.id)
    ):
        context["enrolment"] = enrolment_context(session, settings, user, tenant)
    return render(request, "konto_zweiter_faktor.html", context, status_code=status_code)


@router.get(BASE)
def own_factor(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    auth: AuthDep,
    tenant: CurrentTenant,
    meldung: str = "",
) -> Response:
    return _page(request, session, settings, auth[1], tenant, notice=NOTICES.get(meldung, ""))


@router.post(BASE, dependencies=[CsrfDep])
def confirm_enrolment(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    auth: AuthDep,
    tenant: CurrentTenant,
    code: CodeField = "",
) -> Response:
    """Confirm the key shown with a current code: the factor is active, the answer shows the
    recovery codes once."""
    user = auth[1]
    if user.password_hash is None:
        return _page(request, session, settings, user, tenant, status_code=400)
    if second_factor.is_active(session, user_id=user.id) and not second_factor.has_pending(
        session, user_id=user.id
    ):
        return _page(
            request, session, settings, user, tenant, error=NO_PENDING, action="einrichten",
            status_code=400,
        )  # fmt: skip
    key = settings.secret_key.get_secret_value()
    codes = second_factor.confirm(session, user=user, secret_key=key, code=code)
    if codes is None:
        return _page(
            request, session, settings, user, tenant, error=ENROL_WRONG, action="einrichten",
            status_code=422,
        )  # fmt: skip
    return render(request, "zweiter_faktor_codes.html", {"codes": codes, "continue_action": ""})


def _critical(
    request: Request,
    session: Session,
    settings: Any,
    user: User,
    tenant: Tenant,
    *,
    action: str,
    password: str,
    code: str,
) -> tuple[reauth.Gate, Response | None]:
    """The checks before renewing or switching off: an active factor, the password again
    (reauth), then a valid code. The gate, and the page to answer with when a check failed."""

    def refused(status: int, **kwargs: Any) -> Response:
        return _page(
            request, session, settings, user, tenant, action=action, status_code=status, **kwargs
        )

    if not second_factor.is_active(session, user_id=user.id):
        return reauth.Gate(ok=False), refused(400, error=NOT_ACTIVE)
    gate = reauth.confirm(request, session, password=password, action=f"zweiter_faktor_{action}")
    if not gate.ok:
        return gate, refused(gate.status_code, reauth_error=gate.error)
    key = settings.secret_key.get_secret_value()
    check = second_factor.check(session, user=user, secret_key=key, code=code)
    if check.reason == second_factor.MALFORMED:
        return gate, refused(422, error=MESSAGES[second_factor.MALFORMED])
    if not check.ok:
        record_failure(request, session, user, tenant, reason=check.reason, where=action)
        return gate, refused(401, error=MESSAGES.get(check.reason, MESSAGES[second_factor.WRONG]))
    record_success(session, user, check, where=action)
    return gate, None


@router.post(f"{BASE}/neu", dependencies=[CsrfDep])
def renew(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    auth: AuthDep,
    tenant: CurrentTenant,
    passwort: Annotated[str, Form(max_length=500)] = "",
    code: CodeField = "",
) -> Response:
    """A new key for a new device; the active factor holds until the new one is confirmed."""
    user = auth[1]
    gate, refusal = _critical(
        request, session, settings, user, tenant, action="neu", password=passwort, code=code
    )
    if refusal is not None:
        return gate.finish(request, refusal)
    second_factor.pending_secret(
        session, user=user, secret_key=settings.secret_key.get_secret_value(), fresh=True
    )
    return gate.finish(request, RedirectResponse(f"{BASE}?meldung=neu", status_code=303))


@router.post(f"{BASE}/abschalten", dependencies=[CsrfDep])
def switch_off(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    auth: AuthDep,
    tenant: CurrentTenant,
    passwort: Annotated[str, Form(max_length=500)] = "",
    code: CodeField = "",
) -> Response:
    user = auth[1]
    if second_factor.required(settings, user):
        return _page(
            request, session, settings, user, tenant, error=REQUIRED, action="abschalten",
            status_code=403,
        )  # fmt: skip
    gate, refusal = _critical(
        request, session, settings, user, tenant, action="abschalten", password=passwort, code=code
    )
    if refusal is not None:
        return gate.finish(request, refusal)
    second_factor.remove(session, user=user, actor=user.username, kind="second_factor_disabled")
    return gate.finish(request, RedirectResponse(f"{BASE}?meldung=abgeschaltet", status_code=303))
