"""Retention rules: only closed cases past their period are deleted or anonymised; everything
that belongs to a deleted case goes (originals after the commit), nothing else does."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import func, select

from rathaus.core import audit
from rathaus.core.config import load_settings
from rathaus.core.errors import RathausError
from rathaus.core.models import (
    AiSuggestion,
    AssistantConversation,
    AssistantTurn,
    AuditEvent,
    Case,
    CaseAccess,
    CaseEvent,
    CaseStatus,
    Document,
    Embedding,
    Message,
    PseudonymMap,
    utcnow,
)
from rathaus.core.storage import OriginalStore
from rathaus.governance import access_log, retention
from rathaus.governance.jobs import run_retention
from tests.factories import build_tenant

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
LETTER = (
    "Sehr geehrte Damen und Herren,\n"
    "ich beantrage einen Anwohnerparkausweis für die Hauptstraße 12, 70173 Stuttgart.\n"
    "Bitte überweisen Sie Erstattungen auf DE89 3704 0044 0532 0130 00.\n"
    "Rückfragen gern an erika.beispiel@example.org oder Tel. 0711 123456.\n"
    "Mit freundlichen Grüßen\nErika Beispiel\n"
)


def make_case(
    session,
    world,
    store: OriginalStore,
    *,
    reference: str,
    status: CaseStatus = CaseStatus.ERLEDIGT,
    closed_days_ago: int | None = 400,
    request_type: str | None = "Antrag",
    sender_name: str = "Erika Beispiel",
    sender_contact: str = "erika.beispiel@example.org",
    address: str = "Hauptstraße 12, 70173 Stuttgart",
    body: str = LETTER,
    document: bytes | None = None,
    keyring=None,  # noqa: ANN001
) -> Case:
    """A case as triage leaves it: message, stored original with text, fields with PII spans,
    an embedding, an AI suggestion, an event, optionally a pseudonym map."""
    tenant_id = world.tenant.id
    case = Case(
        tenant_id=tenant_id,
        reference=reference,
        subject=f"Parkausweis {sender_name}".strip(),
        status=status,
        request_type=request_type,
        org_unit_id=world.units["BA"].id,
        sender_name=sender_name,
        sender_contact=sender_contact,
        address=address,
        latitude=48.77,
        longitude=9.18,
        fields={
            "pii": [{"kind": "PERSON", "start": 0, "end": 5}],
            "extracted": {
                "sender": {"name": sender_name, "email": sender_contact, "phone": None},
                "ibans": ["DE89 3704 0044 0532 0130 00"] if "DE89" in body else [],
                "emails": [sender_contact] if sender_contact else [],
                "amounts": [{"value": "30.00", "currency": "EUR", "text": "30,00 €"}],
            },
        },
        received_at=NOW - dt.timedelta(days=500),
        closed_at=None if closed_days_ago is None else NOW - dt.timedelta(days=closed_days_ago),
    )
    session.add(case)
    session.flush()
    session.add(
        Message(
            tenant_id=tenant_id,
            case_id=case.id,
            direction="in",
            sender=f"{sender_name}, {sender_contact}",
            subject=case.subject,
            body=body,
        )
    )
    data = document if document is not None else f"PDF {reference}\n{body}".encode()
    stored = store.put(tenant_id, data)
    session.add(
        Document(
            tenant_id=tenant_id,
            case_id=case.id,
            filename=f"Antrag_{sender_name.replace(' ', '_')}.pdf",
            media_type="application/pdf",
            size=stored.size,
            sha256=stored.sha256,
            storage_path=stored.relative_path,
            extracted_text=body,
            extraction_status="ok",
        )
    )
    session.add(
        Embedding(
            tenant_id=tenant_id,
            owner_type="case",
            owner_id=case.id,
            model="test",
            dim=2,
            vector=b"\0" * 8,
            text_sha256=hashlib.sha256(body.encode()).hexdigest(),
        )
    )
    session.add(
        AiSuggestion(
            tenant_id=tenant_id,
            case_id=case.id,
            function="reply",
            backend="template",
            output={"text": f"Sehr geehrte Frau {sender_name.split(' ')[-1]}, danke."},
        )
    )
    session.add(
        CaseEvent(
            tenant_id=tenant_id,
            case_id=case.id,
            kind="status",
            activity="Erledigt",
            data={"reason": f"Rückruf bei {sender_name} erledigt"},
        )
    )
    if keyring is not None:
        from rathaus.governance.keys import case_scope, save_mapping

        save_mapping(
            session,
            tenant_id=tenant_id,
            scope=case_scope(case.id),
            mapping={"[PERSON_1]": sender_name, "[EMAIL_1]": sender_contact},
            keyring=keyring,
            case_id=case.id,
        )
    session.flush()
    return case


def _conversation(session, tenant_id: int, case_id: int | None, days_ago: int) -> int:
    conversation = AssistantConversation(
        tenant_id=tenant_id,
        public_id=f"c{tenant_id}-{case_id}-{days_ago}-{utcnow().timestamp()}",
        handed_over_case_id=case_id,
        created_at=NOW - dt.timedelta(days=days_ago),
        last_activity_at=NOW - dt.timedelta(days=days_ago),
    )
    conversation.turns = [
        AssistantTurn(tenant_id=tenant_id, question="Wie lange dauert [PERSON_1]?")
    ]
    session.add(conversation)
    session.flush()
    return conversation.id


@pytest.fixture
def store(tmp_path) -> OriginalStore:
    return OriginalStore(tmp_path / "originale")


def _count(session, model, **where) -> int:
    query = select(func.count()).select_from(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    return session.scalar(query)


def test_rules_are_validated_in_german(db):
    with db.session() as session:
        tenant_id = build_tenant(session, "alpha").tenant.id
        cases = [
            ({"target": "akte", "days": 10}, "Unbekanntes Ziel"),
            (
                {"target": "vorgang", "request_type": "Bauantrag", "days": 10},
                "Unbekannte Anliegenart",
            ),
            ({"target": "vorgang", "days": 0}, "zwischen 1 und 36500"),
            ({"target": "vorgang", "days": 10, "action": "vernichten"}, "Unbekannte Aktion"),
            ({"target": "unterhaltung", "days": 10, "action": "anonymisieren"}, "nur gelöscht"),
            ({"target": "unterhaltung", "request_type": "Antrag", "days": 10}, "keine Anliegenart"),
        ]
        for kwargs, message in cases:
            with pytest.raises(RathausError, match=message):
                retention.set_rule(session, tenant_id=tenant_id, actor="t", **kwargs)
        rule = retention.set_rule(
            session,
            tenant_id=tenant_id,
            target="vorgang",
            request_type="antrag",
            days=30,
            actor="t",
        )
        assert rule.request_type == "Antrag"  # canonical spelling
        retention.set_rule(
            session,
            tenant_id=tenant_id,
            target="vorgang",
            request_type="Antrag",
            days=60,
            actor="u",
        )
        assert [r.days for r in retention.list_rules(session, tenant_id=tenant_id)] == [60]
        changed = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "retention_rule_changed")
        ).all()
        assert changed[-1].data["before"]["days"] == 30 and changed[-1].data["after"]["days"] == 60
        with pytest.raises(RathausError, match="gibt es nicht"):
            retention.remove_rule(session, tenant_id=tenant_id, target="vorgang", actor="t")


def test_dry_run_lists_and_changes_nothing(db, store):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        old = make_case(session, world, store, reference="ALP-R-1")
        retention.set_rule(
            session, tenant_id=world.tenant.id, target="vorgang", days=365, actor="t"
        )
        tenant_id, old_id = world.tenant.id, old.id
    with db.session() as session:
        report = retention.apply(
            session, tenant_id=tenant_id, store=store, default_conversation_days=30, now=NOW,
            dry_run=True,
        )  # fmt: skip
        assert [c.reference for c in report.cases] == ["ALP-R-1"]
        assert report.counts()["loeschen"] == 1
    with db.session() as session:
        assert session.get(Case, old_id) is not None
        assert len(list((store.root / str(tenant_id)).rglob("*"))) == 2  # one file, one folder
        assert _count(session, AuditEvent, kind="retention_deleted") == 0


def test_delete_removes_everything_of_the_case_and_nothing_else(db, store):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        other = build_tenant(session, "beta")
        tenant_id = world.tenant.id
        due = make_case(session, world, store, reference="ALP-R-1")
        recent = make_case(
            session, world, store, reference="ALP-R-2", closed_days_ago=10, document=b"recent"
        )
        still_open = make_case(
            session, world, store, reference="ALP-R-3", status=CaseStatus.IN_BEARBEITUNG,
            closed_days_ago=900, document=b"open",
        )  # fmt: skip
        foreign = make_case(session, other, store, reference="BET-R-1", closed_days_ago=900)
        retention.set_rule(
            session, tenant_id=other.tenant.id, target="vorgang", days=10000, actor="t"
        )
        conversation = _conversation(session, tenant_id, due.id, days_ago=1)
        access_log.record_access(session, case=due, user=world.users["sb"])
        retention.set_rule(session, tenant_id=tenant_id, target="vorgang", days=365, actor="t")
        due_id, due_sha = due.id, due.documents[0].sha256
        keep = {recent.id, still_open.id, foreign.id}
        keep_files = [
            (tenant_id, recent.documents[0].sha256),
            (tenant_id, still_open.documents[0].sha256),
            (other.tenant.id, foreign.documents[0].sha256),
        ]
    with db.session() as session:
        report = retention.apply(
            session, tenant_id=tenant_id, store=store, default_conversation_days=30, now=NOW,
            actor="system",
        )  # fmt: skip
        assert [c.reference for c in report.cases] == ["ALP-R-1"]
        # Not yet committed: the original is still there (a rollback must find it).
        assert store.exists(tenant_id, due_sha)
    with db.session() as session:
        assert not store.exists(tenant_id, due_sha)
        assert session.get(Case, due_id) is None
        for model in (Document, Message, CaseEvent, AiSuggestion, PseudonymMap):
            assert _count(session, model, case_id=due_id) == 0, model
        assert _count(session, Embedding, owner_type="case", owner_id=due_id) == 0
        assert session.get(AssistantConversation, conversation) is None
        assert _count(session, AssistantTurn, conversation_id=conversation) == 0
        entry = session.scalar(select(CaseAccess).where(CaseAccess.case_reference == "ALP-R-1"))
        assert entry is not None and entry.case_id is None  # the log stays readable
        assert {c for c in session.scalars(select(Case.id))} >= keep
        for owner, sha in keep_files:
            assert store.get(owner, sha)
        event = session.scalar(select(AuditEvent).where(AuditEvent.kind == "retention_deleted"))
        assert event.subject == "ALP-R-1" and "365 Tage" in event.data["rule"]
        assert "Erika" not in str(event.data)
        assert audit.verify_chain(session, tenant_id) is None


def test_a_rollback_keeps_the_originals(db, store):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        case = make_case(session, world, store, reference="ALP-R-1")
        retention.set_rule(session, tenant_id=world.tenant.id, target="vorgang", days=30, actor="t")
        tenant_id, sha, case_id = world.tenant.id, case.documents[0].sha256, case.id
    with pytest.raises(RuntimeError), db.session() as session:
        retention.apply(
            session, tenant_id=tenant_id, store=store, default_conversation_days=30, now=NOW
        )
        raise RuntimeError("Abbruch nach dem Löschen")
    with db.session() as session:
        assert session.get(Case, case_id) is not None
    assert store.get(tenant_id, sha)


def test_anonymise_keeps_the_case_without_personal_data(db, store):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        case = make_case(session, world, store, reference="ALP-R-1")
        _conversation(session, world.tenant.id, case.id, days_ago=1)
        retention.set_rule(
            session, tenant_id=world.tenant.id, target="vorgang", request_type="Antrag",
            days=365, action="anonymisieren", actor="t",
        )  # fmt: skip
        retention.set_rule(
            session, tenant_id=world.tenant.id, target="vorgang", days=10000, actor="t"
        )
        tenant_id, case_id, sha = world.tenant.id, case.id, case.documents[0].sha256
    with db.session() as session:
        report = retention.apply(
            session, tenant_id=tenant_id, store=store, default_conversation_days=30, now=NOW
        )
        assert [(c.reference, c.action) for c in report.cases] == [("ALP-R-1", "anonymisieren")]
    with db.session() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.anonymized_at is not None
        assert case.status == CaseStatus.ERLEDIGT and case.request_type == "Antrag"
        assert case.org_unit_id == world.units["BA"].id
        assert case.latitude is None and "pii" not in case.fields
        texts = [
            case.subject, case.sender_name, case.sender_contact, case.address, str(case.fields),
            *(m.body + m.sender for m in case.messages),
            *(str(d.extracted_text) + d.filename for d in case.documents),
            *(str(e.data) for e in case.events),
            *(str(s.output) for s in session.scalars(select(AiSuggestion).where(AiSuggestion.case_id == case_id))),
        ]  # fmt: skip
        joined = "\n".join(texts)
        for value in (
            "Erika",
            "Beispiel",
            "erika.beispiel",
            "DE89",
            "0532 0130",
            "Hauptstraße 12",
            "123456",
        ):
            assert value not in joined, value
        assert "[PERSON_" in case.messages[0].body and "[IBAN_" in case.messages[0].body
        assert "Anwohnerparkausweis" in case.messages[0].body  # the matter stays readable
        assert case.documents[0].filename == f"dokument-{case.documents[0].id}.pdf"
        assert not store.exists(tenant_id, sha)
        assert _count(session, Embedding, owner_type="case", owner_id=case_id) == 0
        assert _count(session, AssistantConversation, handed_over_case_id=case_id) == 0
    with db.session() as session:  # a second run leaves an anonymised case alone
        again = retention.apply(
            session, tenant_id=tenant_id, store=store, default_conversation_days=30, now=NOW
        )
        assert again.cases == []
        assert audit.verify_chain(session, tenant_id) is None


def test_a_rule_for_the_type_wins_over_the_general_rule(db, store):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        tenant_id = world.tenant.id
        antrag = make_case(session, world, store, reference="A-1", request_type="Antrag")
        beschwerde = make_case(
            session, world, store, reference="B-1", request_type="Beschwerde", document=b"b"
        )
        untyped = make_case(
            session, world, store, reference="U-1", request_type=None, document=b"u"
        )
        retention.set_rule(
            session, tenant_id=tenant_id, target="vorgang", request_type="Antrag", days=1000,
            actor="t",
        )  # fmt: skip
        retention.set_rule(session, tenant_id=tenant_id, target="vorgang", days=100, actor="t")
        ids = {antrag.id, beschwerde.id, untyped.id}
    with db.session() as session:
        report = retention.apply(
            session, tenant_id=tenant_id, store=store, default_conversation_days=30, now=NOW
        )
        assert sorted(c.reference for c in report.cases) == ["B-1", "U-1"]
    with db.session() as session:
        assert set(session.scalars(select(Case.id).where(Case.id.in_(ids)))) == {antrag.id}


def test_conversations_follow_the_rule_or_the_setting(db, store):
    with db.session() as session:
        a = build_tenant(session, "alpha")
        b = build_tenant(session, "beta")
        a_old = _conversation(session, a.tenant.id, None, days_ago=20)
        a_new = _conversation(session, a.tenant.id, None, days_ago=5)
        b_old = _conversation(session, b.tenant.id, None, days_ago=20)
        retention.set_rule(
            session, tenant_id=a.tenant.id, target="unterhaltung", days=10, actor="t"
        )
        ids = (a.tenant.id, b.tenant.id)
    with db.session() as session:
        ra = retention.apply(
            session, tenant_id=ids[0], store=store, default_conversation_days=30, now=NOW
        )
        rb = retention.apply(
            session, tenant_id=ids[1], store=store, default_conversation_days=30, now=NOW
        )
        assert (ra.conversations, ra.conversation_rule) == (1, True)
        assert (rb.conversations, rb.conversation_days) == (0, 30)
    with db.session() as session:
        remaining = set(session.scalars(select(AssistantConversation.id)))
        assert remaining == {a_new, b_old} and a_old not in remaining


def test_the_daily_run_covers_every_tenant_and_purges_the_access_log(db, store, tmp_path):
    settings = load_settings(mode="demo", data_dir=tmp_path, database_url=db.url)
    store = OriginalStore(settings.originals_dir)
    with db.session() as session:
        a = build_tenant(session, "alpha")
        b = build_tenant(session, "beta")
        make_case(session, a, store, reference="A-1")
        make_case(session, b, store, reference="B-1")
        for world in (a, b):
            retention.set_rule(
                session, tenant_id=world.tenant.id, target="vorgang", days=30, actor="t"
            )
        old = access_log.record_access(session, case=a.cases["BA"], user=a.users["sb"])
        old.created_at = NOW - dt.timedelta(days=settings.governance.access_log_days + 1)
        access_log.record_access(session, case=a.cases["BA"], user=a.users["sb"])
    run = run_retention(db, settings, now=NOW)
    assert run.reports["alpha"]["loeschen"] == 1 and run.reports["beta"]["loeschen"] == 1
    assert run.access_log_purged == 1
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(CaseAccess)) == 1
        assert (
            set(session.scalars(select(Case.reference).where(Case.reference.in_(["A-1", "B-1"]))))
            == set()
        )


def test_value_patterns_find_other_spellings():
    from rathaus.ai.pii import ADDRESS, EMAIL, IBAN, PERSON, PHONE

    iban = retention.value_pattern(IBAN, "DE89370400440532013000")
    assert iban.search("Konto DE89 3704 0044 0532 0130 00.")
    phone = retention.value_pattern(PHONE, "+49 711 123456")
    assert phone.search("Tel.: 0711/12 34 56") and phone.search("(0711) 123456")
    assert not phone.search("0711 1234567")
    assert retention.value_pattern(EMAIL, "Erika@Example.org").search("an erika@example.org.")
    person = retention.value_pattern(PERSON, "Erika Beispiel")
    assert person.search("Frau Erika\nBeispiel") and person.search("Beispiel, Erika")
    assert not person.search("Erika Beispielhaft")
    assert retention.value_pattern(ADDRESS, "Hauptstraße 12").search("Hauptstr. 12")
