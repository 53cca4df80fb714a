"""The own second factor (TOTP) of password logins, through the real app on SQLite and
PostgreSQL: enrolment, the login's second step, wrong and replayed codes, the ±1 step window,
recovery codes, the lock-out, renewing and switching off, the administration's reset."""

from __future__ import annotations

import base64
import html
import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from rathaus.core import second_factor, totp
from rathaus.core.models import (
    AuditEvent,
    LoginChallenge,
    RecoveryCode,
    SecondFactor,
    Tenant,
    User,
)
from rathaus.core.security import SESSION_COOKIE
from rathaus.web.second_factor_login import CHALLENGE_COOKIE
from tests.factories import PASSWORD
from tests.web.conftest import csrf_of, demo_app, login

KEY = re.compile(r'id="zf-schluessel">([A-Z2-7 ]+)<')
RECOVERY = re.compile(r"<li><code>([A-Z2-9]{5}-[A-Z2-9]{5})</code></li>")
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def key_on(page: str) -> bytes:
    """The secret shown on an enrolment page."""
    return base64.b32decode(KEY.search(page).group(1).replace(" ", ""))


def code_for(secret: bytes, offset: int = 0) -> str:
    """The code of the current 30-second step plus ``offset`` steps."""
    return totp.hotp(secret, totp.step_at(time.time()) + offset)


def enrol(client: TestClient) -> tuple[bytes, list[str]]:
    """Set up the signed-in person's factor on /konto/zweiter-faktor: its secret and the
    recovery codes shown once. The code of the current step is used up by that."""
    page = client.get("/konto/zweiter-faktor")
    assert page.status_code == 200
    secret = key_on(page.text)
    done = client.post(
        "/konto/zweiter-faktor", data={"code": code_for(secret), "csrf_token": csrf_of(client)}
    )
    assert done.status_code == 200, done.text
    codes = RECOVERY.findall(done.text)
    assert len(codes) == 10
    return secret, codes


def wrong_codes(secret: bytes, count: int = 1) -> list[str]:
    """Six-digit codes that are none of the codes near the current step."""
    window = {code_for(secret, offset) for offset in range(-2, 4)}
    return [f"{n:06d}" for n in range(100) if f"{n:06d}" not in window][:count]


def send_code(client: TestClient, code: str):  # type: ignore[no-untyped-def]
    page = client.get("/login/zweiter-faktor")
    assert page.status_code == 200, page.headers.get("location")
    token = FORM_TOKEN.search(page.text).group(1)
    return client.post("/login/zweiter-faktor", data={"code": code, "csrf_token": token})


def events(db, kind: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.kind == kind)))


def user_id(db, username: str) -> int:  # type: ignore[no-untyped-def]
    """The id of ``username`` in Stadt Alpha (Beta has the same names)."""
    with db.session() as session:
        return session.scalar(
            select(User.id).join(Tenant).where(User.username == username, Tenant.slug == "alpha")
        )


def factor_of(db, username: str) -> SecondFactor | None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return second_factor.get(session, user_id=user_id(db, username))


@pytest.fixture
def enrolled(app, db, worlds):  # type: ignore[no-untyped-def]
    """sb with an active factor: (secret, recovery codes); sb is signed out again."""
    with TestClient(app, follow_redirects=False) as c:
        assert login(c, "sb").status_code == 303
        return enrol(c)


def test_enrolment_shows_a_key_and_activates_only_with_a_code(client, db, worlds):  # type: ignore[no-untyped-def]
    login(client, "sb")
    page = client.get("/konto/zweiter-faktor")
    text = html.unescape(page.text)
    secret = key_on(page.text)
    assert len(secret) == 20
    assert "otpauth://totp/Rathaus%20Stadt%20Alpha:sb?secret=" + totp.to_base32(secret) in text
    assert "issuer=Rathaus%20Stadt%20Alpha" in text and "manuell eingeben" in text
    assert key_on(client.get("/konto/zweiter-faktor").text) == secret  # a reload: same key
    factor = factor_of(db, "sb")
    assert factor is not None and factor.enabled_at is None

    wrong = client.post(
        "/konto/zweiter-faktor", data={"code": "12345", "csrf_token": csrf_of(client)}
    )
    assert wrong.status_code == 422 and "passt nicht" in html.unescape(wrong.text)
    assert factor_of(db, "sb").enabled_at is None

    done = client.post(
        "/konto/zweiter-faktor", data={"code": code_for(secret), "csrf_token": csrf_of(client)}
    )
    assert done.status_code == 200
    codes = RECOVERY.findall(done.text)
    assert len(set(codes)) == 10 and "nur jetzt" in done.text
    factor = factor_of(db, "sb")
    assert factor.enabled_at is not None and factor.pending_sealed is None
    # Encrypted at rest: neither the key nor the recovery codes are in the database.
    with db.session() as session:
        stored = [factor.secret_sealed or ""] + [
            f"{r.salt} {r.code_hash}" for r in session.scalars(select(RecoveryCode))
        ]
    dump = " ".join(stored)
    assert totp.to_base32(secret) not in dump and secret.hex() not in dump
    assert not any(code.replace("-", "") in dump for code in codes)
    assert second_factor.unseal("x" * 40, factor.secret_sealed) is None  # another key: nothing
    [event] = events(db, "second_factor_enrolled")
    assert event.actor == "sb" and event.data == {"erneuert": False, "wiederherstellungscodes": 10}
    status = client.get("/konto/zweiter-faktor").text
    assert "eingerichtet" in status and "zf-schluessel" not in status


def test_login_with_a_code_completes_only_after_the_second_step(app, db, enrolled):  # type: ignore[no-untyped-def]
    secret, _ = enrolled
    with TestClient(app, follow_redirects=False) as c:
        first = login(c, "sb")
        assert first.status_code == 303 and first.headers["location"] == "/login/zweiter-faktor"
        assert SESSION_COOKIE not in c.cookies and CHALLENGE_COOKIE in c.cookies
        assert "httponly" in first.headers["set-cookie"].lower()
        assert c.get("/vorgaenge").headers["location"].startswith("/login")  # no session yet
        page = c.get("/login/zweiter-faktor")
        assert page.status_code == 200 and 'autocomplete="one-time-code"' in page.text
        done = send_code(c, code_for(secret, 1))
        assert done.status_code == 303 and done.headers["location"] == "/"
        assert SESSION_COOKIE in c.cookies and c.get("/vorgaenge").status_code == 200
        # One use: the unfinished login is gone, its cookie leads back to the login.
        again = c.get("/login/zweiter-faktor")
        assert again.headers["location"] == "/login?grund=zweiter-faktor"
    with db.session() as session:
        assert session.scalars(select(LoginChallenge)).all() == []
    assert [e.actor for e in events(db, "second_factor_ok")] == ["sb"]
    assert [e.actor for e in events(db, "login")].count("sb") == 2  # enrolment's and this one


def test_a_wrong_code_is_refused_and_audited_without_the_code(app, db, enrolled):  # type: ignore[no-untyped-def]
    secret, _ = enrolled
    [wrong] = wrong_codes(secret)
    with TestClient(app, follow_redirects=False) as c:
        login(c, "sb")
        refused = send_code(c, wrong)
        assert refused.status_code == 401 and SESSION_COOKIE not in c.cookies
        assert "Der Code ist falsch oder abgelaufen" in html.unescape(refused.text)
        malformed = send_code(c, "12ab")
        assert malformed.status_code == 422 and "sechsstelligen" in malformed.text
        assert send_code(c, code_for(secret, 1)).status_code == 303  # the right one still works
    [event] = events(db, "second_factor_failed")
    assert event.actor == "sb" and event.data["grund"] == "falsch"
    assert event.data["schritt"] == "anmeldung"
    with db.session() as session:
        rows = session.scalars(select(AuditEvent)).all()
        assert all(wrong not in f"{r.subject} {r.data}" for r in rows)


def test_a_code_counts_once_replay_is_refused(app, db, enrolled):  # type: ignore[no-untyped-def]
    secret, _ = enrolled
    code = code_for(secret, 1)
    with TestClient(app, follow_redirects=False) as c:
        login(c, "sb")
        assert send_code(c, code).status_code == 303
    with TestClient(app, follow_redirects=False) as other:
        login(other, "sb")
        replay = send_code(other, code)
        assert replay.status_code == 401 and "schon verwendet" in html.unescape(replay.text)
        assert SESSION_COOKIE not in other.cookies
        # An earlier step than the last one used is no good either.
        assert send_code(other, code_for(secret, 0)).status_code == 401
    assert [e.data["grund"] for e in events(db, "second_factor_failed")] == [
        "schon_verwendet",
        "schon_verwendet",
    ]


def test_one_step_before_and_after_are_accepted_two_are_not(app, db, enrolled):  # type: ignore[no-untyped-def]
    secret, _ = enrolled
    with db.session() as session:
        session.execute(update(SecondFactor).values(last_used_step=None))
    for offset, status in ((2, 401), (-2, 401), (-1, 303)):
        with TestClient(app, follow_redirects=False) as c:
            login(c, "sb")
            assert send_code(c, code_for(secret, offset)).status_code == status, offset
    with TestClient(app, follow_redirects=False) as c:
        login(c, "sb")
        assert send_code(c, code_for(secret, 1)).status_code == 303


def test_a_recovery_code_works_once(app, db, enrolled):  # type: ignore[no-untyped-def]
    _, codes = enrolled
    with TestClient(app, follow_redirects=False) as c:
        login(c, "sb")
        done = send_code(c, codes[3].lower().replace("-", " "))  # as typed by hand
        assert done.status_code == 303
        assert done.headers["location"] == "/konto/zweiter-faktor?meldung=wiederherstellungscode"
        page = html.unescape(c.get(done.headers["location"]).text)
        assert "mit einem Wiederherstellungscode angemeldet" in page
        assert "<strong>9</strong> von 10" in page
    with TestClient(app, follow_redirects=False) as c:
        login(c, "sb")
        assert send_code(c, codes[3]).status_code == 401
        assert send_code(c, codes[4]).status_code == 303
    [first, second] = events(db, "second_factor_recovery_used")
    assert (first.data["verbleibend"], second.data["verbleibend"]) == (9, 8)
    assert all(codes[3] not in str(e.data) for e in events(db, "second_factor_failed"))


def test_wrong_codes_lock_the_account_like_wrong_passwords(db, tmp_path, worlds):  # type: ignore[no-untyped-def]
    app = demo_app(db, tmp_path, limits={"login_failures_per_account": 3})
    with TestClient(app, follow_redirects=False) as c:
        login(c, "sb")
        secret, _ = enrol(c)
    with TestClient(app, follow_redirects=False) as c:
        assert login(c, "sb").headers["location"] == "/login/zweiter-faktor"
        codes = [send_code(c, code).status_code for code in wrong_codes(secret, 3)]
        assert codes == [401, 401, 401]
        blocked = send_code(c, code_for(secret, 1))  # now even the right code is not checked
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
        assert "Zu viele fehlgeschlagene Anmeldeversuche" in blocked.text
        assert SESSION_COOKIE not in c.cookies
        assert login(c, "sb").status_code == 429  # and the password login is locked as well
    sb = worlds["a"].users["sb"]
    assert [e.subject for e in events(db, "login_locked")] == [f"user:{sb.id}"]


def test_ten_wrong_codes_in_a_row_stop_app_codes_until_a_recovery_code(db, tmp_path, worlds):  # type: ignore[no-untyped-def]
    """Even spread over time (the lock-out above ends), a six-digit code is guessed at most
    MAX_FAILURES times: then only a recovery code or the administration's reset helps."""
    limits = {"login_failures_per_account": 1000, "login_failures_per_minute": 1000}
    app = demo_app(db, tmp_path, limits=limits)
    with TestClient(app, follow_redirects=False) as c:
        login(c, "sb")
        secret, codes = enrol(c)
    with TestClient(app, follow_redirects=False) as c:
        login(c, "sb")
        for code in wrong_codes(secret, second_factor.MAX_FAILURES):
            assert send_code(c, code).status_code == 401
        locked = send_code(c, code_for(secret, 1))
        assert locked.status_code == 401 and "Wiederherstellungscodes" in locked.text
        assert factor_of(db, "sb").failed_attempts == second_factor.MAX_FAILURES
        assert send_code(c, codes[0]).status_code == 303  # a recovery code still works
    assert factor_of(db, "sb").failed_attempts == 0
    with TestClient(app, follow_redirects=False) as c:
        login(c, "sb")
        assert send_code(c, code_for(secret, 1)).status_code == 303
    reasons = [e.data["grund"] for e in events(db, "second_factor_failed")]
    assert reasons[-1] == "zu_viele_fehlversuche"


def test_the_unfinished_login_is_short_lived_and_bound_to_its_browser(app, db, enrolled):  # type: ignore[no-untyped-def]
    secret, _ = enrolled
    with TestClient(app, follow_redirects=False) as c:
        login(c, "sb")
        page = c.get("/login/zweiter-faktor")
        forged = c.post(
            "/login/zweiter-faktor", data={"code": code_for(secret, 1), "csrf_token": "x"}
        )
        assert forged.status_code == 403 and SESSION_COOKIE not in c.cookies
        token = FORM_TOKEN.search(page.text).group(1)
        with TestClient(app, follow_redirects=False) as stranger:  # no cookie: nothing
            sent = stranger.post(
                "/login/zweiter-faktor", data={"code": code_for(secret, 1), "csrf_token": token}
            )
            assert sent.headers["location"] == "/login?grund=zweiter-faktor"
        with db.session() as session:
            [row] = session.scalars(select(LoginChallenge)).all()
            assert (row.expires_at - row.created_at).total_seconds() == 300
            session.execute(update(LoginChallenge).values(expires_at=row.created_at))
        late = c.post(
            "/login/zweiter-faktor", data={"code": code_for(secret, 1), "csrf_token": token}
        )
        assert late.status_code == 303 and late.headers["location"] == "/login?grund=zweiter-faktor"
        notice = c.get(late.headers["location"]).text
        assert "nicht rechtzeitig abgeschlossen" in notice
        assert SESSION_COOKIE not in c.cookies


def test_renewing_and_switching_off_need_password_and_code(client, db, worlds):  # type: ignore[no-untyped-def]
    login(client, "sb")
    secret, _ = enrol(client)
    token = csrf_of(client)
    no_password = client.post(
        "/konto/zweiter-faktor/neu", data={"code": code_for(secret, 1), "csrf_token": token}
    )
    assert no_password.status_code == 401 and "mit Ihrem Passwort" in no_password.text
    wrong_code = client.post(
        "/konto/zweiter-faktor/neu",
        data={"code": wrong_codes(secret)[0], "passwort": PASSWORD, "csrf_token": token},
    )
    assert wrong_code.status_code == 401 and "Der Code ist falsch" in html.unescape(wrong_code.text)
    renewed = client.post(
        "/konto/zweiter-faktor/neu",
        data={"code": code_for(secret, 1), "passwort": PASSWORD, "csrf_token": token},
    )
    assert renewed.status_code == 303 and renewed.headers["location"].endswith("meldung=neu")
    page = client.get(renewed.headers["location"]).text
    new_secret = key_on(page)
    assert new_secret != secret and "bisheriger zweiter Faktor gilt weiter" in page
    confirmed = client.post(
        "/konto/zweiter-faktor", data={"code": code_for(new_secret), "csrf_token": token}
    )
    assert confirmed.status_code == 200 and len(RECOVERY.findall(confirmed.text)) == 10
    assert events(db, "second_factor_enrolled")[-1].data["erneuert"] is True

    # Switching off: within five minutes of the password, the code alone is asked again.
    off = client.post(
        "/konto/zweiter-faktor/abschalten",
        data={"code": code_for(new_secret, 1), "csrf_token": token},
    )
    assert off.status_code == 303 and off.headers["location"].endswith("meldung=abgeschaltet")
    assert factor_of(db, "sb") is None
    with db.session() as session:
        assert session.scalars(select(RecoveryCode)).all() == []
    assert [e.actor for e in events(db, "second_factor_disabled")] == ["sb"]
    client.cookies.clear()
    assert login(client, "sb").headers["location"] == "/"  # the password alone again


def test_the_administration_resets_a_lost_factor_on_the_command_line(app, db, tmp_path, enrolled):  # type: ignore[no-untyped-def]
    from tests.test_cli import in_process

    secret, _ = enrolled
    with TestClient(app, follow_redirects=False) as c:
        login(c, "sb")
        assert send_code(c, code_for(secret, 1)).status_code == 303
        cli = in_process(tmp_path, db)
        result = cli("users", "zweiter-faktor-zuruecksetzen", "sb")
        assert result.exit_code == 0, result.output
        assert "Zweiter Faktor zurückgesetzt: sb" in result.output
        assert c.get("/vorgaenge").headers["location"].startswith("/login")  # session ended
    assert factor_of(db, "sb") is None
    [event] = events(db, "second_factor_reset")
    sb = user_id(db, "sb")
    assert (event.actor, event.subject, event.data) == ("cli", f"user:{sb}", {"war_aktiv": True})
    with TestClient(app, follow_redirects=False) as c:
        assert login(c, "sb").headers["location"] == "/"  # no factor: the password alone
    unknown = cli("users", "zweiter-faktor-zuruecksetzen", "niemand")
    assert unknown.exit_code == 1 and "gibt es in „alpha“ nicht" in str(unknown.exception)


def test_an_account_without_password_has_nothing_to_set_up(client, db, worlds):  # type: ignore[no-untyped-def]
    """Single sign-on only: the provider's factor applies, the page offers no key."""
    from tests.web.conftest import signed_in_without_password

    token = signed_in_without_password(client, db, "sb")
    page = client.get("/konto/zweiter-faktor")
    assert page.status_code == 200 and "zweite Faktor des Anmeldedienstes" in page.text
    assert "zf-schluessel" not in page.text
    sent = client.post("/konto/zweiter-faktor", data={"code": "123456", "csrf_token": token})
    assert sent.status_code == 400 and factor_of(db, "sb") is None
