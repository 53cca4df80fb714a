"""The policy ``security.second_factor_required_for_roles``: outside demo mode a person with such
a role and no factor enrols right after the password and gets no session before; demo logins
stay usable; single sign-on is not asked for the own factor."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rathaus.core import second_factor
from rathaus.core.config import load_settings
from rathaus.core.errors import ConfigError
from rathaus.core.security import SESSION_COOKIE
from rathaus.web.cookies import HOST_PREFIX
from rathaus.web.second_factor_login import CHALLENGE_COOKIE
from tests.factories import PASSWORD
from tests.web.conftest import csrf_of, login, production_app
from tests.web.test_oidc import (  # noqa: F401 - the test provider's fixtures
    audit_events,
    idp,
    idp_server,
    sso,
    sso_login,
)
from tests.web.test_second_factor import (
    FORM_TOKEN,
    RECOVERY,
    code_for,
    key_on,
    send_code,
    user_id,
)

HOST_SESSION = HOST_PREFIX + SESSION_COOKIE


@pytest.fixture
def https(db, tmp_path, worlds) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    app = production_app(db, tmp_path)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        yield c


def enrol_at_login(client: TestClient, username: str) -> bytes:
    """Password, then the enrolment the policy demands, then the session; the secret."""
    first = login(client, username)
    assert first.status_code == 303, first.text
    assert first.headers["location"] == "/login/zweiter-faktor/einrichten"
    page = client.get("/login/zweiter-faktor/einrichten")
    secret = key_on(page.text)
    token = FORM_TOKEN.search(page.text).group(1)
    shown = client.post(
        "/login/zweiter-faktor/einrichten", data={"code": code_for(secret), "csrf_token": token}
    )
    assert shown.status_code == 200 and len(RECOVERY.findall(shown.text)) == 10
    assert HOST_SESSION not in client.cookies  # the codes first, then the session
    token = FORM_TOKEN.search(shown.text).group(1)
    done = client.post("/login/zweiter-faktor/weiter", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert HOST_SESSION in client.cookies
    return secret


def test_an_admin_without_factor_enrols_before_getting_a_session(https, db):  # type: ignore[no-untyped-def]
    first = login(https, "admin")
    assert first.headers["location"] == "/login/zweiter-faktor/einrichten"
    assert HOST_SESSION not in https.cookies and HOST_PREFIX + CHALLENGE_COOKIE in https.cookies
    # Nothing else works until enrolled: no session, and the code step leads back here.
    assert https.get("/").headers["location"].startswith("/login")
    assert https.get("/system").headers["location"].startswith("/login")
    assert https.get("/login/zweiter-faktor").headers["location"] == (
        "/login/zweiter-faktor/einrichten"
    )
    page = https.get("/login/zweiter-faktor/einrichten")
    text = html.unescape(page.text)
    assert page.status_code == 200 and "Für Ihre Rolle verlangt Ihre Kommune" in text
    assert "otpauth://totp/Rathaus%20Stadt%20Alpha:admin" in text
    token = FORM_TOKEN.search(page.text).group(1)
    wrong = https.post(
        "/login/zweiter-faktor/einrichten", data={"code": "abc", "csrf_token": token}
    )
    assert wrong.status_code == 422 and HOST_SESSION not in https.cookies
    https.cookies.clear()

    secret = enrol_at_login(https, "admin")
    assert https.get("/system").status_code == 200
    assert [e.actor for e in audit_events(db, "second_factor_enrolled")] == ["admin"]
    # From now on the admin's logins ask for the code.
    https.cookies.clear()
    assert login(https, "admin").headers["location"] == "/login/zweiter-faktor"
    assert send_code(https, code_for(secret, 1)).headers["location"] == "/"


def test_roles_outside_the_policy_log_in_with_the_password(https):  # type: ignore[no-untyped-def]
    answer = login(https, "sb")
    assert answer.headers["location"] == "/" and HOST_SESSION in https.cookies
    https.cookies.clear()
    assert login(https, "dsb").headers["location"] == "/login/zweiter-faktor/einrichten"


def test_a_required_factor_cannot_be_switched_off(https, db):  # type: ignore[no-untyped-def]
    secret = enrol_at_login(https, "admin")
    page = https.get("/konto/zweiter-faktor").text
    assert "vorgeschrieben" in page and "/konto/zweiter-faktor/abschalten" not in page
    refused = https.post(
        "/konto/zweiter-faktor/abschalten",
        data={"code": code_for(secret, 1), "passwort": PASSWORD, "csrf_token": csrf_of(https)},
    )
    assert refused.status_code == 403 and "nicht abschalten" in html.unescape(refused.text)
    with db.session() as session:
        assert second_factor.is_active(session, user_id=user_id(db, "admin"))


def test_demo_mode_keeps_the_demo_logins_usable(client, worlds):  # type: ignore[no-untyped-def]
    """Demo mode: the policy is not enforced, the printed demo logins work with the password."""
    for username in ("admin", "dsb"):
        client.cookies.clear()
        assert login(client, username).headers["location"] == "/"


def test_the_policy_is_a_setting(db, tmp_path, worlds):  # type: ignore[no-untyped-def]
    app = production_app(db, tmp_path, security={"second_factor_required_for_roles": []})
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        assert login(c, "admin").headers["location"] == "/"
    with pytest.raises(ConfigError, match=re.escape("unbekannte Rolle chef; erlaubt sind admin")):
        load_settings(mode="demo", security={"second_factor_required_for_roles": ["chef"]})
    assert load_settings(mode="demo").security.second_factor_required_for_roles == [
        "admin",
        "datenschutz",
    ]


def test_single_sign_on_is_not_asked_for_the_own_factor(sso, idp, db):  # type: ignore[no-untyped-def]  # noqa: F811
    """sb has an active own factor; signing in through the provider needs none of it."""
    from rathaus.core.models import User

    with db.session() as session:
        user = session.get(User, user_id(db, "sb"))
        secret, _ = second_factor.pending_secret(session, user=user, secret_key="k")
        assert second_factor.confirm(session, user=user, secret_key="k", code=code_for(secret))
    response = sso_login(sso)
    assert response.status_code == 303 and response.headers["location"] == "/api/v1/me"
    assert SESSION_COOKIE in sso.cookies and CHALLENGE_COOKIE not in sso.cookies
    assert sso.get("/api/v1/me").json()["username"] == "sb"


def test_leaving_the_recovery_codes_page_means_signing_in_anew(https):  # type: ignore[no-untyped-def]
    login(https, "admin")
    page = https.get("/login/zweiter-faktor/einrichten")
    secret = key_on(page.text)
    token = FORM_TOKEN.search(page.text).group(1)
    shown = https.post(
        "/login/zweiter-faktor/einrichten", data={"code": code_for(secret), "csrf_token": token}
    )
    assert shown.status_code == 200
    for path in ("/login/zweiter-faktor", "/login/zweiter-faktor/einrichten"):
        assert https.get(path).headers["location"] == "/login?grund=zweiter-faktor"
    token = FORM_TOKEN.search(shown.text).group(1)
    late = https.post("/login/zweiter-faktor/weiter", data={"csrf_token": token})
    assert late.headers["location"] == "/login?grund=zweiter-faktor"
    assert HOST_SESSION not in https.cookies
    assert login(https, "admin").headers["location"] == "/login/zweiter-faktor"  # now active
    assert send_code(https, code_for(secret, 1)).headers["location"] == "/"
