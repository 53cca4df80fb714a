"""Authentication and session handling (ASVS V2, V3): hashed passwords, fresh tokens at login,
server-side logout and expiry, cookie flags in production, no secret in the database."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rathaus.core import users
from rathaus.core.config import load_settings
from rathaus.core.models import AuditEvent, User, WebSession
from rathaus.core.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE, _token_hash, hash_password
from rathaus.web.app import create_app
from tests.factories import PASSWORD
from tests.web.conftest import csrf_of, login, production_app


def _token(client: TestClient) -> str:
    return client.cookies[SESSION_COOKIE]


def test_passwords_are_stored_as_argon2id_hashes(db, worlds):  # type: ignore[no-untyped-def]
    with db.session() as session:
        hashes = list(
            session.scalars(select(User.password_hash).where(User.password_hash.is_not(None)))
        )
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert all(PASSWORD not in h for h in hashes)


def test_short_passwords_are_refused(db, worlds):  # type: ignore[no-untyped-def]
    from rathaus.core.errors import RathausError

    with db.session() as session, pytest.raises(RathausError, match="mindestens 12 Zeichen"):
        users.set_password(
            session,
            tenant_slug="alpha",
            username="sb",
            password="kurz-11-zei",
            password_hasher=hash_password,
        )


def test_session_token_is_random_and_stored_only_as_hash(client, db, worlds):  # type: ignore[no-untyped-def]
    login(client, "sb")
    token = _token(client)
    assert len(token) >= 43  # 32 random bytes, URL-safe
    with db.session() as session:
        rows = list(session.scalars(select(WebSession)))
    assert [r.token_hash for r in rows] == [_token_hash(token)]
    assert all(token not in (r.token_hash, r.csrf_token) for r in rows)


def test_login_issues_a_new_token_and_ends_the_one_the_browser_had(app, client, worlds):  # type: ignore[no-untyped-def]
    """Session fixation: a token planted in the browser before the login is worthless after it."""
    with TestClient(app, follow_redirects=False) as attacker:
        login(attacker, "sb")
        planted = _token(attacker)
    page = client.get("/login")
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
    response = client.post(
        "/login",
        data={
            "username": "admin",
            "password": PASSWORD,
            "kommune": "alpha",
            "csrf_token": form_token,
        },
    )
    assert response.status_code == 303
    fresh = _token(client)
    assert fresh != planted
    with TestClient(app, follow_redirects=False) as replay:
        replay.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
        assert replay.get("/").status_code == 303  # back to the login page
        assert replay.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").json()["username"] == "admin"


def test_logout_ends_the_session_on_the_server(app, client, db, worlds):  # type: ignore[no-untyped-def]
    login(client, "sb")
    token = _token(client)
    assert client.post("/logout", data={"csrf_token": csrf_of(client)}).status_code == 303
    with TestClient(app, follow_redirects=False) as replay:
        replay.cookies.set(
            SESSION_COOKIE, token, domain="testserver.local"
        )  # a copy of the cookie taken before logout
        assert replay.get("/api/v1/me").status_code == 401
    with db.session() as session:
        assert (
            session.scalar(select(WebSession).where(WebSession.token_hash == _token_hash(token)))
            is None
        )
        kinds = list(session.scalars(select(AuditEvent.kind).order_by(AuditEvent.id)))
    assert kinds[-2:] == ["login", "logout"]


def test_expired_session_is_refused(client, db, worlds):  # type: ignore[no-untyped-def]
    login(client, "sb")
    with db.session() as session:
        row = session.scalar(select(WebSession))
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.commit()
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/").headers["location"].startswith("/login")


def test_new_password_ends_every_session_of_the_person(client, db, worlds):  # type: ignore[no-untyped-def]
    login(client, "sb")
    assert client.get("/api/v1/me").status_code == 200
    with db.session() as session:
        users.set_password(
            session,
            tenant_slug="alpha",
            username="sb",
            password="ein-neues-langes-passwort",
            password_hasher=hash_password,
        )
        session.commit()
    assert client.get("/api/v1/me").status_code == 401


def test_failed_logins_are_generic_and_audited(client, db, worlds):  # type: ignore[no-untyped-def]
    wrong_password = login(client, "sb", password="falsches-passwort-123")
    unknown_user = login(client, "niemand-hier")
    assert wrong_password.status_code == unknown_user.status_code == 401
    message = "Benutzername oder Passwort ist falsch, oder das Konto ist gesperrt."
    assert message in wrong_password.text and message in unknown_user.text
    with db.session() as session:
        failed = list(session.scalars(select(AuditEvent).where(AuditEvent.kind == "login_failed")))
    actors = {e.actor for e in failed}
    # The existing account by name; a name without an account only as a pseudonym.
    assert "sb" in actors and len(actors) == 2
    assert not any("niemand" in a for a in actors)
    assert any(a.startswith("konto:") for a in actors)
    assert all("falsches-passwort" not in str(e.data) for e in failed)


@pytest.fixture
def production(db, tmp_path):  # type: ignore[no-untyped-def]
    return production_app(db, tmp_path)


def test_cookies_are_secure_httponly_and_samesite_in_production(production, worlds):  # type: ignore[no-untyped-def]
    with TestClient(production, base_url="https://testserver", follow_redirects=False) as c:
        page = c.get("/login")
        login_cookie = page.headers["set-cookie"]
        assert login_cookie.startswith("__Host-" + LOGIN_CSRF_COOKIE)  # ASVS 3.4.4
        assert all(flag in login_cookie for flag in ("HttpOnly", "Secure", "SameSite=strict"))
        response = login(c, "sb")
        assert response.status_code == 303
        cookie = next(
            v
            for k, v in response.headers.multi_items()
            if k == "set-cookie" and v.startswith("__Host-" + SESSION_COOKIE)
        )
        assert "HttpOnly" in cookie and "Secure" in cookie and "samesite=lax" in cookie.lower()
        assert "Max-Age=28800" in cookie  # session_max_age_s: an absolute lifetime of 8 hours
        assert page.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_demo_mode_cookies_work_without_https(client, worlds):  # type: ignore[no-untyped-def]
    response = login(client, "sb")
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" not in cookie


# -- idle timeout (ASVS 3.3.2) ---------------------------------------------------------------


def _set_last_seen(db, ago_s: float) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        for row in session.scalars(select(WebSession)):
            row.last_seen_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ago_s)


def test_idle_session_ends_with_a_german_notice(app, client, db, worlds):  # type: ignore[no-untyped-def]
    idle_s = app.state.settings.session_idle_s
    assert idle_s == 3600  # the default: one hour without a request
    login(client, "sb")
    _set_last_seen(db, idle_s - 120)  # almost an hour: still alive, and seen again now
    assert client.get("/api/v1/me").status_code == 200
    with db.session() as session:
        seen = session.scalar(select(WebSession.last_seen_at))
    assert dt.datetime.now(dt.UTC) - seen.replace(tzinfo=dt.UTC) < dt.timedelta(seconds=60)

    _set_last_seen(db, idle_s + 1)
    answer = client.get("/vorgaenge")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fvorgaenge&grund=inaktiv"
    assert 'rathaus_session=""' in answer.headers["set-cookie"]  # the browser forgets it too
    page = client.get(answer.headers["location"])
    assert "Ihre Sitzung ist wegen Inaktivität abgelaufen." in page.text
    with db.session() as session:
        assert session.scalars(select(WebSession)).all() == []  # ended on the server

    login(client, "sb")
    _set_last_seen(db, idle_s + 1)
    api = client.get("/api/v1/me")
    assert api.status_code == 401 and "wegen Inaktivität abgelaufen" in api.json()["detail"]


def test_last_seen_is_written_at_most_once_a_minute(client, db, worlds):  # type: ignore[no-untyped-def]
    from sqlalchemy import Engine, event

    login(client, "sb")
    writes: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE WEB_SESSIONS"):
            writes.append(statement)

    # Every engine: on PostgreSQL the write goes through a small pool of its own.
    event.listen(Engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert client.get("/api/v1/me").status_code == 200
        assert writes == []  # seen at the login, less than a minute ago
        _set_last_seen(db, 90)
        writes.clear()  # that was the test's own write
        for _ in range(5):
            assert client.get("/api/v1/me").status_code == 200
        assert len(writes) == 1
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def test_last_seen_never_waits_for_a_connection_of_the_request_pool(client, db, worlds):  # type: ignore[no-untyped-def]
    """Under load every connection of the request pool can be held by requests; the "last
    seen" write must not need one more of them (it has a small pool of its own)."""
    from rathaus.core.security import _write_apart

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite schreibt über die Schreibsperre der Datei, nicht über einen Pool")
    login(client, "sb")
    engine = db.engine
    with db.session() as session:
        row = session.scalars(select(WebSession)).one()
        held = [engine.connect() for _ in range(engine.pool.size() + engine.pool._max_overflow - 1)]
        try:
            moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
            _write_apart(
                session,
                WebSession.__table__.update()
                .where(WebSession.id == row.id)
                .values(last_seen_at=moment),
            )
        finally:
            for conn in held:
                conn.close()
    with db.session() as session:
        seen = session.scalars(select(WebSession.last_seen_at)).one()
    assert seen.replace(tzinfo=dt.UTC) == moment


def test_idle_timeout_is_a_setting_with_a_german_error():  # type: ignore[no-untyped-def]
    from rathaus.core.errors import ConfigError

    assert load_settings(mode="demo", session_idle_s=900).session_idle_s == 900
    with pytest.raises(ConfigError, match="RATHAUS_SESSION_IDLE_S.*mindestens 300"):
        load_settings(mode="demo", session_idle_s=10)


# -- lock-outs in the audit trail --------------------------------------------------------------


@pytest.fixture
def strict(db, tmp_path):  # type: ignore[no-untyped-def]
    """The app with three failures per account and five per address, on a fixed clock."""
    from rathaus.web.limits import RateLimiter

    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=db.url,
        default_tenant="alpha",
        queue={"backend": "memory"},
        limits={"login_failures_per_account": 3, "login_failures_per_minute": 5},
    )
    app = create_app(settings, database=db)
    app.state.rate_limiter = RateLimiter(db.engine, "geheim", clock=lambda: 1_800_000_030.0)
    return app


def test_lockouts_are_audited_without_password_or_plain_account_name(strict, db, worlds):  # type: ignore[no-untyped-def]
    with TestClient(strict, follow_redirects=False) as c:
        for _ in range(3):
            assert login(c, "sb", password="falsches-passwort-123").status_code == 401
        assert login(c, "sb").status_code == 429  # locked, even with the right password
        for _ in range(2):  # a made-up name: the address's fifth failure locks the address
            assert login(c, "erfunden.person", password="falsches-passwort-123").status_code == 401
    with db.session() as session:
        sb = session.scalar(select(User).where(User.username == "sb"))
        alpha = sb.tenant_id
        locked = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.kind == "login_locked").order_by(AuditEvent.id)
            )
        )
    assert [(e.subject, e.data["sperre"], e.tenant_id) for e in locked[:1]] == [
        (f"user:{sb.id}", "konto", alpha)
    ]
    assert len(locked) == 2 and locked[1].data["sperre"] == "adresse"
    assert locked[1].subject.startswith("adresse:") and "testclient" not in locked[1].subject
    assert locked[0].data["sekunden"] > 0 and locked[0].actor == "anmeldeschutz"
    dumped = " ".join(f"{e.actor} {e.subject} {e.data}" for e in locked)
    assert "falsches-passwort" not in dumped and "erfunden" not in dumped and PASSWORD not in dumped


# -- own sessions (ASVS 3.3.4) ---------------------------------------------------------------


def _labels(page: str) -> list[str]:
    return re.findall(r'name="sitzung" value="([0-9a-f]{8})"', page)


def test_own_sessions_are_listed_and_ended_but_never_anyone_elses(app, client, db, worlds):  # type: ignore[no-untyped-def]
    from rathaus.core.security import session_label

    login(client, "sb")
    with (
        TestClient(app, follow_redirects=False, headers={"User-Agent": "Firefox/128.0"}) as phone,
        TestClient(app, follow_redirects=False) as colleague,
    ):
        login(phone, "sb")
        login(colleague, "leitung")
        page = client.get("/konto/sitzungen")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        labels = _labels(page.text)
        assert len(labels) == 2 and "(diese Sitzung)" in page.text and "Firefox 128" in page.text
        with db.session() as session:
            rows = list(session.scalars(select(WebSession)))
        for row in rows:  # neither the token nor its hash nor the CSRF token is shown
            assert row.token_hash not in page.text and row.token_hash[:8] not in page.text
        for token in (_token(client), _token(phone), _token(colleague)):
            assert token not in page.text
        colleagues = next(session_label(r) for r in rows if r.user_id != rows[0].user_id)
        assert colleagues not in labels

        # Another person's session cannot be ended, even with its label.
        csrf = csrf_of(client)
        refused = client.post(
            "/konto/sitzungen/abmelden", data={"csrf_token": csrf, "sitzung": colleagues}
        )
        assert refused.headers["location"].endswith("meldung=unbekannt")
        assert colleague.get("/api/v1/me").status_code == 200
        # Without the CSRF token nothing ends.
        assert client.post("/konto/sitzungen/andere-abmelden").status_code == 403
        assert phone.get("/api/v1/me").status_code == 200

        phones = next(label for label in labels if label != _labels(page.text)[0])
        ended = client.post(
            "/konto/sitzungen/abmelden", data={"csrf_token": csrf, "sitzung": phones}
        )
        assert ended.headers["location"].endswith("meldung=beendet")
        assert phone.get("/api/v1/me").status_code == 401
        assert client.get("/api/v1/me").status_code == 200

        login(phone, "sb")
        others = client.post("/konto/sitzungen/andere-abmelden", data={"csrf_token": csrf})
        assert others.headers["location"].endswith("meldung=andere")
        assert phone.get("/api/v1/me").status_code == 401
        assert colleague.get("/api/v1/me").status_code == 200  # another person: untouched
        assert client.get("/api/v1/me").status_code == 200

        own = _labels(client.get("/konto/sitzungen").text)
        assert len(own) == 1
        out = client.post("/konto/sitzungen/abmelden", data={"csrf_token": csrf, "sitzung": own[0]})
        assert out.headers["location"] == "/login"
        assert client.get("/api/v1/me").status_code == 401
    with db.session() as session:
        kinds = list(session.scalars(select(AuditEvent.kind)))
    assert kinds.count("session_ended") == 2 and kinds.count("sessions_ended_others") == 1


def test_browser_names_are_shortened():  # type: ignore[no-untyped-def]
    from rathaus.web.account_sessions import short_agent

    chrome = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    )
    assert short_agent(chrome) == "Chrome 131 unter Linux"
    assert short_agent("") == "unbekannter Browser"
    assert short_agent("curl/8.5.0") == "curl/8.5.0"
    assert short_agent("x" * 300) == "x" * 60 + "…"
