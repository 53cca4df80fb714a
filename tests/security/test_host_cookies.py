"""``__Host-`` cookies with secure cookies (ASVS 3.4.4): session, login form and OIDC flow are
named ``__Host-…`` with ``Secure; Path=/`` and no ``Domain``; a cookie under the plain name is
no login; over plain HTTP (demo) the plain names stay; an upgrade ends old sessions once."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rathaus.core.config import load_settings
from rathaus.core.models import User, WebSession
from rathaus.core.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE, create_session
from rathaus.web import oidc
from rathaus.web.app import create_app
from rathaus.web.cookies import HOST_PREFIX
from tests.factories import PASSWORD
from tests.web.conftest import csrf_of, login, production_app
from tests.web.test_oidc import (  # noqa: F401 - the test provider's fixtures
    CLIENT_ID,
    CLIENT_SECRET,
    idp,
    idp_server,
    page_text,
    sso_login,
)

HOST_SESSION = HOST_PREFIX + SESSION_COOKIE
HOST_LOGIN_CSRF = HOST_PREFIX + LOGIN_CSRF_COOKIE
HOST_FLOW = HOST_PREFIX + oidc.FLOW_COOKIE
DOMAIN = "testserver.local"  # where httpx keeps the cookies of http(s)://testserver


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header of ``response`` by cookie name."""
    return {
        value.split("=", 1)[0]: value
        for key, value in response.headers.multi_items()
        if key == "set-cookie"
    }


def _assert_host_cookie(header: str) -> None:
    """What a browser demands of a ``__Host-`` cookie (RFC 6265bis 4.1.3.2)."""
    attributes = [part.strip().lower() for part in header.split(";")[1:]]
    assert header.startswith(HOST_PREFIX)
    assert "secure" in attributes and "path=/" in attributes and "httponly" in attributes
    assert not any(a.startswith("domain") for a in attributes), header


@pytest.fixture
def secure_app(db, tmp_path):  # type: ignore[no-untyped-def]
    app = production_app(db, tmp_path)
    assert app.state.settings.secure_cookies
    return app


@pytest.fixture
def https(secure_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(secure_app, base_url="https://testserver", follow_redirects=False) as c:
        yield c


def _form_token(page: httpx.Response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_secure_cookies_carry_the_host_prefix_through_login_post_and_logout(https, worlds):  # type: ignore[no-untyped-def]
    page = https.get("/login")
    login_cookie = _set_cookies(page)[HOST_LOGIN_CSRF]
    _assert_host_cookie(login_cookie)
    assert "samesite=strict" in login_cookie.lower()

    response = login(https, "sb")
    assert response.status_code == 303
    cookies = _set_cookies(response)
    _assert_host_cookie(cookies[HOST_SESSION])
    assert "samesite=lax" in cookies[HOST_SESSION].lower()
    assert "Max-Age=28800" in cookies[HOST_SESSION]
    _assert_host_cookie(cookies[HOST_LOGIN_CSRF])  # the form's cookie is forgotten...
    assert "Max-Age=0" in cookies[HOST_LOGIN_CSRF]  # ...with the attributes it was set with
    assert SESSION_COOKIE not in cookies and LOGIN_CSRF_COOKIE not in cookies
    assert set(https.cookies.keys()) == {HOST_SESSION}
    assert https.get("/api/v1/me").json()["username"] == "sb"

    # A CSRF-protected form POST works with the token, and is refused without it.
    assert https.post("/konto/sitzungen/andere-abmelden", data={}).status_code == 403
    ended = https.post("/konto/sitzungen/andere-abmelden", data={"csrf_token": csrf_of(https)})
    assert ended.status_code == 303 and ended.headers["location"].endswith("meldung=andere")

    out = https.post("/logout", data={"csrf_token": csrf_of(https)})
    assert out.status_code == 303
    gone = _set_cookies(out)[HOST_SESSION]
    _assert_host_cookie(gone)  # without Secure and Path=/ a browser would ignore the deletion
    assert "Max-Age=0" in gone
    assert HOST_SESSION not in https.cookies
    assert https.get("/api/v1/me").status_code == 401


def test_a_cookie_under_the_plain_name_is_no_session_in_secure_mode(secure_app, https, worlds):  # type: ignore[no-untyped-def]
    """A neighbouring subdomain can set ``rathaus_session`` for the parent domain, never
    ``__Host-rathaus_session``: the plain name must not count."""
    login(https, "sb")
    token = https.cookies[HOST_SESSION]
    with TestClient(secure_app, base_url="https://testserver", follow_redirects=False) as other:
        other.cookies.set(SESSION_COOKIE, token, domain=DOMAIN)
        assert other.get("/api/v1/me").status_code == 401
        assert other.get("/vorgaenge").status_code == 303  # to the login page
        other.cookies.clear()
        other.cookies.set(HOST_SESSION, token, domain=DOMAIN)
        assert other.get("/api/v1/me").status_code == 200


def test_a_login_form_cookie_under_the_plain_name_is_refused_in_secure_mode(secure_app, worlds):  # type: ignore[no-untyped-def]
    """Login CSRF by cookie tossing: a sibling subdomain plants ``rathaus_login_csrf`` and sends
    a form with the same value, to sign the victim in to the attacker's account."""
    with TestClient(secure_app, base_url="https://testserver", follow_redirects=False) as victim:
        victim.cookies.set(LOGIN_CSRF_COOKIE, "geworfen", domain=DOMAIN)
        answer = victim.post(
            "/login",
            data={
                "username": "sb",
                "password": PASSWORD,
                "kommune": "alpha",
                "csrf_token": "geworfen",
            },
        )
        assert answer.status_code == 403
        assert "Das Formular ist abgelaufen" in page_text(answer)
        assert HOST_SESSION not in victim.cookies


def test_plain_http_keeps_the_plain_names(client, worlds):  # type: ignore[no-untyped-def]
    """Demo over HTTP: browsers refuse ``__Host-`` without Secure, so nothing is renamed."""
    page = client.get("/login")
    assert LOGIN_CSRF_COOKIE in _set_cookies(page)
    response = login(client, "sb")
    cookies = _set_cookies(response)
    assert SESSION_COOKIE in cookies and "secure" not in cookies[SESSION_COOKIE].lower()
    assert not any(name.startswith(HOST_PREFIX) for name in cookies)
    token = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    client.cookies.set(HOST_SESSION, token, domain=DOMAIN)
    assert client.get("/api/v1/me").status_code == 401  # only the current mode's name counts
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, token, domain=DOMAIN)
    out = client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert f'{SESSION_COOKIE}=""' in _set_cookies(out)[SESSION_COOKIE]


def test_after_the_upgrade_an_old_session_cookie_logs_in_once_more_and_is_cleared(  # type: ignore[no-untyped-def]
    secure_app, https, db, worlds
):
    """A browser signed in before the ``__Host-`` names is signed out once: its old session ends
    at the next login and the old cookie is deleted."""
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == "sb"))
        old, _ = create_session(session, user, max_age_s=3600)
    https.cookies.set(SESSION_COOKIE, old, domain=DOMAIN)
    assert https.get("/vorgaenge").headers["location"].startswith("/login")
    response = login(https, "sb")
    cookies = _set_cookies(response)
    assert "Max-Age=0" in cookies[SESSION_COOKIE]  # the old cookie is forgotten
    assert "secure" in cookies[SESSION_COOKIE].lower()
    _assert_host_cookie(cookies[HOST_SESSION])
    assert SESSION_COOKIE not in https.cookies
    with db.session() as session:
        assert len(session.scalars(select(WebSession)).all()) == 1  # the old one ended


def test_an_idle_session_is_forgotten_under_the_host_name(https, db, worlds):  # type: ignore[no-untyped-def]
    import datetime as dt

    login(https, "sb")
    with db.session() as session:
        for row in session.scalars(select(WebSession)):
            row.last_seen_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    answer = https.get("/vorgaenge")
    assert answer.headers["location"] == "/login?next=%2Fvorgaenge&grund=inaktiv"
    gone = _set_cookies(answer)[HOST_SESSION]
    _assert_host_cookie(gone)
    assert "Max-Age=0" in gone


# OIDC: the flow cookie (state, nonce, PKCE verifier) --------------------------------------------
@pytest.fixture
def secure_sso(db, tmp_path, idp, worlds) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]  # noqa: F811
    settings = load_settings(
        mode="demo",
        cookie_secure=True,  # HTTPS in front of a demo: the setting alone decides
        data_dir=tmp_path,
        default_tenant="alpha",
        queue={"backend": "memory"},
        oidc={
            "enabled": True,
            "discovery_url": f"{idp.url}/.well-known/openid-configuration",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "allowed_networks": ["127.0.0.1/32"],  # the test provider runs on loopback
        },
    )
    app = create_app(settings, database=db)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        yield c


def test_oidc_flow_cookie_has_the_host_prefix_and_the_login_works(secure_sso, idp):  # type: ignore[no-untyped-def]  # noqa: F811
    start = secure_sso.get("/login/oidc", params={"next": "/api/v1/me"})
    flow = _set_cookies(start)[HOST_FLOW]
    _assert_host_cookie(flow)
    assert "samesite=lax" in flow.lower()
    secure_sso.cookies.clear()

    response = sso_login(secure_sso)
    assert response.status_code == 303 and response.headers["location"] == "/api/v1/me"
    cookies = _set_cookies(response)
    _assert_host_cookie(cookies[HOST_SESSION])
    _assert_host_cookie(cookies[HOST_FLOW])
    assert "Max-Age=0" in cookies[HOST_FLOW]  # used once, then forgotten
    assert set(secure_sso.cookies.keys()) == {HOST_SESSION}
    assert secure_sso.get("/api/v1/me").json()["username"] == "sb"


def test_oidc_flow_cookie_under_the_plain_name_is_refused(secure_sso, idp):  # type: ignore[no-untyped-def]  # noqa: F811
    """A flow cookie tossed in under the plain name (e.g. an attacker's own, validly signed
    flow) does not complete a login."""

    def rename(url: str) -> str:
        value = secure_sso.cookies[HOST_FLOW]
        secure_sso.cookies.clear()
        secure_sso.cookies.set(oidc.FLOW_COOKIE, value, domain=DOMAIN)
        return url

    answer = sso_login(secure_sso, tamper=rename)
    assert answer.status_code == 400 and oidc.FLOW_INVALID in page_text(answer)
    assert secure_sso.get("/api/v1/me").status_code == 401
