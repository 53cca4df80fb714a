"""SSO through OpenID Connect against a real provider served by uvicorn in this test module;
the provider's address is checked like every outgoing connection (rathaus.core.netguard): the
configured provider on loopback like a model server, endpoints that its discovery document names
elsewhere like an address that staff enter."""

from __future__ import annotations

import base64
import hashlib
import html
import ipaddress
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from rathaus.core import users
from rathaus.core.config import load_settings
from rathaus.core.errors import ConfigError
from rathaus.core.models import AuditEvent, Tenant, User
from rathaus.core.security import SESSION_COOKIE
from rathaus.web import oidc
from rathaus.web.app import create_app

CLIENT_ID = "rathaus"
CLIENT_SECRET = "geheimes-client-secret"  # noqa: S105 - test provider only


def rsa_key(kid: str) -> RSAKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return RSAKey.import_key(private, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class IdP:
    """A tiny OpenID provider: it logs in ``person`` at once and signs with ``key``.

    Like a real one it keeps a sign-in session: ``signed_in_at`` is the time of the last
    sign-in, sent as ``auth_time``; ``prompt=login`` counts as a fresh sign-in unless the
    provider is told to ``ignore_prompt``."""

    url: str
    home_key: RSAKey = field(default_factory=lambda: rsa_key("k1"))
    key: RSAKey | None = None  # the current signing key, published in the JWKS
    person: dict[str, Any] = field(default_factory=dict)
    forge_with: RSAKey | None = None  # sign ID tokens with a key the JWKS does not publish
    claims: dict[str, Any] = field(default_factory=dict)  # overrides for the ID token
    announce: dict[str, Any] = field(default_factory=dict)  # overrides for the discovery
    deny: bool = False
    interactive: bool = False  # show a sign-in form (a browser submits it) before answering
    ignore_prompt: bool = False
    send_auth_time: bool = True
    signed_in_at: int | None = None
    authorizations: list[dict[str, str]] = field(default_factory=list)  # query parameters
    fetched: list[str] = field(default_factory=list)  # paths Rathaus fetched (server side)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reset(self) -> None:
        self.key = self.home_key
        self.person = {"sub": "kc-0001", "preferred_username": "sb"}
        self.forge_with, self.claims, self.announce, self.deny = None, {}, {}, False
        self.ignore_prompt, self.send_auth_time, self.signed_in_at = False, True, None
        self.interactive = False
        self.authorizations.clear()
        self.fetched.clear()
        self.codes.clear()


def provider_app(idp: IdP) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        idp.fetched.append("/.well-known/openid-configuration")
        return {
            "issuer": idp.url,
            "authorization_endpoint": f"{idp.url}/authorize",
            "token_endpoint": f"{idp.url}/token",
            "jwks_uri": f"{idp.url}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            **idp.announce,
        }

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        idp.fetched.append("/jwks")
        assert idp.key is not None
        return {"keys": [idp.key.as_dict(private=False)]}

    @app.get("/authorize")
    def authorize(request: Request) -> RedirectResponse:
        q = request.query_params
        if idp.interactive and "angemeldet" not in q:
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in q.items()
            )
            return HTMLResponse(  # type: ignore[return-value]
                '<!doctype html><html lang="de"><title>Anmeldedienst</title>'
                '<link rel="icon" href="data:,"><form>'
                f'{hidden}<input type="hidden" name="angemeldet" value="1">'
                "<button>Beim Anbieter anmelden</button></form></html>"
            )
        idp.authorizations.append({k: v for k, v in q.items() if k != "angemeldet"})
        ok = (
            q.get("response_type") == "code"
            and q.get("client_id") == CLIENT_ID
            and "openid" in q.get("scope", "").split()
            and q.get("code_challenge_method") == "S256"
            and q.get("state")
            and q.get("nonce")
        )
        if not ok:
            return JSONResponse({"error": "invalid_request"}, status_code=400)  # type: ignore[return-value]
        answer = {"state": q["state"]}
        if idp.deny:
            answer["error"] = "access_denied"
        else:
            fresh = q.get("prompt") == "login" and not idp.ignore_prompt
            if fresh or idp.signed_in_at is None:
                idp.signed_in_at = int(time.time())
            code = secrets.token_urlsafe(16)
            idp.codes[code] = {
                "redirect_uri": q["redirect_uri"],
                "challenge": q["code_challenge"],
                "nonce": q["nonce"],
                "auth_time": idp.signed_in_at,
            }
            answer["code"] = code
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(answer)}", status_code=302)

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        idp.fetched.append("/token")
        form = await request.form()
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        grant = idp.codes.pop(str(form.get("code")), None)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if request.headers.get("authorization") != f"Basic {basic}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or form.get("redirect_uri") != grant["redirect_uri"]
            or challenge.rstrip(b"=").decode() != grant["challenge"]
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": idp.url,
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            **({"auth_time": grant["auth_time"]} if idp.send_auth_time else {}),
            **idp.person,
            **idp.claims,
        }
        key = idp.forge_with or idp.key
        assert key is not None
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        return JSONResponse({"access_token": "a", "token_type": "Bearer", "id_token": id_token})

    return app


@pytest.fixture(scope="module")
def idp_server() -> Iterator[IdP]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    idp = IdP(url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    config = uvicorn.Config(provider_app(idp), log_level="warning", log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "OIDC-Testanbieter startet nicht"
        time.sleep(0.01)
    yield idp
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def idp(idp_server: IdP) -> IdP:
    idp_server.reset()
    oidc._cache.clear()  # as after a restart: the discovery document is fetched anew
    return idp_server


# The test provider runs on loopback. As the configured provider it needs no freed network;
# ``localhost`` (another host name for it) needs both loopback addresses freed.
LOOPBACK = ["127.0.0.1/32", "::1/128"]


def sso_settings(tmp_path, discovery_url: str, *, allowed=(), **more):  # type: ignore[no-untyped-def]
    return load_settings(
        mode="demo",
        data_dir=tmp_path,
        default_tenant="alpha",
        queue={"backend": "memory"},
        oidc={
            "enabled": True,
            "discovery_url": discovery_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "allowed_networks": list(allowed),
        },
        **more,
    )


@pytest.fixture
def sso(db, tmp_path, idp, worlds) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    app = create_app(
        sso_settings(tmp_path, f"{idp.url}/.well-known/openid-configuration"), database=db
    )
    with TestClient(app, follow_redirects=False) as c:
        yield c


def sso_login(
    client: TestClient, *, next: str = "/api/v1/me", tamper: Callable[[str], str] | None = None
) -> httpx.Response:
    """Run the whole flow: Rathaus → provider (real HTTP) → callback; returns the callback answer."""
    start = client.get("/login/oidc", params={"next": next})
    assert start.status_code == 303, start.text
    answer = httpx.get(start.headers["location"], follow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = answer.headers["location"]
    return client.get(tamper(back) if tamper else back)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def page_text(response: httpx.Response) -> str:
    return html.unescape(response.text)


def audit_events(db, kind: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.kind == kind)))


def oidc_subject(db, username: str) -> str | None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(
            select(User.oidc_subject)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(Tenant.slug == "alpha", User.username == username)
        )


def assert_refused(client: TestClient, response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status
    text = page_text(response)
    assert message in text and "Traceback" not in text
    assert client.get("/api/v1/me").status_code == 401


# The happy path -------------------------------------------------------------------------------
def test_sso_login_opens_a_session_and_binds_the_subject(sso, idp, db):
    start = sso.get("/login/oidc", params={"next": "/api/v1/me"})
    cookie = start.headers["set-cookie"]
    assert oidc.FLOW_COOKIE in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    location = start.headers["location"]
    assert location.startswith(f"{idp.url}/authorize?")
    query = dict(parse_qsl(urlsplit(location).query))
    assert query["code_challenge_method"] == "S256"
    assert "prompt" not in query and "max_age" not in query  # a login asks for no fresh sign-in

    response = sso_login(sso)
    assert response.status_code == 303 and response.headers["location"] == "/api/v1/me"
    assert SESSION_COOKIE in sso.cookies
    me = sso.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["username"] == "sb" and me.json()["tenant"] == "alpha"
    assert oidc_subject(db, "sb") == "kc-0001"
    assert [e.actor for e in audit_events(db, "login_oidc")] == ["sb"]


def test_later_logins_use_the_subject_not_the_name(sso, idp, db):
    assert sso_login(sso).status_code == 303
    sso.cookies.clear()
    idp.person = {"sub": "kc-0001", "preferred_username": "umbenannt"}
    assert sso_login(sso).status_code == 303
    assert sso.get("/api/v1/me").json()["username"] == "sb"


def test_a_bound_account_refuses_another_provider_account(sso, idp, db):
    assert sso_login(sso).status_code == 303
    sso.cookies.clear()
    idp.person = {"sub": "kc-9999", "preferred_username": "sb"}
    assert_refused(sso, sso_login(sso), 401, oidc.OTHER_SUBJECT)
    assert oidc_subject(db, "sb") == "kc-0001"


def test_next_must_stay_on_this_site(sso, idp):
    response = sso_login(sso, next="//boese.example/")
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_keys_rotated_by_the_provider_are_fetched_again(sso, idp):
    assert sso_login(sso).status_code == 303  # the key set is now cached
    sso.cookies.clear()
    idp.key = rsa_key(f"k-{secrets.token_hex(4)}")
    assert sso_login(sso).status_code == 303


# Refusals -------------------------------------------------------------------------------------
def test_wrong_state_is_refused(sso, idp):
    response = sso_login(sso, tamper=lambda url: with_query(url, state="gefaelscht"))
    assert_refused(sso, response, 400, oidc.FLOW_INVALID)


def test_callback_without_the_flow_cookie_is_refused(sso, idp):
    def drop_cookie(url: str) -> str:
        sso.cookies.delete(oidc.FLOW_COOKIE, path=oidc.FLOW_COOKIE_PATH)
        return url

    assert_refused(sso, sso_login(sso, tamper=drop_cookie), 400, oidc.FLOW_INVALID)


def test_a_callback_cannot_be_replayed(sso, idp):
    urls: list[str] = []
    assert sso_login(sso, tamper=lambda url: urls.append(url) or url).status_code == 303
    sso.cookies.clear()
    assert_refused(sso, sso.get(urls[0]), 400, oidc.FLOW_INVALID)


def test_provider_refusal_is_shown(sso, idp):
    idp.deny = True
    assert_refused(sso, sso_login(sso), 401, oidc.DENIED)


@pytest.mark.parametrize("kid", ["k1", "unbekannt"])
def test_token_signed_by_another_key_is_refused(sso, idp, kid):
    idp.forge_with = rsa_key(kid)
    assert_refused(sso, sso_login(sso), 401, oidc.CONFIRMATION_INVALID)


@pytest.mark.parametrize(
    "claims",
    [
        {"nonce": "anderes-nonce"},
        {"aud": "anderer-client"},
        {"iss": "https://anderer-anbieter.example"},
        {"exp": int(time.time()) - 3600},
        {"azp": "anderer-client", "aud": [CLIENT_ID, "anderer-client"]},
    ],
    ids=["nonce", "aud", "iss", "exp", "azp"],
)
def test_token_with_wrong_claims_is_refused(sso, idp, db, claims):
    idp.claims = claims
    assert_refused(sso, sso_login(sso), 401, oidc.CONFIRMATION_INVALID)
    assert oidc_subject(db, "sb") is None


def test_unknown_user_is_refused_in_german(sso, idp, db):
    idp.person = {"sub": "kc-0002", "preferred_username": "niemand"}
    response = sso_login(sso)
    assert_refused(sso, response, 401, oidc.UNKNOWN_USER)
    assert "Für Ihr Verwaltungskonto gibt es in Rathaus kein Benutzerkonto" in page_text(response)
    failed = audit_events(db, "login_failed")
    assert [(e.actor, e.data["grund"]) for e in failed] == [("niemand", "unbekannt")]


def test_disabled_user_is_refused(sso, idp, db):
    with db.session() as session:
        users.set_active(session, tenant_slug="alpha", username="sb", active=False)
    assert_refused(sso, sso_login(sso), 401, oidc.DISABLED_USER)
    failed = audit_events(db, "login_failed")
    assert [(e.actor, e.data["grund"]) for e in failed] == [("sb", "gesperrt")]
    assert audit_events(db, "login_oidc") == []


def test_provider_down_is_a_503(db, tmp_path, worlds):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = sso_settings(tmp_path, f"http://127.0.0.1:{port}/.well-known/openid-configuration")
    with TestClient(create_app(settings, database=db), follow_redirects=False) as client:
        response = client.get("/login/oidc")
        assert response.status_code == 503
        assert oidc.PROVIDER_DOWN in page_text(response)


def test_only_web_urls_are_fetched(db, tmp_path, worlds):
    settings = sso_settings(tmp_path, "file:///etc/passwd")
    with TestClient(create_app(settings, database=db), follow_redirects=False) as client:
        response = client.get("/login/oidc")
        assert response.status_code == 503
        assert oidc.NOT_CONFIGURED in page_text(response)


def test_disabled_feature_answers_404(client):
    assert client.get("/login/oidc").status_code == 404
    assert client.get("/auth/oidc/callback", params={"code": "x", "state": "y"}).status_code == 404


# The provider's address: outgoing connections obey rathaus.core.netguard -----------------------
def discovery_of(idp: IdP) -> str:
    return f"{idp.url}/.well-known/openid-configuration"


def on_localhost(idp: IdP, path: str) -> str:
    """The test provider under another host name: same machine, not the configured origin."""
    return f"http://localhost:{urlsplit(idp.url).port}{path}"


def test_a_provider_in_the_own_network_needs_no_setting(sso, idp):
    """The administration set the discovery URL (loopback here, Keycloak in the data centre in
    practice): like a model server it may lie in the own network without any freed network;
    discovery, token and keys are all fetched from it."""
    assert sso.app.state.settings.oidc.allowed_networks == []
    assert sso.app.state.settings.network.allowed_networks == []
    assert sso_login(sso).status_code == 303
    assert sso.get("/api/v1/me").json()["username"] == "sb"
    assert idp.fetched == ["/.well-known/openid-configuration", "/token", "/jwks"]


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("169.254.169.254", "169.254.169.254"),
        ("[fd00:ec2::254]", "fd00:ec2::254"),
        ("[::ffff:169.254.169.254]", "::ffff:a9fe:a9fe"),
    ],
    ids=["link-local", "aws-ipv6", "mapped-ipv6"],
)
def test_the_metadata_service_is_refused_even_as_the_configured_provider(
    db, tmp_path, worlds, caplog, host, address
):
    """The configured provider may be internal, not the metadata service: refused before any
    connection; the page names the setting, the log address, reason and setting."""
    settings = sso_settings(tmp_path, f"http://{host}/.well-known/openid-configuration")
    caplog.set_level(logging.WARNING, logger="rathaus.web.oidc")
    with TestClient(create_app(settings, database=db), follow_redirects=False) as client:
        response = client.get("/login/oidc")
    assert response.status_code == 503
    assert oidc.PROVIDER_BLOCKED in page_text(response)
    assert "RATHAUS_OIDC__ALLOWED_NETWORKS" in page_text(response)
    logged = caplog.text
    assert "Der Anmeldedienst (OIDC)" in logged and address in logged
    assert "Metadatendienst" in logged and "RATHAUS_OIDC__ALLOWED_NETWORKS" in logged


@pytest.mark.parametrize(
    "announce",
    [
        {"jwks_uri": "http://169.254.169.254/latest/meta-data/"},
        {"token_endpoint": "http://10.1.2.3/token"},
        {"token_endpoint": "http://[::ffff:192.168.0.1]/token"},
        {"token_endpoint": "localhost:/token"},
        {"jwks_uri": "localhost:/jwks"},
        {"jwks_uri": "http://127.0.0.1:6379/"},
        {"token_endpoint": "https://{hostport}/token"},
    ],
    ids=[
        "jwks-metadata",
        "token-private",
        "token-mapped-ipv6",
        "token-other-internal-host",
        "jwks-other-internal-host",
        "jwks-same-host-other-port",
        "token-same-host-other-scheme",
    ],
)
def test_endpoints_on_another_internal_host_are_refused(sso, idp, caplog, announce):
    """The discovery document (whoever answers at the configured address) cannot point Rathaus
    at the metadata service or any other internal host, not even at another port or scheme of
    the provider's own machine: only the configured origin is treated like a model server.
    Refused, not "unreachable": the endpoint was not even asked (the fetch log shows it)."""
    hostport = urlsplit(idp.url).netloc
    idp.announce = {
        key: on_localhost(idp, url.removeprefix("localhost:"))
        if url.startswith("localhost:")
        else url.format(hostport=hostport)
        for key, url in announce.items()
    }
    caplog.set_level(logging.WARNING, logger="rathaus.web.oidc")
    assert_refused(sso, sso_login(sso), 503, oidc.PROVIDER_BLOCKED)
    token_fetched = "jwks_uri" in announce  # the key set is fetched after the token
    assert idp.fetched == ["/.well-known/openid-configuration"] + ["/token"] * token_fetched
    assert "Die vom Discovery-Dokument des Anmeldedienstes genannte Adresse" in caplog.text
    assert "RATHAUS_OIDC__ALLOWED_NETWORKS" in caplog.text


@pytest.mark.parametrize("setting", ["oidc", "network"])
def test_an_endpoint_on_another_host_can_be_freed(db, tmp_path, idp, worlds, setting):
    """``oidc.allowed_networks`` (or the installation-wide ``network.allowed_networks``) frees
    an internal host that the discovery document names."""
    idp.announce = {"token_endpoint": on_localhost(idp, "/token")}
    if setting == "oidc":
        settings = sso_settings(tmp_path, discovery_of(idp), allowed=LOOPBACK)
    else:
        settings = sso_settings(tmp_path, discovery_of(idp), network={"allowed_networks": LOOPBACK})
    with TestClient(create_app(settings, database=db), follow_redirects=False) as client:
        assert sso_login(client).status_code == 303
        assert client.get("/api/v1/me").json()["username"] == "sb"
    assert "/token" in idp.fetched


def test_a_cached_answer_counts_only_under_the_same_rule(db, tmp_path, idp, worlds):
    """The key set fetched from the configured origin is cached; when the configuration names
    another origin, the same URL is foreign and the cached answer must not bypass the check."""
    first = sso_settings(tmp_path, discovery_of(idp))
    with TestClient(create_app(first, database=db), follow_redirects=False) as client:
        assert sso_login(client).status_code == 303  # discovery and key set now cached
    # Configured under "localhost": the key set on 127.0.0.1 is now another host.
    idp.announce = {"token_endpoint": on_localhost(idp, "/token")}
    second = sso_settings(
        tmp_path, on_localhost(idp, "/.well-known/openid-configuration"), allowed=[]
    )
    idp.fetched.clear()
    with TestClient(create_app(second, database=db), follow_redirects=False) as client:
        assert_refused(client, sso_login(client), 503, oidc.PROVIDER_BLOCKED)
    assert idp.fetched == ["/.well-known/openid-configuration", "/token"]


@pytest.mark.parametrize(
    ("url", "internal"),
    [
        ("https://sso.intern/realms/k/protocol/openid-connect/token", True),
        ("https://SSO.intern:443/realms/k/protocol/openid-connect/certs", True),
        ("https://sso.intern:8443/token", False),
        ("http://sso.intern/token", False),
        ("https://keycloak.intern/token", False),
        ("https://sso.intern.example/token", False),
        ("https://sso.intern:99999/token", False),
        ("/token", False),
    ],
)
def test_only_the_configured_origin_is_treated_like_a_model_server(tmp_path, url, internal):
    settings = sso_settings(
        tmp_path, "https://sso.intern/realms/k/.well-known/openid-configuration"
    )
    rule = oidc.policy(settings, url)
    assert rule.internal_allowed is internal
    assert (rule.refusal(ipaddress.ip_address("10.20.30.40")) is None) is internal
    assert (rule.refusal(ipaddress.ip_address("127.0.0.1")) is None) is internal
    assert rule.refusal(ipaddress.ip_address("169.254.169.254")) is not None
    assert rule.refusal(ipaddress.ip_address("fd00:ec2::254")) is not None
    assert rule.refusal(ipaddress.ip_address("8.8.8.8")) is None
    freed = sso_settings(tmp_path, "https://sso.intern/x", allowed=["169.254.169.254/32"])
    assert oidc.policy(freed, url).refusal(ipaddress.ip_address("169.254.169.254")) is None


def test_the_allow_list_is_checked_when_the_settings_load(tmp_path):
    with pytest.raises(ConfigError, match="keine IP-Adresse"):
        sso_settings(tmp_path, "https://sso.example/x", allowed=["sso.intern"])
