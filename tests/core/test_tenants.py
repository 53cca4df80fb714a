"""Tenants for an IT service provider: create (with the standard organisation), validate, list,
lock, quota and model policy; the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from rathaus.core import tenants
from rathaus.core.db import Database
from rathaus.core.demo import read_demo_file
from rathaus.core.errors import ConfigError, NotFoundError, RathausError
from rathaus.core.models import (
    AuditEvent,
    Case,
    OrgUnit,
    Service,
    Tenant,
    TenantSettings,
    User,
    WebSession,
)
from rathaus.core.security import create_session
from tests.factories import build_tenant
from tests.test_cli import run

INSTALLATION = {
    "oeffentlich": ["lokal", "eigener_server", "extern"],
    "intern": ["lokal", "eigener_server"],
    "vertraulich": ["lokal"],
}


def test_standard_template_is_the_demo_structure_without_musterstadt(db: Database) -> None:
    demo = read_demo_file("musterstadt.json")
    with db.session() as session:
        tenant = tenants.create(
            session,
            slug="bad-saeckingen",
            name="Stadt Bad Säckingen",
            address=tenants.Address(street="Rathausplatz 1", postal_code="79713"),
        )
        tenant_id = tenant.id
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        assert (tenant.city, tenant.land, tenant.reference_prefix) == ("Bad Säckingen", "BW", "BS")
        assert tenant.is_active and tenant.street == "Rathausplatz 1"
        units = session.scalars(select(OrgUnit).where(OrgUnit.tenant_id == tenant_id)).all()
        services = session.scalars(select(Service).where(Service.tenant_id == tenant_id)).all()
        assert {u.code for u in units} == {u["code"] for u in demo["org_units"]}
        assert {s.code for s in services} == {s["code"] for s in demo["services"]}
        by_code = {u.code: u for u in units}
        assert by_code["20.3"].parent_id == by_code["20"].id  # the tree is kept
        assert by_code["FB1"].parent_id is None
        leika = {s["code"]: s["leika_key"] for s in demo["services"]}
        for service in services:
            assert service.leika_key == leika[service.code]
            assert service.org_unit_id is not None
            # Nothing of Musterstadt: no fees, links, reply templates, no sentence naming it
            assert service.fees == "" and service.online_url == "" and service.reply_template == ""
            assert "musterstadt" not in service.description.lower()
            assert not re.search(r"\d", service.description)
        for unit in units:
            assert unit.email == unit.phone == unit.room == unit.opening_hours == ""
            assert "musterstadt" not in unit.description.lower()
        # Descriptions are still there for day-one routing (most sentences hold for any town)
        assert sum(1 for s in services if len(s.description) > 80) >= 30
        for model in (User, Case):
            count = session.scalar(select(func.count()).where(model.tenant_id == tenant_id))
            assert count == 0
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "mandant.angelegt")
        ).one()
        assert event.tenant_id == tenant_id and event.data["leistungen"] == len(services)


def test_empty_template_and_explicit_values(db: Database) -> None:
    with db.session() as session:
        tenant = tenants.create(
            session,
            slug="konstanz",
            name="Stadt Konstanz",
            land="bw",
            reference_prefix="kn",
            template="leer",
            address=tenants.Address(city="Konstanz am Bodensee"),
        )
        assert (tenant.reference_prefix, tenant.land, tenant.city) == (
            "KN",
            "BW",
            "Konstanz am Bodensee",
        )
        assert session.scalar(select(func.count()).where(OrgUnit.tenant_id == tenant.id)) == 0
        details = tenants.details(session, slug="konstanz")
        assert details.org_units == 0 and details.services == 0
        assert any("Anschrift ist unvollständig" in w for w in details.warnings)
        assert any("rathaus users create admin" in w for w in details.warnings)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slug": "Bad Säckingen"}, "Das Kürzel „Bad Säckingen“ ist ungültig"),
        ({"slug": "-alpha"}, "am Anfang und Ende kein Bindestrich"),
        ({"slug": "a"}, "2 bis 64 Zeichen"),
        ({"slug": "x" * 65}, "2 bis 64 Zeichen"),
        ({"name": "  "}, "Der Name der Kommune muss 1 bis 200 Zeichen"),
        ({"land": "XY"}, "Unbekanntes Bundesland „XY“"),
        ({"reference_prefix": "A-B"}, "Das Aktenzeichen-Präfix „A-B“ ist ungültig"),
        ({"template": "gross"}, "Unbekannte Vorlage „gross“: erlaubt sind standard, leer"),
    ],
)
def test_bad_input_is_refused_in_german(db: Database, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    values = {"slug": "neustadt", "name": "Stadt Neustadt"} | kwargs
    with db.session() as session, pytest.raises(RathausError, match=re.escape(message)):
        tenants.create(session, **values)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Tenant)) == 0  # nothing half-made


def test_duplicate_and_unknown_tenants(db: Database) -> None:
    with db.session() as session:
        tenants.create(session, slug="alpha", name="Stadt Alpha", template="leer")
    with db.session() as session, pytest.raises(RathausError) as caught:
        tenants.create(session, slug="alpha", name="Noch einmal", template="leer")
    assert "Die Kommune „alpha“ gibt es schon (Stadt Alpha)" in caught.value.message
    with db.session() as session:
        with pytest.raises(NotFoundError) as unknown:
            tenants.get(session, slug="alfa")
        assert "„alfa“ gibt es in dieser Installation nicht" in unknown.value.message
        assert "Meinten Sie „alpha“?" in unknown.value.message
        with pytest.raises(ConfigError) as start:
            tenants.require_tenant(session, "musterstadt")
        assert start.value.message.startswith("RATHAUS_DEFAULT_TENANT: Die Kommune „musterstadt“")
        assert "Vorhanden: alpha." in start.value.message
        assert tenants.require_tenant(session, "alpha").name == "Stadt Alpha"


def test_require_tenant_on_an_empty_installation(db: Database) -> None:
    with db.session() as session, pytest.raises(ConfigError) as caught:
        tenants.require_tenant(session, "musterstadt")
    assert "Es gibt noch keine Kommune: `rathaus mandanten anlegen" in caught.value.message


def test_lock_ends_sessions_and_unlock(db: Database) -> None:
    with db.session() as session:
        alpha = build_tenant(session, "alpha")
        beta = build_tenant(session, "beta")
        create_session(session, alpha.users["admin"], max_age_s=600)
        create_session(session, beta.users["admin"], max_age_s=600)
    with db.session() as session:
        assert tenants.set_active(session, slug="alpha", active=False) == 1
        assert tenants.set_active(session, slug="alpha", active=False) == 0  # already locked
    with db.session() as session:
        sessions = session.scalars(select(WebSession.tenant_id)).all()
        assert sessions == [beta.tenant.id]  # only alpha's staff were logged out
        assert not session.get(Tenant, alpha.tenant.id).is_active  # type: ignore[union-attr]
        kinds = session.scalars(
            select(AuditEvent.kind).where(AuditEvent.tenant_id == alpha.tenant.id)
        ).all()
        assert kinds.count("mandant.gesperrt") == 1
        tenants.set_active(session, slug="alpha", active=True)
    with db.session() as session:
        assert session.get(Tenant, alpha.tenant.id).is_active  # type: ignore[union-attr]


def test_quota_and_policy_settings(db: Database) -> None:
    with db.session() as session:
        build_tenant(session, "alpha")
        row = tenants.set_quota(session, slug="alpha", requests_per_minute=30)
        assert (row.requests_per_minute, row.tokens_per_minute) == (30, None)
        row = tenants.set_quota(session, slug="alpha", tokens_per_minute=5000)
        assert (row.requests_per_minute, row.tokens_per_minute) == (30, 5000)  # kept
        row = tenants.set_quota(session, slug="alpha", requests_per_minute=None)
        assert (row.requests_per_minute, row.tokens_per_minute) == (None, 5000)
        change = tenants.set_policy(
            session,
            slug="alpha",
            level="intern",
            locations=["eigener_server", "lokal", "lokal"],
            installation=INSTALLATION,
        )
        assert change.policies == {"intern": ["lokal", "eigener_server"]} and change.notes == []
        looser = tenants.set_policy(
            session,
            slug="alpha",
            level="vertraulich",
            locations=["lokal", "extern"],
            installation=INSTALLATION,
        )
        assert "mehr als die der Installation (zusätzlich: extern)" in looser.notes[0]
        blocked = tenants.set_policy(
            session, slug="alpha", level="oeffentlich", locations=[], installation=INSTALLATION
        )
        assert blocked.policies["oeffentlich"] == []
        reset = tenants.set_policy(
            session, slug="alpha", level="vertraulich", locations=None, installation=INSTALLATION
        )
        assert set(reset.policies) == {"intern", "oeffentlich"}
    with db.session() as session:
        stored = session.scalars(select(TenantSettings)).one()
        assert stored.model_policies == {"intern": ["lokal", "eigener_server"], "oeffentlich": []}
        with pytest.raises(RathausError, match="Unbekannte Vertraulichkeitsstufe „geheim“"):
            tenants.set_policy(
                session, slug="alpha", level="geheim", locations=["lokal"], installation={}
            )
        with pytest.raises(RathausError, match="Unbekannter Modellort „cloud“"):
            tenants.set_policy(
                session, slug="alpha", level="intern", locations=["cloud"], installation={}
            )
        with pytest.raises(NotFoundError, match="„gamma“ gibt es"):
            tenants.set_quota(session, slug="gamma", requests_per_minute=1)


def test_limits_and_locations_from_the_command_line() -> None:
    assert tenants.parse_limit("120", "x") == 120
    assert tenants.parse_limit("unbegrenzt", "x") is None
    for bad in ("0", "-5", "viel", "1.5"):
        with pytest.raises(RathausError, match="ist keine gültige Grenze"):
            tenants.parse_limit(bad, "--anfragen-pro-minute")
    assert tenants.parse_locations("lokal, eigener_server") == ["lokal", "eigener_server"]
    assert tenants.parse_locations("keine") == []
    assert tenants.default_prefix("bad-saeckingen") == "BS"
    assert tenants.default_prefix("konstanz") == "KO"
    assert tenants.place_name("Gemeinde Wald") == "Wald"


def test_cli_round_trip(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = {"RATHAUS_DATABASE_URL": db.url}
    made = run(
        ["mandanten", "anlegen", "neustadt", "--name", "Stadt Neustadt", "--land", "RP",
         "--strasse", "Marktplatz 1", "--plz", "67433"],
        tmp_path,
        **url,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "Angelegt: Stadt Neustadt (neustadt), 18 Organisationseinheiten, 40 Leistungen" in (
        made.stdout
    )
    again = run(["mandanten", "anlegen", "neustadt", "--name", "X"], tmp_path, **url)
    assert again.returncode == 1
    assert "Fehler: Die Kommune „neustadt“ gibt es schon" in again.stderr
    quota = run(
        ["mandanten", "kontingent", "neustadt", "--anfragen-pro-minute", "60",
         "--tokens-pro-minute", "20000"],
        tmp_path,
        **url,
    )  # fmt: skip
    assert quota.returncode == 0, quota.stderr
    assert "60 Anfragen/min, 20000 Tokens/min" in quota.stdout
    own = run(
        ["mandanten", "richtlinie", "neustadt", "--stufe", "intern", "--orte", "lokal"],
        tmp_path,
        **url,
    )
    assert own.returncode == 0, own.stderr
    locked = run(["mandanten", "sperren", "neustadt"], tmp_path, **url)
    assert locked.returncode == 0 and "Gesperrt: neustadt" in locked.stdout
    shown = run(["mandanten", "zeigen", "neustadt", "--json"], tmp_path, **url)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["aktiv"] is False and data["land"] == "RP"
    assert (data["anfragen_pro_minute"], data["tokens_pro_minute"]) == (60, 20000)
    assert data["wirksame_richtlinie"]["intern"] == ["lokal"]
    assert data["wirksame_richtlinie"]["vertraulich"] == ["lokal"]  # the installation's
    assert data["anschrift"]["ort"] == "Neustadt" and data["verbrauch"]["diese_minute"] == {
        "requests": 0,
        "tokens": 0,
        "refused": 0,
    }
    listed = run(["mandanten", "liste", "--json"], tmp_path, **url)
    assert [row["kuerzel"] for row in json.loads(listed.stdout)] == ["neustadt"]
    policy = run(["governance", "richtlinien", "--kommune", "neustadt"], tmp_path, **url)
    assert policy.returncode == 0, policy.stderr
    assert "Richtlinie (Kommune neustadt)" in policy.stdout
    assert re.search(r"intern\s+erlaubt: lokal\s.*\(eigene der Kommune\)", policy.stdout)
    bad = run(["mandanten", "kontingent", "alfa", "--anfragen-pro-minute", "0"], tmp_path, **url)
    assert bad.returncode == 1 and "keine gültige Grenze" in bad.stderr
    unknown = run(["mandanten", "sperren", "neustat"], tmp_path, **url)
    assert unknown.returncode == 1
    assert "Die Kommune „neustat“ gibt es in dieser Installation nicht" in unknown.stderr
    assert "Meinten Sie „neustadt“?" in unknown.stderr
