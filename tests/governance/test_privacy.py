"""DSGVO Art. 15 and Art. 17 for a person: found in every spelling, exported completely, erased
without touching other people's data, with the audit chain intact."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest
from sqlalchemy import func, select

from rathaus.core import audit
from rathaus.core.config import load_settings
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import (
    AssistantConversation,
    AuditEvent,
    Case,
    CaseAccess,
    CaseStatus,
    Embedding,
    PrivacyRequest,
    PseudonymMap,
    RoutingModelVersion,
)
from rathaus.core.storage import OriginalStore
from rathaus.governance import privacy, retention
from rathaus.governance.keys import Keyring, case_scope, load_mapping, save_mapping
from tests.factories import build_tenant
from tests.governance.test_retention import NOW, _conversation, make_case

OTHER_LETTER = (
    "Guten Tag,\nvor dem Haus Lindenweg 3 liegt Sperrmüll. Meine Nachbarin Erika Beispiel "
    "(erika.beispiel@example.org) hat das auch gesehen.\nViele Grüße\nMax Mustermann\n"
)
IDENTIFIERS = ("Erika", "Beispiel", "erika.beispiel", "DE89", "0532 0130", "0711 123456")


@pytest.fixture
def setup(db, tmp_path):
    """Tenant alpha: two cases from Erika (closed and open), one of Max mentioning her, one of
    Max alone; tenant beta: a case from an Erika Beispiel too (never touched)."""
    settings = load_settings(mode="demo", data_dir=tmp_path, database_url=db.url)
    keyring = Keyring.from_settings(settings)
    store = OriginalStore(settings.originals_dir)
    with db.session() as session:
        world = build_tenant(session, "alpha")
        beta = build_tenant(session, "beta")
        own = make_case(session, world, store, reference="ALP-P-1", keyring=keyring)
        own_open = make_case(
            session, world, store, reference="ALP-P-2", status=CaseStatus.IN_BEARBEITUNG,
            closed_days_ago=None, document=b"offen", keyring=keyring,
        )  # fmt: skip
        mentioned = make_case(
            session, world, store, reference="ALP-P-3", sender_name="Max Mustermann",
            sender_contact="max@example.org", address="Lindenweg 3", body=OTHER_LETTER,
            document=b"Max schreibt ueber Erika Beispiel", keyring=keyring,
        )  # fmt: skip
        unrelated = make_case(
            session, world, store, reference="ALP-P-4", sender_name="Max Mustermann",
            sender_contact="max@example.org", address="Lindenweg 3",
            body="Bitte Sperrmüll abholen.\nMax Mustermann", document=b"max allein",
        )  # fmt: skip
        foreign = make_case(session, beta, store, reference="BET-P-1", document=b"beta")
        conversation = _conversation(session, world.tenant.id, own.id, days_ago=1)
        save_mapping(
            session, tenant_id=world.tenant.id, scope="writing_job:7",
            mapping={"[PERSON_1]": "Erika Beispiel", "[PERSON_2]": "Hans Dritter"},
            keyring=keyring,
        )  # fmt: skip
        ids = {
            "own": own.id, "open": own_open.id, "mentioned": mentioned.id,
            "unrelated": unrelated.id, "foreign": foreign.id, "conversation": conversation,
            "tenant": world.tenant.id, "beta": beta.tenant.id,
            "own_sha": own.documents[0].sha256, "mentioned_sha": mentioned.documents[0].sha256,
        }  # fmt: skip
    return settings, keyring, store, ids


def _tenant(session, slug):
    from rathaus.core.repo import tenant_by_slug

    return tenant_by_slug(session, slug)


def test_identifiers_are_validated_in_german():
    with pytest.raises(RathausError, match="mindestens eine Angabe"):
        privacy.Person.parse(names=["", "  "])
    with pytest.raises(RathausError, match="Vor- und Nachnamen"):
        privacy.Person.parse(names=["Erika"])
    with pytest.raises(RathausError, match="keine gültige IBAN"):
        privacy.Person.parse(ibans=["DE89 3704 0044 0532 0130 01"])
    with pytest.raises(RathausError, match="keine gültige E-Mail"):
        privacy.Person.parse(emails=["erika(at)example.org"])
    with pytest.raises(RathausError, match="zu kurz"):
        privacy.Person.parse(phones=["12 34"])
    same = privacy.Person.parse(ibans=["de89 3704 0044 0532 0130 00"], emails=["Erika@Example.org"])
    other = privacy.Person.parse(ibans=["DE89370400440532013000"], emails=["erika@example.org"])
    assert same.sha256 == other.sha256  # normalised like ai.pii


@pytest.mark.parametrize(
    "given",
    [
        {"ibans": ["DE89370400440532013000"]},
        {"emails": ["ERIKA.Beispiel@example.org"]},
        {"phones": ["+49 711 123456"]},
        {"names": ["Beispiel, Erika"]},
    ],
)
def test_the_person_is_found_in_every_spelling(db, setup, given):
    settings, keyring, store, ids = setup
    with db.session() as session:
        findings = privacy.find(
            session, tenant_id=ids["tenant"], person=privacy.Person.parse(**given), keyring=keyring
        )
        found = {h.case.id: h.about for h in findings.cases}
    assert ids["own"] in found and ids["open"] in found
    assert ids["unrelated"] not in found and ids["foreign"] not in found
    if "emails" in given or "names" in given:
        # she sent these two: they are about her; Max's letter only mentions her
        assert found[ids["own"]] is True and found[ids["open"]] is True
        assert found[ids["mentioned"]] is False
        assert findings.maps  # the gateway's mappings with her name or address
    else:
        # an IBAN or phone number in a letter's text does not say who sent it
        assert found[ids["own"]] is False and ids["mentioned"] not in found


def test_access_export_contains_everything_and_stores_only_a_hash(db, setup):
    settings, keyring, store, ids = setup
    person = privacy.Person.parse(names=["Erika Beispiel"], emails=["erika.beispiel@example.org"])
    with db.session() as session:
        export = privacy.access_request(
            session, tenant=_tenant(session, "alpha"), person=person, actor="dsb",
            channel="cli", store=store, keyring=keyring, default_conversation_days=30,
        )  # fmt: skip
        zip_bytes, request_id = export.zip_bytes, export.request.id
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    names = archive.namelist()
    assert "anschreiben.txt" in names and "auskunft.json" in names
    originals = [n for n in names if n.startswith("originale/")]
    assert len(originals) == 2  # her two cases; not the one of Max that mentions her
    assert archive.read([n for n in originals if "ALP-P-1" in n][0]).startswith(b"PDF ALP-P-1")
    data = json.loads(archive.read("auskunft.json"))
    by_ref = {c["aktenzeichen"]: c for c in data["vorgaenge"]}
    assert set(by_ref) == {"ALP-P-1", "ALP-P-2", "ALP-P-3"}
    own = by_ref["ALP-P-1"]
    assert own["absender"] == "Erika Beispiel" and own["nachrichten"][0]["text"].startswith("Sehr")
    assert own["ki_vorschlaege"][0]["funktion"] == "reply"
    assert own["unterhaltungen_buergerassistent"][0]["fragen_und_antworten"]
    mentioned = by_ref["ALP-P-3"]
    assert "nachrichten" not in mentioned and "Max Mustermann" not in json.dumps(mentioned)
    assert any("Erika Beispiel" in s for s in mentioned["textstellen"])
    assert data["pseudonymisierung"]
    letter = archive.read("anschreiben.txt").decode()
    for item in ("a) Zwecke", "b) Kategorien", "c) Empfänger", "d) Dauer", "g) Herkunft", "h) "):
        assert item in letter
    with db.session() as session:
        stored = session.get(PrivacyRequest, request_id)
        assert stored.kind == "auskunft" and stored.subject_sha256 == person.sha256
        assert stored.criteria == ["email", "name"] and stored.result["vorgaenge_betroffen"] == 2
        saved = json.dumps([stored.result, stored.note, stored.criteria])
        audit_rows = json.dumps(
            [[e.subject, e.data] for e in session.scalars(select(AuditEvent))], ensure_ascii=False
        )
        for value in IDENTIFIERS:
            assert value not in saved and value not in audit_rows
        logged = session.scalars(select(CaseAccess).where(CaseAccess.action == "auskunft")).all()
        assert {a.case_reference for a in logged} == {"ALP-P-1", "ALP-P-2", "ALP-P-3"}
        assert {a.channel for a in logged} == {"cli"}


def test_an_unknown_person_gets_a_negative_answer_and_no_erasure(db, setup):
    settings, keyring, store, ids = setup
    nobody = privacy.Person.parse(names=["Nora Niemand"], emails=["nora@example.net"])
    with db.session() as session:
        tenant = _tenant(session, "alpha")
        export = privacy.access_request(
            session, tenant=tenant, person=nobody, actor="dsb", store=store, keyring=keyring
        )
        assert export.findings.empty
        assert (
            "Negativauskunft"
            in zipfile.ZipFile(io.BytesIO(export.zip_bytes)).read("anschreiben.txt").decode()
        )
        before = session.scalar(select(func.count()).select_from(Case))
        with pytest.raises(NotFoundError, match="nichts gelöscht"):
            privacy.erasure_request(
                session, tenant=tenant, person=nobody, actor="dsb", confirm=True, store=store,
                keyring=keyring,
            )  # fmt: skip
        assert session.scalar(select(func.count()).select_from(Case)) == before


def test_erasure_dry_run_then_confirmed(db, setup):
    settings, keyring, store, ids = setup
    person = privacy.Person.parse(names=["Erika Beispiel"], ibans=["DE89 3704 0044 0532 0130 00"])
    with db.session() as session:
        session.add(
            RoutingModelVersion(
                tenant_id=ids["tenant"], version=3, status="live", file_path="m", n_train=120,
                created_at=NOW - dt.timedelta(days=3),
            )
        )  # fmt: skip
    with db.session() as session:
        plan = privacy.erasure_request(
            session, tenant=_tenant(session, "alpha"), person=person, actor="dsb", store=store,
            keyring=keyring,
        )  # fmt: skip
        actions = {c.reference: c.action for c in plan.cases}
        assert actions == {"ALP-P-1": "loeschen", "ALP-P-2": "offen", "ALP-P-3": "schwaerzen"}
        assert any("offen" in m for m in plan.messages)
        assert plan.training["version"] == 3 and plan.request_id is None
    with db.session() as session:  # the dry run changed nothing
        assert session.get(Case, ids["own"]) is not None
        assert session.scalar(select(func.count()).select_from(PrivacyRequest)) == 0
    with db.session() as session:
        done = privacy.erasure_request(
            session, tenant=_tenant(session, "alpha"), person=person, actor="dsb", confirm=True,
            store=store, keyring=keyring,
        )  # fmt: skip
        assert done.request_id is not None and done.counts["ersetzungen"] >= 2
    with db.session() as session:
        assert session.get(Case, ids["own"]) is None
        assert session.get(AssistantConversation, ids["conversation"]) is None
        assert not store.exists(ids["tenant"], ids["own_sha"])
        # open: untouched, with her data
        still_open = session.get(Case, ids["open"])
        assert still_open.sender_name == "Erika Beispiel"
        # mentioned: her name and e-mail replaced, Max's letter otherwise intact, original kept
        mentioned = session.get(Case, ids["mentioned"])
        body = mentioned.messages[0].body
        assert "Erika Beispiel" not in body and "[PERSON_1]" in body
        assert "Max Mustermann" in body and "Sperrmüll" in body
        assert mentioned.sender_name == "Max Mustermann"
        assert store.exists(ids["tenant"], ids["mentioned_sha"])
        assert (
            session.scalar(
                select(func.count())
                .select_from(Embedding)
                .where(Embedding.owner_id == ids["mentioned"])
            )
            == 0
        )
        assert (
            session.scalar(
                select(PseudonymMap).where(PseudonymMap.scope == case_scope(ids["mentioned"]))
            )
            is None
        )
        # other mappings lose her entry only
        remaining = load_mapping(
            session, tenant_id=ids["tenant"], scope="writing_job:7", keyring=keyring
        )
        assert remaining == {"[PERSON_2]": "Hans Dritter"}
        # other people's and other tenants' cases untouched
        assert session.get(Case, ids["unrelated"]).messages[0].body.startswith("Bitte Sperrmüll")
        assert session.get(Case, ids["foreign"]).sender_name == "Erika Beispiel"
        request = session.get(PrivacyRequest, done.request_id)
        assert request.kind == "loeschung" and request.result["loeschen"] == 1
        assert request.result["modell_neutraining"] is True
        kinds = [e.kind for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert "privacy_case_deleted" in kinds and "privacy_erasure" in kinds
        assert "privacy_mentions_removed" in kinds
        assert audit.verify_chain(session, ids["tenant"]) is None
        assert audit.verify_chain(session, ids["beta"]) is None


def test_open_cases_only_when_included(db, setup):
    settings, keyring, store, ids = setup
    person = privacy.Person.parse(emails=["erika.beispiel@example.org"])
    with db.session() as session:
        done = privacy.erasure_request(
            session, tenant=_tenant(session, "alpha"), person=person, actor="dsb", confirm=True,
            include_open=True, store=store, keyring=keyring,
        )  # fmt: skip
        assert done.counts["offen_uebersprungen"] == 0 and done.counts["loeschen"] == 2
        assert done.training is None  # no live routing model
    with db.session() as session:
        assert session.get(Case, ids["open"]) is None
        assert session.get(Case, ids["unrelated"]) is not None


def test_retention_scrubber_is_reused_without_detection():
    scrub = retention.Scrubber(retention.patterns_for([("PERSON", "Erika Beispiel")]), detect=False)
    text = "Frau Erika Beispiel und Herr Max Mustermann"
    assert scrub.text(text) == "Frau [PERSON_1] und Herr Max Mustermann"
