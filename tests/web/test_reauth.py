"""Re-authentication before critical actions (ASVS 3.7.1): the DSGVO erasure, executing the
retention rules and the Bankverbindung need the password once more; the confirmation holds five
minutes for this session only, failures are audited and count toward the login's lock-out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rathaus.core.models import AuditEvent, Case
from rathaus.core.storage import OriginalStore
from rathaus.web import reauth
from rathaus.writing import bank
from tests.factories import PASSWORD
from tests.governance.test_retention import make_case
from tests.web.conftest import csrf_of, demo_app, login, signed_in_without_password

BASE = "/governance/datenschutz"
ERIKA = {"name": "Erika Beispiel", "email": "erika.beispiel@example.org"}
IBAN = "DE89 3704 0044 0532 0130 00"


@pytest.fixture
def app(db, tmp_path):  # type: ignore[no-untyped-def]
    return demo_app(
        db,
        tmp_path,
        limits={"login_failures_per_account": 3, "login_failures_per_minute": 50},
    )


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _erika(app, db, worlds) -> int:  # type: ignore[no-untyped-def]
    store = OriginalStore(app.state.settings.originals_dir)
    with db.session() as session:
        return make_case(session, worlds["a"], store, reference="ALP-W-1").id


def _case_exists(db, case_id: int) -> bool:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.get(Case, case_id) is not None


def _events(db, kind: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.kind == kind))
        return [session.merge(r) for r in rows]


def _erase(client, token: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"{BASE}/loeschung", data={"csrf_token": token, **ERIKA, "bestaetigen": "1", **extra}
    )


def test_erasure_needs_the_password_and_keeps_the_form(app, client, db, worlds):
    case_id = _erika(app, db, worlds)
    login(client, "dsb")
    token = csrf_of(client)
    plan = client.post(f"{BASE}/loeschung", data={"csrf_token": token, **ERIKA})
    assert 'name="passwort"' in plan.text and 'autocomplete="current-password"' in plan.text
    assert '<label for="loeschung-passwort">' in plan.text

    missing = _erase(client, token)
    assert missing.status_code == 401 and reauth.MISSING in missing.text
    assert _case_exists(db, case_id)
    # The plan and the person's data are still there, the error is tied to the field.
    assert "Probelauf – nichts gelöscht" in missing.text
    assert 'value="erika.beispiel@example.org"' in missing.text
    assert 'aria-describedby="loeschung-passwort-hinweis loeschung-passwort-fehler"' in (
        missing.text
    )
    assert 'id="loeschung-passwort-fehler"' in missing.text

    wrong = _erase(client, token, passwort="falsch-falsch-falsch")
    assert wrong.status_code == 401 and reauth.WRONG in wrong.text
    assert _case_exists(db, case_id)
    failed = _events(db, "reauth_failed")
    assert [(e.actor, e.subject, e.data["grund"]) for e in failed] == [
        ("dsb", "dsgvo_loeschung", "passwort_falsch")
    ]
    assert "falsch-falsch" not in str(failed[0].data)
    assert reauth.MARK_COOKIE not in wrong.headers.get("set-cookie", "")

    done = _erase(client, token, passwort=PASSWORD)
    assert done.status_code == 200 and "Löschantrag Nr." in done.text
    assert not _case_exists(db, case_id)
    assert reauth.MARK_COOKIE in done.headers["set-cookie"]
    assert "samesite=strict" in done.headers["set-cookie"].lower()
    ok = _events(db, "reauth_confirmed")
    assert [(e.actor, e.subject) for e in ok] == [("dsb", "dsgvo_loeschung")]


def test_confirmation_holds_five_minutes_for_this_session_only(
    app, client, db, worlds, monkeypatch
):
    _erika(app, db, worlds)
    login(client, "dsb")
    token = csrf_of(client)
    first = client.post(
        f"{BASE}/anwenden", data={"csrf_token": token, "ausfuehren": "1", "passwort": PASSWORD}
    )
    assert first.status_code == 200 and "Erledigt:" in first.text
    # Within the window: no password field, the next critical action goes through without one.
    page = client.get(BASE)
    assert 'name="passwort"' not in page.text
    again = client.post(f"{BASE}/anwenden", data={"csrf_token": token, "ausfuehren": "1"})
    assert again.status_code == 200 and "Erledigt:" in again.text

    now = reauth._now()
    monkeypatch.setattr(reauth, "_now", lambda: now + reauth.WINDOW_S + 1)
    expired = client.post(f"{BASE}/anwenden", data={"csrf_token": token, "ausfuehren": "1"})
    assert expired.status_code == 401 and reauth.MISSING in expired.text
    assert 'name="passwort"' in client.get(BASE).text

    # The mark belongs to its session: after a new login it no longer counts.
    monkeypatch.setattr(reauth, "_now", lambda: now)
    mark = client.cookies.get(reauth.MARK_COOKIE)
    assert mark
    client.cookies.clear()
    login(client, "dsb")
    client.cookies.set(reauth.MARK_COOKIE, mark)
    other = client.post(f"{BASE}/anwenden", data={"csrf_token": csrf_of(client), "ausfuehren": "1"})
    assert other.status_code == 401
    forged = f"{now}.{'0' * 64}"
    client.cookies.set(reauth.MARK_COOKIE, forged)
    assert 'name="passwort"' in client.get(BASE).text


def test_dry_runs_need_no_password(app, client, db, worlds):
    _erika(app, db, worlds)
    login(client, "dsb")
    token = csrf_of(client)
    dry = client.post(f"{BASE}/anwenden", data={"csrf_token": token})
    assert dry.status_code == 200 and "Probelauf – nichts geändert" in dry.text
    plan = client.post(f"{BASE}/loeschung", data={"csrf_token": token, **ERIKA})
    assert plan.status_code == 200 and "Probelauf – nichts gelöscht" in plan.text
    assert _events(db, "reauth_failed") == []


def test_wrong_passwords_lock_the_account_like_the_login(app, client, db, worlds):
    case_id = _erika(app, db, worlds)
    login(client, "dsb")
    token = csrf_of(client)
    for _ in range(3):
        assert _erase(client, token, passwort="nicht-das-richtige").status_code == 401
    locked = _erase(client, token, passwort=PASSWORD)  # even the right one is not checked now
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "gesperrt" in locked.text and _case_exists(db, case_id)
    assert [e.data["sperre"] for e in _events(db, "login_locked")] == ["konto"]
    # The login of the same account is locked as well: the failures added up.
    client.cookies.clear()
    assert login(client, "dsb").status_code == 429


def test_csrf_is_still_enforced(app, client, db, worlds):
    case_id = _erika(app, db, worlds)
    login(client, "dsb")
    refused = client.post(
        f"{BASE}/loeschung", data={**ERIKA, "bestaetigen": "1", "passwort": PASSWORD}
    )
    assert refused.status_code in (400, 403) and _case_exists(db, case_id)
    assert _events(db, "reauth_confirmed") == []


def test_accounts_without_password_are_pointed_to_the_cli(app, client, db, worlds):
    case_id = _erika(app, db, worlds)
    token = signed_in_without_password(client, db, "dsb")
    plan = client.post(f"{BASE}/loeschung", data={"csrf_token": token, **ERIKA})
    assert "Anmeldedienst (SSO)" in plan.text and 'name="passwort"' not in plan.text
    refused = _erase(client, token, passwort=PASSWORD)
    assert refused.status_code == 403 and "rathaus datenschutz loeschen" in refused.text
    assert _case_exists(db, case_id)
    assert [e.data["grund"] for e in _events(db, "reauth_failed")] == ["kein_passwort"]


def test_bank_details_need_the_password(client, db, worlds):
    login(client, "admin")
    token = csrf_of(client)
    form = {"csrf_token": token, "kreditinstitut": "Sparkasse Alpha", "iban": IBAN}
    page = client.get("/system")
    assert '<label for="b-passwort">' in page.text
    missing = client.post("/system/bankverbindung", data=form)
    assert missing.status_code == 401 and reauth.MISSING in missing.text
    assert 'value="Sparkasse Alpha"' in missing.text  # what was typed stays in the form
    wrong = client.post("/system/bankverbindung", data=form | {"passwort": "falsch-geraten"})
    assert wrong.status_code == 401
    with db.session() as session:
        assert bank.get(session, tenant_id=worlds["a"].tenant.id) is None
    saved = client.post("/system/bankverbindung", data=form | {"passwort": PASSWORD})
    assert saved.status_code == 303
    with db.session() as session:
        assert bank.get(session, tenant_id=worlds["a"].tenant.id).institute == "Sparkasse Alpha"
    removed = client.post("/system/bankverbindung", data={"csrf_token": token, "entfernen": "1"})
    assert removed.status_code == 303  # within the five minutes
    with db.session() as session:
        assert bank.get(session, tenant_id=worlds["a"].tenant.id) is None
    assert [e.subject for e in _events(db, "reauth_confirmed")] == ["bankverbindung"]
    assert [e.subject for e in _events(db, "reauth_failed")] == ["bankverbindung"]
