"""Requests per window on every public endpoint: 429 with a German text and ``Retry-After``,
counted once for the whole installation (several processes, SQLite and PostgreSQL), and the
length limits of public free text (questions, Open311 descriptions)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from rathaus.core import apikeys
from rathaus.core.config import load_settings
from rathaus.core.models import Case, Service
from rathaus.governance.quota import shared_engine
from rathaus.web.app import create_app
from rathaus.web.limits import RateLimiter, Rule, seconds_text
from tests.factories import PASSWORD
from tests.web.conftest import login

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_030.0  # 30 seconds into a minute: a refusal waits 30 seconds
ADDRESS = "203.0.113.5"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited(db, tmp_path, clock):  # type: ignore[no-untyped-def]
    """The app with small limits and the installation's shared counter on a fixed clock."""
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=db.url,
        default_tenant="alpha",
        queue={"backend": "memory"},
        assistant={"rate_limit_per_minute": 2},
        limits={
            "open311_per_minute": 3,
            "login_failures_per_minute": 4,
            "login_failures_per_account": 3,
            "login_lock_minutes": 15,
            "api_per_minute": 3,
        },
    )
    app = create_app(settings, database=db)
    app.state.rate_limiter = RateLimiter(db.engine, "geheim", clock=clock)
    return app


def _client(app, address: str = ADDRESS) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app, follow_redirects=False, client=(address, 50000))


def _refused_in_german(response, seconds: int = 30) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 429
    assert response.headers["retry-after"] == str(seconds)
    text = (
        response.json()["detail"] if "json" in response.headers["content-type"] else response.text
    )
    assert f" {seconds_text(seconds)} " in text  # "Bitte warten Sie 30 Sekunden …"


# -- the limiter --------------------------------------------------------------------------------


def test_counts_per_client_and_window_and_stores_no_address(db, clock):  # type: ignore[no-untyped-def]
    limiter = RateLimiter(db.engine, "geheim", clock=clock)
    assert limiter.shared  # PostgreSQL itself, or the sidecar file of the SQLite file
    rule = Rule("probe", 3)
    assert [limiter.hit(rule, ADDRESS) for _ in range(4)] == [0, 0, 0, 30]
    assert limiter.hit(rule, "198.51.100.7") == 0  # another client has its own count
    assert limiter.hit(Rule("andere", 3), ADDRESS) == 0  # and another rule
    clock.now += 30  # the next minute
    assert limiter.hit(rule, ADDRESS) == 0
    assert limiter.counter is not None
    with limiter.counter.engine.connect() as conn:
        rows = conn.execute(select(limiter.counter.table)).all()
    assert rows and all(isinstance(row.bucket, int) for row in rows)
    assert ADDRESS not in repr(rows)  # a keyed hash, not the address


def test_failures_are_counted_and_looked_at_apart(db, clock):  # type: ignore[no-untyped-def]
    limiter = RateLimiter(db.engine, "geheim", clock=clock)
    rule = Rule("fehlversuch", 2, window_min=15)
    assert limiter.wait(rule, "konto") == 0
    assert limiter.record(rule, "konto") == 0
    assert limiter.record(rule, "konto") == 15 * 60 - 30  # to the end of the 15 minutes
    assert limiter.wait(rule, "konto") == 15 * 60 - 30
    assert limiter.record(rule, "konto") > 0  # counting goes on past the limit


def test_without_a_shared_counter_this_process_still_limits():
    for engine in (create_engine("sqlite://"), None):
        limiter = RateLimiter(engine, "geheim")
        assert not limiter.shared
        rule = Rule("probe", 2)
        assert [limiter.hit(rule, ADDRESS) > 0 for _ in range(3)] == [False, False, True]


def test_a_counter_that_cannot_be_reached_falls_back_to_this_process():
    engine = create_engine(
        "postgresql+psycopg://niemand@127.0.0.1:1/weg", connect_args={"connect_timeout": 1}
    )
    limiter = RateLimiter(engine, "geheim")
    assert limiter.shared  # configured, but down
    rule = Rule("probe", 2)
    assert [limiter.hit(rule, ADDRESS) > 0 for _ in range(3)] == [False, False, True]


def test_counters_hold_across_processes(db, tmp_path, worlds):  # type: ignore[no-untyped-def]
    """Three real processes, each its own app, 12 Open311 requests each from one address with
    20 per minute allowed: exactly 20 get through, on SQLite and PostgreSQL."""
    assert shared_engine(db.engine) is not None
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RATHAUS_")}
    args = [db.url, str(tmp_path), "12", str(NOW)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.hardening.rate_worker", *args],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
        results.append(tuple(int(n) for n in out.split()))
    assert sum(a for a, _ in results) == 20 and sum(r for _, r in results) == 16


# -- the public endpoints ----------------------------------------------------------------------


def test_assistant_api_page_and_widget_share_one_count(limited, worlds):  # type: ignore[no-untyped-def]
    with _client(limited) as client:
        assert client.post("/api/v1/assistant/ask", json={"question": ""}).status_code == 422
        assert client.post("/assistent", data={"question": ""}).status_code == 422
        refused = client.post("/assistent/einbetten", data={"question": "Was kostet ein Pass?"})
        _refused_in_german(refused)
        assert "Was kostet ein Pass?" in refused.text  # the question is kept in the form
        _refused_in_german(client.post("/api/v1/assistant/ask", json={"question": "Pass?"}))
        # feedback and hand-over have a count of their own
        other = client.post(
            "/api/v1/assistant/feedback", json={"conversation_id": "x", "turn_id": 1, "value": 1}
        )
        assert other.status_code == 404
    with _client(limited, "198.51.100.7") as other_client:
        assert other_client.post("/api/v1/assistant/ask", json={"question": ""}).status_code == 422


@pytest.fixture
def open311_key(db, worlds):  # type: ignore[no-untyped-def]
    with db.session() as session:
        a = worlds["a"].tenant
        key, _ = apikeys.create(session, tenant=a, channel="open311", name="App")
        session.add(
            Service(
                tenant_id=a.id,
                code="laerm",
                name="Lärmbelästigung melden",
                org_unit_id=worlds["a"].units["OA"].id,
                open311_enabled=True,
            )
        )
    return key


def test_open311_reads_and_reports_count_per_address(limited, open311_key):  # type: ignore[no-untyped-def]
    report = {
        "api_key": open311_key,
        "service_code": "laerm",
        "address_string": "Hauptstraße 5",
        "description": "Laute Musik jede Nacht",
    }
    with _client(limited) as client:
        assert client.get("/open311/v2/services.json").status_code == 200
        assert client.post("/open311/v2/requests.json", data=report).status_code == 201
        assert client.get("/open311/v2/requests.xml").status_code == 200
        _refused_in_german(client.post("/open311/v2/requests.json", data=report))
        _refused_in_german(client.get("/open311/v2/services.xml"))
    with _client(limited, "198.51.100.7") as client:
        assert client.get("/open311/v2/services.json").status_code == 200


def test_open311_description_over_its_limit_is_refused_in_german(app, open311_key, db):  # type: ignore[no-untyped-def]
    report = {
        "api_key": open311_key,
        "service_code": "laerm",
        "address_string": "Hauptstraße 5",
        "description": "x" * 4001,
    }
    with TestClient(app) as client:
        response = client.post("/open311/v2/requests.json", data=report)
    assert response.status_code == 400
    assert (
        response.json()[0]["description"] == "„description“ ist zu lang (höchstens 4000 Zeichen)."
    )
    with db.session() as session:
        assert session.scalar(select(Case.id).where(Case.channel == "open311")) is None


def _try_login(client: TestClient, username: str, password: str):  # type: ignore[no-untyped-def]
    return login(client, username, password=password)


def test_failed_logins_lock_the_address_and_the_account(limited, worlds, clock):  # type: ignore[no-untyped-def]
    with _client(limited) as client:
        for _ in range(3):
            assert _try_login(client, "sb", "falsch").status_code == 401
        # the account's third failure locks it, also from another address and with the
        # right password: no password is checked while it is locked
        with _client(limited, "198.51.100.7") as elsewhere:
            locked = _try_login(elsewhere, "sb", PASSWORD)
            _refused_in_german(locked, 15 * 60 - 30)
            assert "Zu viele fehlgeschlagene Anmeldeversuche" in locked.text
            assert "wenden Sie sich an die Administration" in locked.text
            assert "rathaus_session" not in locked.cookies
            # another account from there is not locked
            assert _try_login(elsewhere, "leitung", PASSWORD).status_code == 303
        # the address: its fourth failure (another account) locks it for the rest of the minute
        assert _try_login(client, "leitung", "falsch").status_code == 401
        _refused_in_german(_try_login(client, "admin", PASSWORD))
        clock.now += 30
        assert _try_login(client, "admin", PASSWORD).status_code == 303
        client.cookies.clear()
        clock.now += 15 * 60
        assert _try_login(client, "sb", PASSWORD).status_code == 303


def test_successful_logins_do_not_count(limited, worlds):  # type: ignore[no-untyped-def]
    with _client(limited) as client:
        for _ in range(6):
            assert _try_login(client, "leitung", PASSWORD).status_code == 303
            client.cookies.clear()


@pytest.fixture
def api_keys(db, worlds):  # type: ignore[no-untyped-def]
    with db.session() as session:
        a = worlds["a"].tenant
        first, _ = apikeys.create(session, tenant=a, channel="api", name="Fachverfahren")
        second, _ = apikeys.create(session, tenant=a, channel="api", name="Zweites Verfahren")
    return first, second


def test_the_inbox_api_counts_per_key_and_guessed_keys_per_address(limited, api_keys):  # type: ignore[no-untyped-def]
    first, second = api_keys
    item = {"text": "Die Straßenlaterne vor Hausnummer 12 ist seit einer Woche dunkel."}
    with _client(limited) as client:
        created = client.post("/api/v1/inbox/items", json=item, headers={"X-API-Key": first})
        assert created.status_code == 201
        status_url = created.json()[0]["status_url"]
        assert client.get(status_url, headers={"X-API-Key": first}).status_code == 200
        assert client.get(status_url, headers={"X-API-Key": first}).status_code == 200
        _refused_in_german(
            client.post("/api/v1/inbox/items", json=item, headers={"X-API-Key": first})
        )
        _refused_in_german(client.get(status_url, headers={"X-API-Key": first}))
        assert client.get(status_url, headers={"X-API-Key": second}).status_code == 200
    with _client(limited, "198.51.100.7") as guesser:
        for n in range(3):
            wrong = guesser.post("/api/v1/inbox/items", json=item, headers={"X-API-Key": f"rh_{n}"})
            assert wrong.status_code == 401
        _refused_in_german(
            guesser.post("/api/v1/inbox/items", json=item, headers={"X-API-Key": "rh_x"})
        )


def test_question_length_on_api_and_page(app, worlds):  # type: ignore[no-untyped-def]
    """``assistant.max_question_chars`` (1000): one more is a German 422 on the API and on the
    page, where the question stays in the form."""
    long = "Wie " + "lange " * 200
    with TestClient(app) as client:
        api = client.post("/api/v1/assistant/ask", json={"question": long})
        assert api.status_code == 422
        assert (
            "zu lang. Bitte fassen Sie sie in höchstens 1.000 Zeichen zusammen"
            in api.json()["detail"]
        )
        page = client.post("/assistent", data={"question": long})
        assert page.status_code == 422
        assert "höchstens 1.000 Zeichen" in page.text and "lange lange" in page.text


@pytest.mark.postgres
def test_counting_never_waits_for_a_connection_of_the_request_pool(migrated_pg):  # type: ignore[no-untyped-def]
    """Under load every connection of a web process's pool can be held by requests that are
    about to count. The counter must not need one of them (it has a small pool of its own):
    here the whole request pool is checked out, and counting still reaches PostgreSQL."""
    from rathaus.core.models import RateLimitUsage

    engine = migrated_pg.engine
    limiter = RateLimiter(engine, "geheim")
    held = [engine.connect() for _ in range(engine.pool.size() + engine.pool._max_overflow)]
    try:
        rule = Rule("voller-pool", 5)
        assert [limiter.hit(rule, ADDRESS) for _ in range(2)] == [0, 0]
    finally:
        for conn in held:
            conn.close()
    with migrated_pg.session() as session:
        rows = session.scalars(select(RateLimitUsage)).all()
    assert sum(row.requests for row in rows) == 2  # counted in the database, not per process
