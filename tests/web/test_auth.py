"""Login, logout, CSRF and role checks against the real app and database."""

from __future__ import annotations

from rathaus.core.config import load_settings
from rathaus.core.security import SESSION_COOKIE
from rathaus.web.app import create_app
from tests.web.conftest import csrf_of, login


def test_login_and_logout(client, worlds):
    assert client.get("/").status_code == 303  # not logged in → login page
    response = login(client, "sb")
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert SESSION_COOKIE in client.cookies
    start = client.get("/")
    assert start.status_code == 200
    assert "Guten Tag, Sb" in start.text
    assert "Bürgeramt" in start.text
    token = csrf_of(client)
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/").status_code == 303


def test_session_cookie_flags(client, worlds):
    response = login(client, "sb")
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")


def test_wrong_password_is_a_german_401(client, worlds):
    response = login(client, "sb", password="falsch-falsch-falsch")
    assert response.status_code == 401
    assert "Benutzername oder Passwort ist falsch" in response.text
    assert SESSION_COOKIE not in client.cookies


def test_unknown_user_and_other_tenant_are_rejected(client, worlds):
    assert login(client, "niemand").status_code == 401
    # a user of tenant beta cannot log in through tenant alpha with beta's name only
    assert login(client, "sb", tenant="gamma").status_code == 401


def test_disabled_user_cannot_log_in_and_loses_sessions(client, worlds, db):
    from rathaus.core import users

    assert login(client, "sb").status_code == 303
    with db.session() as session:
        users.set_active(session, tenant_slug="alpha", username="sb", active=False)
    assert client.get("/").status_code == 303
    assert login(client, "sb").status_code == 401


def test_login_without_csrf_token_is_refused(client, worlds):
    client.get("/login")
    response = client.post(
        "/login", data={"username": "sb", "password": "x" * 20, "kommune": "alpha"}
    )
    assert response.status_code == 403
    assert "Formular ist abgelaufen" in response.text


def test_state_change_without_csrf_token_is_refused(client, worlds):
    login(client, "sb")
    case = worlds["a"].cases["BA"]
    response = client.post(f"/vorgaenge/{case.id}/status", data={"status": "in_bearbeitung"})
    assert response.status_code == 403
    assert "CSRF" in response.text
    api = client.post(f"/api/v1/cases/{case.id}/status", json={"status": "in_bearbeitung"})
    assert api.status_code == 403
    assert client.post("/logout").status_code == 403
    # with the token the same change works and is logged
    token = csrf_of(client)
    ok = client.post(
        f"/vorgaenge/{case.id}/status", data={"status": "in_bearbeitung", "csrf_token": token}
    )
    assert ok.status_code == 303
    detail = client.get(f"/vorgaenge/{case.id}")
    assert "In Bearbeitung" in detail.text and "(sb)" in detail.text
    api_ok = client.post(
        f"/api/v1/cases/{case.id}/status",
        json={"status": "wartet", "reason": "Unterlagen fehlen"},
        headers={"X-CSRF-Token": token},
    )
    assert api_ok.status_code == 200 and api_ok.json()["status"] == "wartet"


def test_invalid_transition_is_a_german_400(client, worlds):
    login(client, "sb")
    case = worlds["a"].cases["BA"]
    token = csrf_of(client)
    response = client.post(
        f"/api/v1/cases/{case.id}/status",
        json={"status": "archiviert"},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 400
    assert "kann nicht von" in response.json()["detail"]


def test_roles_are_enforced(client, worlds):
    login(client, "redaktion")
    assert client.get("/vorgaenge").status_code == 403
    assert client.get("/api/v1/cases").status_code == 403
    case = worlds["a"].cases["BA"]
    assert client.get(f"/vorgaenge/{case.id}").status_code == 404
    token = csrf_of(client)
    denied = client.post(
        f"/api/v1/cases/{case.id}/status",
        json={"status": "in_bearbeitung"},
        headers={"X-CSRF-Token": token},
    )
    assert denied.status_code in (403, 404)


def test_department_scope(client, worlds):
    login(client, "sb")  # member of Bürgeramt only
    refs = {c["reference"] for c in client.get("/api/v1/cases").json()}
    assert refs == {worlds["a"].cases["BA"].reference}
    assert client.get(f"/vorgaenge/{worlds['a'].cases['OA-GW'].id}").status_code == 404


def test_head_of_unit_sees_sub_units_and_triage(client, worlds):
    login(client, "leitung")  # head of Ordnungsamt, which contains Gewerbe
    refs = {c["reference"] for c in client.get("/api/v1/cases").json()}
    assert refs == {worlds["a"].cases["OA-GW"].reference, worlds["a"].cases["unrouted"].reference}


def test_api_without_login_is_401_and_ui_redirects(client, worlds):
    assert client.get("/api/v1/cases").status_code == 401
    response = client.get("/vorgaenge?status=neu")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=%2Fvorgaenge")


def test_open_redirect_after_login_is_blocked(client, worlds):
    page = client.get("/login")
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login",
        data={
            "username": "sb",
            "password": "richtig-langes-passwort",
            "kommune": "alpha",
            "csrf_token": token,
            "next": "//evil.example/",
        },
    )
    assert response.headers["location"] == "/"


def test_demo_credentials_only_in_demo_mode(db, worlds, tmp_path):
    from fastapi.testclient import TestClient

    demo = create_app(
        load_settings(mode="demo", data_dir=tmp_path, queue={"backend": "memory"}), database=db
    )
    demo.state.demo_credentials = [
        {"username": "admin", "password": "demo-passwort", "description": "Admin"}
    ]
    with TestClient(demo) as c:
        assert "Demo-Zugänge" in c.get("/login").text
    prod = create_app(
        load_settings(
            mode="production", secret_key="x" * 40, data_dir=tmp_path, queue={"backend": "memory"}
        ),
        database=db,
    )
    prod.state.demo_credentials = []
    with TestClient(prod) as c:
        page = c.get("/login").text
        assert "Demo-Zugänge" not in page and "demo-passwort" not in page
        assert "Strict-Transport-Security" in c.get("/login").headers


def test_output_is_escaped(client, worlds, db):
    from rathaus.core.models import Case

    with db.session() as session:
        case = session.get(Case, worlds["a"].cases["BA"].id)
        case.subject = '<script>alert("x")</script>'
    login(client, "sb")
    page = client.get(f"/vorgaenge/{worlds['a'].cases['BA'].id}").text
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_security_headers(client, worlds):
    headers = client.get("/login").headers
    assert headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
