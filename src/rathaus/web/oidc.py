"""Optional single sign-on through OpenID Connect (authorization code flow with PKCE), e.g. Keycloak.

Rathaus stays the place where accounts and roles are managed: the provider only proves who
someone is. The user must already exist and be active in the default tenant; the first SSO login
finds the account by the configured user-name claim and binds it to the provider's ``sub``, later
logins find it by ``sub`` alone. Both routes answer 404 while ``oidc.enabled`` is false.

The same flow confirms a critical action for an account without a password (ASVS 3.7.1):
``/login/oidc?erneut=1`` from a signed-in session and the callback of such a flow are handed to
:mod:`rathaus.web.oidc_reauth`, which builds on the provider, flow and token functions here.

Rathaus fetches the discovery document, the key set and the tokens itself; those connections
obey :mod:`rathaus.core.netguard` (:func:`policy`). The configured ``discovery_url`` is set by
the administration, so its origin is treated like a model server: internal networks allowed,
metadata and link-local addresses refused. Endpoints on any other origin are named by the
discovery document, i.e. by whoever answers there, and may reach public addresses only, unless
``oidc.allowed_networks`` or ``network.allowed_networks`` frees them. A refusal names the setting.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

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
from rathaus.core.models import Tenant, User
from rathaus.core.security import lookup_session
from rathaus.web.auth_views import login_page, safe_next, signed_in
from rathaus.web.cookies import delete_cookie, read_cookie, session_token, set_cookie
from rathaus.web.deps import SessionDep, SettingsDep

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
    "Die SSO-Anmeldung ist gesperrt: Der Anmeldedienst oder eine Adresse, die er nennt, liegt "
    "in einem Netz, das für Verbindungen von Rathaus nicht freigegeben ist. Bitte wenden Sie "
    "sich an die IT; sie kann die Adresse in der Einstellung "
    f"{ALLOW_SETTING} freigeben."
)
# The flow of a re-authentication (rathaus.web.oidc_reauth) carries this ``zweck``.
REAUTH_PURPOSE = "erneut"


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


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """Scheme, host and port of ``url`` (default port filled in), ``None`` if it has no host."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port out of range: httpx refuses it, and it is nobody's origin
        return None
    return (scheme, parts.hostname, port) if parts.hostname else None


def policy(settings: Settings, url: str) -> netguard.NetPolicy:
    """Where Rathaus may connect to fetch ``url`` from the provider.

    - On the origin (scheme, host, port) of the configured ``discovery_url``: like a model
      server (:func:`rathaus.core.netguard.for_model_servers`), since the administration set
      it: loopback and internal networks allowed, metadata, link-local, multicast, unspecified
      and reserved addresses refused. Keycloak and its kin serve discovery, keys and token on
      that one origin.
    - Anywhere else (a token endpoint or key set that the discovery document names on another
      host, or on another port or scheme of the same host): public addresses only, like an
      address that staff enter. Whoever answers at the discovery URL chooses these endpoints;
      without this rule such an answer could point Rathaus at the metadata service, or at
      Redis on the provider's own machine.

    ``oidc.allowed_networks`` (for the provider only) and ``network.allowed_networks`` free
    networks in both cases. No redirect is followed, so an answer cannot lead a request from
    the configured origin elsewhere."""
    allowed = netguard.parse_networks(
        [*settings.oidc.allowed_networks, *settings.network.allowed_networks]
    )
    configured = settings.oidc.discovery_url or ""
    if configured and _origin(url) is not None and _origin(url) == _origin(configured):
        return netguard.NetPolicy(
            "Der Anmeldedienst (OIDC)", internal_allowed=True, allowed=allowed
        )
    return netguard.NetPolicy(
        "Die vom Discovery-Dokument des Anmeldedienstes genannte Adresse",
        internal_allowed=False,
        allowed=allowed,
    )


def _client(rule: netguard.NetPolicy) -> httpx.Client:
    return netguard.http_client(rule, timeout=HTTP_TIMEOUT_S)  # type: ignore[no-any-return]


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
    # An answer fetched under another policy (other allowed networks, or the URL on the
    # configured origin then and on a foreign one now) does not count.
    rule = policy(settings, url)
    key = (rule.internal_allowed, " ".join(sorted(map(str, rule.allowed))), url)
    with _cache_lock:
        cached = _cache.get(key)
    if cached and not refresh and time.monotonic() - cached[0] < CACHE_TTL_S:
        return cached[1]
    try:
        with _client(rule) as client:
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


def provider_of(settings: Settings) -> Provider:
    """The configured provider from its (cached) discovery document."""
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
    # A confirmation's flow (``zweck``) carries more: see rathaus.web.oidc_reauth.
    keys = ("state", "nonce", "verifier", "next", "redirect_uri")
    if not isinstance(flow, dict) or not all(isinstance(flow.get(k), str) for k in keys):
        return None
    return flow


def same(expected: str, given: str) -> bool:
    """Both non-empty and equal, compared in constant time."""
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
        with _client(policy(settings, provider.token_endpoint)) as client:
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


def verified_claims(settings: Settings, *, code: str, flow: dict[str, str]) -> dict[str, Any]:
    """Trade ``code`` at the provider and return the checked ID token's claims."""
    provider = provider_of(settings)
    id_token = _exchange_code(provider, settings, code=code, flow=flow)
    return _verify_id_token(provider, settings, id_token, nonce=flow["nonce"])


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


def login_refused(
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
    formular: str = "",
) -> Response:
    """Send the browser to the provider's login page (authorization request with PKCE).

    With ``erneut`` from a signed-in session: a confirmation of the form ``aktion`` instead
    (:func:`rathaus.web.oidc_reauth.start`), ``formular`` naming the form kept meanwhile.
    """
    current = lookup_session(session, session_token(request), idle_s=settings.session_idle_s)
    if current and erneut:
        from rathaus.web import oidc_reauth  # builds on this module: imported on use

        return oidc_reauth.start(
            request, session, settings, current, next_url=next, action=aktion, kept=formular
        )
    if current:
        return RedirectResponse(safe_next(next), status_code=303)
    try:
        provider = provider_of(settings)
    except OIDCLoginError as exc:
        return login_refused(request, session, settings, exc, next_url=next)
    return authorization_redirect(request, settings, provider, next_url=next)


def authorization_redirect(
    request: Request,
    settings: Settings,
    provider: Provider,
    *,
    next_url: str,
    extra_flow: dict[str, str] | None = None,
    extra_params: dict[str, str] | None = None,
) -> Response:
    """The redirect to the provider's authorization endpoint, with state, nonce and PKCE kept
    in the signed flow cookie; ``extra_flow`` and ``extra_params`` add to the flow and to the
    request."""
    verifier = secrets.token_urlsafe(64)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    redirect_uri = str(request.url_for("oidc_callback"))
    query = {
        "response_type": "code",
        "client_id": settings.oidc.client_id,
        "redirect_uri": redirect_uri,
        "scope": _scope(settings.oidc.scope),
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        **(extra_params or {}),
    }
    flow = {
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "next": safe_next(next_url),
        "redirect_uri": redirect_uri,
        **(extra_flow or {}),
    }
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    response = RedirectResponse(
        provider.authorization_endpoint + separator + urlencode(query), status_code=303
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
    """The provider's answer: check it, find the Rathaus account and open a session (a
    confirmation's answer goes to :func:`rathaus.web.oidc_reauth.callback`)."""
    flow = _read_flow(request, settings)
    if flow is not None and flow.get("zweck") == REAUTH_PURPOSE:
        from rathaus.web import oidc_reauth  # builds on this module: imported on use

        return oidc_reauth.callback(
            request, session, settings, flow, code=code, state=state, error=error
        )
    next_url = flow["next"] if flow else "/"
    try:
        if flow is None or not same(flow["state"], state):
            raise OIDCLoginError(400, FLOW_INVALID, "state fehlt oder passt nicht")
        if error:
            raise OIDCLoginError(401, DENIED, f"Anbieter meldet: {error[:100]}")
        if not code:
            raise OIDCLoginError(400, FLOW_INVALID, "Antwort ohne code")
        claims = verified_claims(settings, code=code, flow=flow)
        user = _find_user(
            session, settings, claims, ip=request.client.host if request.client else ""
        )
    except OIDCLoginError as exc:
        return login_refused(request, session, settings, exc, next_url=next_url)

    response = signed_in(
        request, session, settings, user, next_url=next_url, audit_kind="login_oidc"
    )
    delete_cookie(response, settings, FLOW_COOKIE, path=FLOW_COOKIE_PATH)
    return response
