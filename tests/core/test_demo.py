"""The demo loader: Musterstadt's organisation, inbox and a plausible, reproducible case history."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from rathaus.core.cases import TRANSITIONS
from rathaus.core.db import Database
from rathaus.core.demo import demo_credentials, read_demo_file
from rathaus.core.demo.loader import DemoSummary, _SlotValues, german_iban, load_demo
from rathaus.core.errors import RathausError
from rathaus.core.models import (
    Case,
    CaseEvent,
    CaseStatus,
    Message,
    OrgUnit,
    Service,
    Tenant,
    User,
)
from tests.factories import fast_hash

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
BASE = read_demo_file("musterstadt.json")
HISTORY = read_demo_file("historie.json")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive UTC, PostgreSQL aware datetimes; compare them alike."""
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def _iban_ok(iban: str) -> bool:
    compact = iban.replace(" ", "")
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


@pytest.fixture(scope="module")
def incoming_items() -> list[dict]:
    return read_demo_file("eingaenge.json")["items"]


@pytest.fixture
def loaded(db: Database) -> tuple[Database, DemoSummary]:
    return db, load_demo(db, password_hasher=fast_hash, now=NOW)


def _fresh_sqlite(template: Path, tmp_path: Path, name: str) -> Database:
    path = tmp_path / name
    shutil.copy(template, path)
    return Database(f"sqlite:///{path}")


def test_organisation_services_and_staff(loaded):
    db, summary = loaded
    assert 10 <= summary.org_units <= 20
    assert (summary.services, summary.users, summary.incoming) == (40, 5, 60)
    assert str(summary).startswith(
        f"Musterstadt geladen: {summary.org_units} Organisationseinheiten"
    )
    with db.session() as s:
        tenant = s.scalar(select(Tenant).where(Tenant.slug == "musterstadt"))
        units = {
            u.code: u for u in s.scalars(select(OrgUnit).where(OrgUnit.tenant_id == tenant.id))
        }
        assert len(units) == summary.org_units
        by_id = {u.id: u for u in units.values()}
        for row in BASE["org_units"]:
            unit = units[row["code"]]
            assert unit.kind.value == row["kind"]
            assert (by_id[unit.parent_id].code if unit.parent_id else None) == row["parent"]
        services = s.scalars(select(Service).where(Service.tenant_id == tenant.id)).all()
        assert len(services) == 40
        for service in services:
            assert service.leika_key is None or re.fullmatch(r"\d{14}", service.leika_key)
            assert service.org_unit_id in by_id
        users = {u.username: u for u in s.scalars(select(User).where(User.tenant_id == tenant.id))}
        for row in BASE["users"]:
            user = users[row["username"]]
            assert user.roles == set(row["roles"])
            assert {by_id[i].code for i in user.org_unit_ids} == set(row["org_units"])
            assert PasswordHasher().verify(user.password_hash, row["password"])
        case_worker = users["sachbearbeitung"]
        assert case_worker.roles == {"sachbearbeitung"} and len(case_worker.org_unit_ids) == 2


def test_incoming_items_wait_unrouted_with_their_expected_labels(loaded, incoming_items):
    db, _ = loaded
    unit_codes = {u["code"] for u in BASE["org_units"]}
    service_codes = {s["code"] for s in BASE["services"]}
    with db.session() as s:
        cases = [c for c in s.scalars(select(Case)) if "demo_id" in c.fields]
        assert len(cases) == len(incoming_items) == 60
        items = {item["id"]: item for item in incoming_items}
        for case in cases:
            item = items[case.fields["demo_id"]]
            expected = case.fields["demo_expected"]
            assert expected == item["expected"]
            assert expected["department"] in unit_codes
            assert expected["service"] is None or expected["service"] in service_codes
            assert case.fields["language"] == item["language"]
            assert case.status is CaseStatus.NEU and case.org_unit_id is None
            assert (case.subject, case.channel, case.sender_name) == (
                item["subject"],
                item["channel"],
                item["sender_name"],
            )
            received = NOW - dt.timedelta(hours=item["received_hours_ago"])
            assert abs(_naive_utc(case.received_at) - _naive_utc(received)) < dt.timedelta(
                seconds=1
            )
            [message] = case.messages
            assert (message.direction, message.body) == ("in", item["body"])
            [event] = case.events
            assert (event.kind, event.activity) == ("created", "Eingang erfasst")


def test_history_is_plausible(loaded):
    db, summary = loaded
    assert summary.historical >= 300
    with db.session() as s:
        cases = s.scalars(select(Case)).all()
        references = [c.reference for c in cases]
        assert len(set(references)) == len(cases)
        assert all(re.fullmatch(r"MS-\d{4}-\d{6}", r) for r in references)
        events: dict[int, list[CaseEvent]] = defaultdict(list)
        for event in s.scalars(select(CaseEvent).order_by(CaseEvent.id)):
            events[event.case_id].append(event)
        history = [c for c in cases if c.fields.get("demo_historie")]
        assert len(history) == summary.historical

        now = _naive_utc(NOW)
        rerouted = overdue = 0
        for case in cases:
            log = events[case.id]
            assert log[0].kind == "created", case.reference
            assert _naive_utc(log[0].created_at) == _naive_utc(case.received_at)
            times = [_naive_utc(e.created_at) for e in log]
            assert times == sorted(times) and len(set(times)) == len(times), case.reference
            assert times[-1] <= now
            status = CaseStatus.NEU
            for event in log[1:]:
                assert event.kind == "status" and event.from_status == status.value
                assert CaseStatus(event.to_status) in TRANSITIONS[status], case.reference
                assert event.actor_label and (
                    event.actor_id is not None or event.actor_label == "system"
                )
                status = CaseStatus(event.to_status)
            assert case.status is status
            assert (case.closed_at is not None) == (status is CaseStatus.ERLEDIGT)
            if case.closed_at is not None:
                assert _naive_utc(case.closed_at) == times[-1]
            rerouted += any(e.to_status == "triage" for e in log)
            if (
                case.fields.get("demo_historie")
                and case.closed_at is None
                and _naive_utc(case.due_at) < now
            ):
                overdue += 1

        for case in history:
            assert case.service_id is not None and case.due_at > case.received_at
            assert case.status is CaseStatus.NEU or case.assignee_id is not None
        still_open = [c for c in history if c.closed_at is None]
        assert 0.05 <= len(still_open) / len(history) <= 0.16
        assert overdue >= 5
        assert 0.04 <= rerouted / len(history) <= 0.13
        received = [_naive_utc(c.received_at) for c in history]
        assert min(received) >= now - dt.timedelta(days=732) and max(received) < now
        weekend = sum(1 for r in received if r.weekday() >= 5)
        assert weekend / len(history) < 0.1
        # Winter service is reported in winter, not in summer.
        winter = Counter(
            _naive_utc(c.received_at).month for c in history if c.service.code == "winterdienst"
        )
        assert sum(winter[m] for m in (11, 12, 1, 2, 3)) > sum(winter[m] for m in (5, 6, 7, 8))


def test_history_speaks_the_inbox_vocabulary(loaded, incoming_items):
    """Request types and urgencies of past cases are labels the inbox also expects."""
    db, _ = loaded
    request_types = {item["expected"]["request_type"] for item in incoming_items}
    urgencies = {item["expected"]["urgency"] for item in incoming_items}
    channels = {item["channel"] for item in incoming_items}
    with db.session() as s:
        past = [c for c in s.scalars(select(Case)) if c.fields.get("demo_historie")]
    assert {c.request_type for c in past} <= request_types
    assert {c.urgency for c in past} <= urgencies
    # Phone calls and visits are recorded by staff; every other channel is one the inbox knows.
    assert {c.channel for c in past} - {"telefon", "persoenlich"} <= channels


def test_every_iban_in_the_texts_is_valid(loaded):
    db, _ = loaded
    with db.session() as s:
        found = [m for body in s.scalars(select(Message.body)) for m in IBAN.findall(body)]
    assert found, "the demo texts should contain IBANs"
    assert [iban for iban in found if not _iban_ok(iban)] == []


def test_german_iban():
    assert german_iban("370400440532013000") == "DE89 3704 0044 0532 0130 00"


def test_templates_cover_every_service_and_fill_every_slot():
    import random

    assert set(HISTORY["leistungen"]) == {s["code"] for s in BASE["services"]}
    for code, template in HISTORY["leistungen"].items():
        assert 3 <= len(template["varianten"]) <= 5, code
        assert len(template.get("saison", [1] * 12)) == 12, code
        assert template["art"] in HISTORY["kanaele"], code
        for variant in template["varianten"]:
            values = _SlotValues(random.Random(1), HISTORY["platzhalter"], dt.date(2026, 1, 5))
            for text in (variant["betreff"], variant["text"]):
                filled = text.format_map(values)
                assert "{" not in filled and "}" not in filled, (code, text)


def test_loading_twice(loaded):
    db, summary = loaded
    again = load_demo(db, if_empty=True, password_hasher=fast_hash)
    assert again.already_loaded
    assert (again.org_units, again.services, again.users, again.incoming, again.historical) == (
        summary.org_units,
        summary.services,
        summary.users,
        summary.incoming,
        summary.historical,
    )
    assert "bereits geladen" in str(again)
    with pytest.raises(RathausError, match="bereits geladen"):
        load_demo(db, password_hasher=fast_hash)
    with db.session() as s:
        assert len(s.scalars(select(Case.id)).all()) == summary.incoming + summary.historical


def test_history_is_reproducible(loaded, migrated_sqlite_template, tmp_path):
    db, _ = loaded
    other = _fresh_sqlite(migrated_sqlite_template, tmp_path, "other.db")
    try:
        load_demo(other, password_hasher=fast_hash, now=NOW)

        def snapshot(database: Database) -> list[tuple]:
            with database.session() as s:
                rows = s.execute(
                    select(Case.reference, Case.subject, Case.status, Case.received_at).order_by(
                        Case.reference
                    )
                ).all()
            return [(r, sub, st, _naive_utc(at)) for r, sub, st, at in rows]

        assert snapshot(db) == snapshot(other)
    finally:
        other.dispose()


def test_loads_fast_on_sqlite(sqlite_db):
    started = time.perf_counter()
    load_demo(sqlite_db, password_hasher=fast_hash)
    assert time.perf_counter() - started < 5


def test_demo_credentials_describe_role_and_units():
    credentials = {c["username"]: c for c in demo_credentials()}
    assert set(credentials) == {u["username"] for u in BASE["users"]}
    worker = credentials["sachbearbeitung"]
    assert worker["description"] == "Sachbearbeitung (Bürgeramt, Ordnungsamt)"
    assert worker["password"] == next(
        u["password"] for u in BASE["users"] if u["username"] == "sachbearbeitung"
    )
