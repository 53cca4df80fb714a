"""Optional single sign-on through OpenID Connect (authorization code flow with PKCE), e.g. Keycloak.

Rathaus stays the place where accounts and roles are managed: the provider only proves who
someone is. The user must already exist and be active in the default tenant; the first SSO login
finds the account by the configured user-name claim and binds it to the provider's ``sub``, later
logins find it by ``sub`` alone. Both routes answer 404 while ``oidc.enabled`` is false.

The same flow confirms a critical action for an account without a password (ASVS 3.7.1,
:mod:`rathaus.web.reauth`): ``/login/oidc?erneut=1`` from a signed-in session asks the provider
for a fresh sign-in (``prompt=login``, ``max_age=0``); the callback then checks, besides the ID
token, that its ``sub`` is the session's account and its ``auth_time`` fresh, and sets the
re-authentication mark instead of opening a session. It needs no further redirect URI at the
provider.

Rathaus fetches the discovery document, the key set and the tokens itself; those connections
obey :mod:`rathaus.core.netguard`: public addresses only, unless ``oidc.allowed_networks`` or
``network.allowed_networks`` opens the provider's internal address. A refusal names the setting.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, urlencode, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import GuestProtocol, KeySet
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.core import audit, netguard
from rathaus.core.config import Settings
from rathaus.core.errors import RathausError
from rathaus.core.models import Tenant, User, WebSession
from rathaus.core.security import lookup_session
from rathaus.web import reauth
from rathaus.web.auth_views import login_page, safe_next, signed_in
from rathaus.web.cookies import delete_cookie, read_cookie, session_token, set_cookie
from rathaus.web.deps import SessionDep, SettingsDep
from rathaus.web.templating import render

log = logging.getLogger(__name__)

FLOW_COOKIE = "rathaus_oidc_flow"
# Over plain HTTP only; with secure cookies it is ``__Host-rathaus_oidc_flow`` on ``Path=/``
# (rathaus.web.cookies): a flow cookie planted by a neighbouring subdomain could otherwise
# sign the browser in to someone else's account.
FLOW_COOKIE_PATH = "/auth/oidc"
FLOW_MAX_AGE_S = 600
HTTP_TIMEOUT_S = 5.0
CACHE_TTL_S = 3600.0
CLOCK_LEEWAY_S = 60
# A re-authentication counts when the provider saw the credentials at most two minutes ago, and
# not before the flow began; the clocks of Rathaus and the provider may differ by the skew.
REAUTH_MAX_AGE_S = 120
REAUTH_SKEW_S = 30
ALLOW_SETTING = "RATHAUS_OIDC__ALLOWED_NETWORKS"
# Only asymmetric signatures: an HMAC-signed ID token would be keyed with the client secret.
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)

NOT_CONFIGURED = (
    "Die SSO-Anmeldung ist nicht vollständig eingerichtet; bitte wenden Sie sich an die IT."
)
PROVIDER_DOWN = (
    "Der Anmeldedienst (SSO) ist gerade nicht erreichbar; bitte versuchen Sie es in einigen "
    "Minuten erneut oder melden Sie sich mit Ihrem Passwort an."
)
FLOW_INVALID = (
    "Die SSO-Anmeldung ist abgelaufen oder ungültig; bitte starten Sie die Anmeldung erneut."
)
DENIED = "Der Anmeldedienst hat die Anmeldung nicht bestätigt; bitte versuchen Sie es erneut."
CONFIRMATION_INVALID = (
    "Die Anmeldebestätigung des Anmeldedienstes ist ungültig; bitte versuchen Sie es erneut "
    "oder wenden Sie sich an die IT."
)
UNKNOWN_USER = (
    "Für Ihr Verwaltungskonto gibt es in Rathaus kein Benutzerkonto; bitte wenden Sie sich an "
    "die Rathaus-Administration."
)
DISABLED_USER = (
    "Ihr Rathaus-Konto ist gesperrt; bitte wenden Sie sich an die Rathaus-Administration."
)
OTHER_SUBJECT = (
    "Ihr Rathaus-Konto ist bereits mit einem anderen SSO-Konto verknüpft; bitte wenden Sie sich "
    "an die Rathaus-Administration."
)
PROVIDER_BLOCKED = (
    "Die SSO-Anmeldung ist gesperrt: Der Anmeldedienst liegt in einem internen Netz, das für "
    "Verbindungen von Rathaus nicht freigegeben ist. Bitte wenden Sie sich an die IT; sie kann "
    f"die Adresse des Anmeldedienstes in der Einstellung {ALLOW_SETTING} freigeben."
)
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
    NOT_CONFIGURED: "sso_nicht_eingerichtet",
    PROVIDER_DOWN: "sso_nicht_erreichbar",
    PROVIDER_BLOCKED: "sso_adresse_gesperrt",
    FLOW_INVALID: "sso_ablauf_ungueltig",
    DENIED: "sso_abgelehnt",
    CONFIRMATION_INVALID: "sso_bestaetigung_ungueltig",
    REAUTH_NOT_FRESH: "sso_nicht_frisch",
    REAUTH_OTHER_ACCOUNT: "sso_anderes_konto",
    REAUTH_SESSION_CHANGED: "sso_andere_sitzung",
}


class OIDCLoginError(RathausError):
    """A refused SSO login: ``message`` for the person, ``detail`` only for the log."""

    def __init__(self, http_status: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.http_status = http_status
        self.detail = detail or message


def _require_enabled(settings: SettingsDep) -> None:
    if not settings.oidc.enabled:
        raise HTTPException(status_code=404)


router = APIRouter(include_in_schema=False, dependencies=[Depends(_require_enabled)])


# The provider: discovery document and key set, fetched with httpx and cached per process ------
@dataclass(frozen=True)
class Provider:
    """The endpoints and rules announced by the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    basic_auth: bool


_cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def _is_web_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def policy(settings: Settings) -> netguard.NetPolicy:
    """Where Rathaus may reach the provider: public addresses, and the internal networks opened
    in ``oidc.allowed_networks`` (for the provider only) or ``network.allowed_networks``.

    The provider is set by the administration, but the token endpoint and the key set are
    named by the discovery document, i.e. by whoever answers at that address; without a
    freed network no such answer can point Rathaus at the metadata service or another
    internal service."""
    allowed = [*settings.oidc.allowed_networks, *settings.network.allowed_networks]
    return netguard.NetPolicy(
        "Der Anmeldedienst (OIDC)", internal_allowed=False, allowed=netguard.parse_networks(allowed)
    )


def _client(settings: Settings) -> httpx.Client:
    return netguard.http_client(policy(settings), timeout=HTTP_TIMEOUT_S)  # type: ignore[no-any-return]


def _blocked(exc: netguard.NetGuardError) -> OIDCLoginError:
    """The refusal for a provider address outside the allowed networks; the log line says
    which address and which setting opens it."""
    detail = (
        f"{exc.message} Nur für den Anmeldedienst genügt {ALLOW_SETTING}, "
        'z. B. ["10.20.30.40/32"] (siehe docs/configuration.md).'
    )
    return OIDCLoginError(503, PROVIDER_BLOCKED, detail)


def _unreachable(where: str, exc: Exception) -> OIDCLoginError:
    detail = f"{where}: {type(exc).__name__} {exc}"
    if urllib.request.getproxies():
        detail += (
            " – Hinweis: Proxy-Variablen der Umgebung (HTTPS_PROXY) gelten für den "
            "Anmeldedienst nicht, Rathaus verbindet sich direkt."
        )
    return OIDCLoginError(503, PROVIDER_DOWN, detail)


def _fetch_json(url: str, settings: Settings, *, refresh: bool = False) -> dict[str, Any]:
    """GET ``url`` as a JSON object; answers come from the cache for :data:`CACHE_TTL_S`."""
    if not _is_web_url(url):
        raise OIDCLoginError(503, NOT_CONFIGURED, f"keine http(s)-Adresse: {url!r}")
    # An answer fetched under another policy (other allowed networks) does not count.
    key = (" ".join(sorted(map(str, policy(settings).allowed))), url)
    with _cache_lock:
        cached = _cache.get(key)
    if cached and not refresh and time.monotonic() - cached[0] < CACHE_TTL_S:
        return cached[1]
    try:
        with _client(settings) as client:
            response = client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
    except netguard.NetGuardError as exc:
        raise _blocked(exc) from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise _unreachable(url, exc) from exc
    if not isinstance(data, dict):
        raise OIDCLoginError(503, PROVIDER_DOWN, f"{url}: kein JSON-Objekt")
    with _cache_lock:
        _cache[key] = (time.monotonic(), data)
    return data


def _provider(settings: Settings) -> Provider:
    oidc = settings.oidc
    if not (oidc.discovery_url and oidc.client_id):
        raise OIDCLoginError(503, NOT_CONFIGURED, "discovery_url oder client_id fehlt")
    doc = _fetch_json(oidc.discovery_url, settings)
    endpoints = [doc.get(k) for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")]
    issuer = doc.get("issuer")
    if not (isinstance(issuer, str) and issuer and all(_is_web_url(u) for u in endpoints)):
        raise OIDCLoginError(
            503, NOT_CONFIGURED, f"unvollständiges Discovery-Dokument: {doc!r:.300}"
        )
    offered = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(a for a in SIGNING_ALGORITHMS if a in offered)
    if not algorithms:
        raise OIDCLoginError(503, NOT_CONFIGURED, f"keine unterstützte Signatur: {offered!r}")
    # Without an announcement the standard default (RFC 8414) is client_secret_basic.
    auth_methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return Provider(
        issuer=issuer,
        authorization_endpoint=endpoints[0],
        token_endpoint=endpoints[1],
        jwks_uri=endpoints[2],
        algorithms=algorithms,
        basic_auth="client_secret_basic" in auth_methods,
    )


def _key_set(url: str, settings: Settings, *, refresh: bool = False) -> KeySet:
    try:
        return KeySet.import_key_set(_fetch_json(url, settings, refresh=refresh))  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise OIDCLoginError(503, PROVIDER_DOWN, f"ungültiges JWKS von {url}: {exc}") from exc


# The flow: state, nonce, PKCE verifier and target in a signed, short-lived cookie --------------
def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt="rathaus.oidc.flow")


def _read_flow(request: Request, settings: Settings) -> dict[str, str] | None:
    raw = read_cookie(request, FLOW_COOKIE)
    if not raw:
        return None
    try:
        flow = _serializer(settings).loads(raw, max_age=FLOW_MAX_AGE_S)
    except BadSignature:
        return None
    # A confirmation's flow (``zweck``) carries more: see :func:`_reauth_flow`.
    keys = ("state", "nonce", "verifier", "next", "redirect_uri")
    if not isinstance(flow, dict) or not all(isinstance(flow.get(k), str) for k in keys):
        return None
    return flow


def _same(expected: str, given: str) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def _scope(configured: str) -> str:
    parts = configured.split()
    return " ".join(parts if "openid" in parts else ["openid", *parts])


# The code exchange and the ID token ----------------------------------------------------------
def _exchange_code(
    provider: Provider, settings: Settings, *, code: str, flow: dict[str, str]
) -> str:
    """Trade the authorization code for the provider's tokens; returns the raw ID token."""
    client_id = settings.oidc.client_id or ""
    secret = settings.oidc.client_secret.get_secret_value() if settings.oidc.client_secret else ""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": flow["redirect_uri"],
        "code_verifier": flow["verifier"],
    }
    auth = None
    if secret and provider.basic_auth:
        # RFC 6749 2.3.1: both parts are form-encoded before they go into the Basic header.
        auth = httpx.BasicAuth(quote_plus(client_id), quote_plus(secret))
    else:
        data["client_id"] = client_id
        if secret:
            data["client_secret"] = secret
    try:
        with _client(settings) as client:
            response = client.post(
                provider.token_endpoint,
                data=data,
                auth=auth,
                headers={"Accept": "application/json"},
            )
    except netguard.NetGuardError as exc:
        raise _blocked(exc) from exc
    except httpx.HTTPError as exc:
        raise _unreachable("Token-Endpunkt", exc) from exc
    if response.status_code >= 500:
        raise OIDCLoginError(503, PROVIDER_DOWN, f"Token-Endpunkt: HTTP {response.status_code}")
    if response.status_code != 200:
        raise OIDCLoginError(
            401, DENIED, f"Token-Endpunkt: HTTP {response.status_code} {response.text[:300]}"
        )
    try:
        id_token = response.json().get("id_token")
    except (ValueError, AttributeError) as exc:
        raise OIDCLoginError(
            401, CONFIRMATION_INVALID, "Token-Antwort ist kein JSON-Objekt"
        ) from exc
    if not isinstance(id_token, str) or not id_token:
        raise OIDCLoginError(401, CONFIRMATION_INVALID, "Token-Antwort ohne id_token")
    return id_token


def _verify_id_token(
    provider: Provider, settings: Settings, id_token: str, *, nonce: str
) -> dict[str, Any]:
    """Check signature (provider's JWKS), ``iss``, ``aud``, ``azp``, ``exp`` and ``nonce``."""
    client_id = settings.oidc.client_id or ""
    keys = _key_set(provider.jwks_uri, settings)

    def key_for(token: GuestProtocol) -> KeySet:
        kid = token.headers().get("kid")
        if kid is not None and all(key.kid != kid for key in keys.keys):
            return _key_set(provider.jwks_uri, settings, refresh=True)  # the provider rotated
        return keys

    try:
        token = jwt.decode(id_token, key_for, algorithms=provider.algorithms)
        JWTClaimsRegistry(
            leeway=CLOCK_LEEWAY_S,
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise OIDCLoginError(
            401, CONFIRMATION_INVALID, f"ID-Token: {type(exc).__name__} {exc}"
        ) from exc
    claims = token.claims
    if claims.get("azp") not in (None, client_id):
        raise OIDCLoginError(
            401, CONFIRMATION_INVALID, f"ID-Token für anderen Client: {claims['azp']!r}"
        )
    return claims


# The account: accounts and roles live in Rathaus, no auto-provisioning --------------------------
def _find_user(session: Session, settings: Settings, claims: dict[str, Any], *, ip: str) -> User:
    """The active user of the default tenant for ``claims``; records ``login_failed`` otherwise."""
    subject = str(claims["sub"])[:200]
    name = claims.get(settings.oidc.username_claim)
    username = name.strip()[:100] if isinstance(name, str) else ""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == settings.default_tenant))
    if tenant is None:
        raise OIDCLoginError(503, NOT_CONFIGURED, f"Kommune {settings.default_tenant!r} fehlt")

    user = session.scalar(
        select(User).where(User.tenant_id == tenant.id, User.oidc_subject == subject)
    )
    reason, message = "", ""
    if user is None and username:
        user = session.scalar(
            select(User).where(User.tenant_id == tenant.id, User.username == username)
        )
        if user is not None and user.oidc_subject not in (None, subject):
            reason, message = "anderes_sso_konto", OTHER_SUBJECT
    if user is None:
        reason, message = "unbekannt", UNKNOWN_USER
    elif not reason and not (user.is_active and tenant.is_active):
        reason, message = "gesperrt", DISABLED_USER
    if reason:
        audit.record(
            session,
            audit.Event(
                kind="login_failed",
                actor=(user.username if user else username) or f"oidc:{subject}"[:100],
                tenant_id=tenant.id,
                data={"ip": ip, "methode": "oidc", "grund": reason},
            ),
        )
        raise OIDCLoginError(401, message, f"{reason}: sub={subject!r} name={username!r}")
    assert user is not None
    if user.oidc_subject is None:
        user.oidc_subject = subject
    return user


def _refused(
    request: Request,
    session: Session,
    settings: Settings,
    exc: OIDCLoginError,
    *,
    next_url: str,
) -> Response:
    log.warning("SSO-Anmeldung abgelehnt (%s): %s", exc.http_status, exc.detail)
    response = login_page(
        request,
        session,
        settings,
        error=exc.message,
        next_url=next_url,
        status_code=exc.http_status,
    )
    delete_cookie(response, settings, FLOW_COOKIE, path=FLOW_COOKIE_PATH)
    return response


# Routes --------------------------------------------------------------------------------------
@router.get("/login/oidc")
def start(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    next: str = "/",
    erneut: str = "",
    aktion: str = "",
) -> Response:
    """Send the browser to the provider's login page (authorization request with PKCE).

    With ``erneut`` from a signed-in session: the provider is to ask for the credentials again
    (``prompt=login``, ``max_age=0``) to confirm the form ``aktion`` (:func:`_reauth_callback`).
    """
    current = lookup_session(session, session_token(request), idle_s=settings.session_idle_s)
    if current and not erneut:
        return RedirectResponse(safe_next(next), status_code=303)
    if current:
        request.state.auth = current  # the confirmation's pages show the signed-in layout
    try:
        provider = _provider(settings)
    except OIDCLoginError as exc:
        if current:
            return _reauth_refused(
                request, session, exc, user=current[1], action=_action(aktion), back=next
            )
        return _refused(request, session, settings, exc, next_url=next)
    flow = {
        "state": secrets.token_urlsafe(32),
        "nonce": secrets.token_urlsafe(32),
        "verifier": secrets.token_urlsafe(64),
        "next": safe_next(next),
        "redirect_uri": str(request.url_for("oidc_callback")),
    }
    params = {
        "response_type": "code",
        "client_id": settings.oidc.client_id,
        "redirect_uri": flow["redirect_uri"],
        "scope": _scope(settings.oidc.scope),
        "state": flow["state"],
        "nonce": flow["nonce"],
        "code_challenge": create_s256_code_challenge(flow["verifier"]),
        "code_challenge_method": "S256",
    }
    if current:
        flow |= _reauth_flow(current[0], aktion)
        # OIDC Core 3.1.2.1: sign in again even with a live session at the provider, and
        # (max_age) name the time of that sign-in in the ID token's auth_time.
        params |= {"prompt": "login", "max_age": "0"}
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    response = RedirectResponse(
        provider.authorization_endpoint + separator + urlencode(params), status_code=303
    )
    set_cookie(
        response,
        settings,
        FLOW_COOKIE,
        _serializer(settings).dumps(flow),
        max_age=FLOW_MAX_AGE_S,
        path=FLOW_COOKIE_PATH,
        samesite="lax",  # the provider sends the browser back with a top-level GET
    )
    return response


@router.get("/auth/oidc/callback", name="oidc_callback")
def callback(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    code: str = "",
    state: str = "",
    error: str = "",
) -> Response:
    """The provider's answer: check it, find the Rathaus account and open a session (or, for
    a confirmation, set the re-authentication mark)."""
    flow = _read_flow(request, settings)
    if flow is not None and flow.get("zweck") == REAUTH_PURPOSE:
        return _reauth_callback(
            request, session, settings, flow, code=code, state=state, error=error
        )
    next_url = flow["next"] if flow else "/"
    try:
        if flow is None or not _same(flow["state"], state):
            raise OIDCLoginError(400, FLOW_INVALID, "state fehlt oder passt nicht")
        if error:
            raise OIDCLoginError(401, DENIED, f"Anbieter meldet: {error[:100]}")
        if not code:
            raise OIDCLoginError(400, FLOW_INVALID, "Antwort ohne code")
        provider = _provider(settings)
        id_token = _exchange_code(provider, settings, code=code, flow=flow)
        claims = _verify_id_token(provider, settings, id_token, nonce=flow["nonce"])
        user = _find_user(
            session, settings, claims, ip=request.client.host if request.client else ""
        )
    except OIDCLoginError as exc:
        return _refused(request, session, settings, exc, next_url=next_url)

    response = signed_in(
        request, session, settings, user, next_url=next_url, audit_kind="login_oidc"
    )
    delete_cookie(response, settings, FLOW_COOKIE, path=FLOW_COOKIE_PATH)
    return response


# Re-authentication for a critical action (ASVS 3.7.1) ----------------------------------------
REAUTH_PURPOSE = "erneut"
_ACTION = re.compile(r"[a-z0-9_-]{1,40}")


def _action(given: str) -> str:
    """The confirmed form's name for the audit trail (from the page's link, so only a tame
    word is kept)."""
    return given if _ACTION.fullmatch(given) else "anmeldedienst"


def _reauth_flow(web_session: WebSession, action: str) -> dict[str, str]:
    """What a confirmation's flow carries besides the login's: the session it is for, the
    form's name and the time it began (the provider's ``auth_time`` must not be older)."""
    return {
        "zweck": REAUTH_PURPOSE,
        "sitzung": str(web_session.id),
        "aktion": _action(action),
        "beginn": str(int(time.time())),
    }


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


def _reauth_callback(
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
    current = lookup_session(session, session_token(request), idle_s=settings.session_idle_s)
    if current is None:
        # The session ended meanwhile: nothing to confirm, and no one to name in the audit.
        exc = OIDCLoginError(401, REAUTH_SESSION_ENDED, "Sitzung des Ablaufs beendet")
        return _refused(request, session, settings, exc, next_url=back)
    request.state.auth = current
    web_session, user = current
    try:
        if not _same(flow["state"], state):
            raise OIDCLoginError(400, FLOW_INVALID, "state passt nicht")
        if str(web_session.id) != flow.get("sitzung"):
            raise OIDCLoginError(400, REAUTH_SESSION_CHANGED, "Ablauf einer anderen Sitzung")
        if error:
            raise OIDCLoginError(401, DENIED, f"Anbieter meldet: {error[:100]}")
        if not code:
            raise OIDCLoginError(400, FLOW_INVALID, "Antwort ohne code")
        provider = _provider(settings)
        id_token = _exchange_code(provider, settings, code=code, flow=flow)
        claims = _verify_id_token(provider, settings, id_token, nonce=flow["nonce"])
        subject = str(claims["sub"])
        if not _same(user.oidc_subject or "", subject):
            raise OIDCLoginError(
                403, REAUTH_OTHER_ACCOUNT, f"sub={subject!r}, Sitzung von {user.username!r}"
            )
        began = flow.get("beginn", "")
        check_fresh(claims, began=int(began) if began.isdigit() else 2**62)
    except OIDCLoginError as exc:
        return _reauth_refused(request, session, exc, user=user, action=action, back=back)

    gate = reauth.confirmed_by_provider(
        request, session, web_session=web_session, user=user, action=action
    )
    response = render(
        request, "oidc_reauth.html", {"back": back, "error": "", "minutes": reauth.WINDOW_S // 60}
    )
    # Not a redirect: the mark is a SameSite=Strict cookie, and a browser leaves such cookies
    # off every request of a redirect chain that began at another site (the provider). A
    # refresh is a new navigation started by this page, so the page comes back confirmed.
    response.headers["Refresh"] = f"0; url={_header_path(back)}"
    gate.finish(request, response)
    delete_cookie(response, settings, FLOW_COOKIE, path=FLOW_COOKIE_PATH)
    return response


def _header_path(path: str) -> str:
    # As Starlette quotes a redirect's Location: no control characters reach the header.
    return quote(path, safe=":/%#?=@[]!$&'()*+,;")


def _reauth_refused(
    request: Request,
    session: Session,
    exc: OIDCLoginError,
    *,
    user: User,
    action: str,
    back: str,
) -> Response:
    """No mark: audit the refusal and show it with the ways on (try again, back)."""
    log.warning("SSO-Bestätigung abgelehnt (%s): %s", exc.http_status, exc.detail)
    reauth.refused_by_provider(
        request,
        session,
        user=user,
        action=action,
        reason=_REAUTH_REASONS.get(exc.message, "sso_fehler"),
    )
    back = safe_next(back)
    again = "/login/oidc?" + urlencode({"erneut": "1", "next": back, "aktion": action})
    response = render(
        request,
        "oidc_reauth.html",
        {"back": back, "again": again, "error": exc.message},
        status_code=exc.http_status,
    )
    delete_cookie(response, request.app.state.settings, FLOW_COOKIE, path=FLOW_COOKIE_PATH)
    return response
