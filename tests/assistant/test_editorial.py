"""The Redaktion's service functions: list, edit (re-indexed), verify, the answers that used an
entry, and the gaps report with its CSV. Entries are indexed with the real embedder; two or
three short ones keep that cheap."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest
from sqlalchemy import select

from rathaus.assistant import editorial, knowledge, retrieve
from rathaus.assistant.entries import EntryData
from rathaus.core.errors import NotFoundError
from rathaus.core.models import (
    AssistantCitation,
    AssistantConversation,
    AssistantTurn,
    AuditEvent,
    Embedding,
    KnowledgeChunk,
    KnowledgeEntry,
    utcnow,
)
from tests.factories import build_tenant

AUSWEIS = EntryData(
    source="test",
    external_id="ausweis",
    title="Personalausweis beantragen",
    url="https://stadt.example/ausweis",
    body="Den Personalausweis beantragen Sie persönlich im Bürgerbüro.\n\n"
    "Bitte bringen Sie ein biometrisches Passfoto mit.",
    keywords="Perso, Ausweis",
    facts={"fees": "37,00 Euro", "required_documents": ["Passfoto", "alter Ausweis"]},
)
SPERRMUELL = EntryData(
    source="test",
    external_id="sperrmuell",
    title="Sperrmüll anmelden",
    url="https://stadt.example/sperrmuell",
    body="Sperrmüll holen wir nach Anmeldung kostenlos ab.",
    keywords="Sperrmüllabholung",
)


@pytest.fixture
def world(db, embedder):  # type: ignore[no-untyped-def]
    with db.session() as session:
        alpha = build_tenant(session, "alpha")
        beta = build_tenant(session, "beta")
        knowledge.upsert_entries(
            session, tenant_id=alpha.tenant.id, entries=[AUSWEIS, SPERRMUELL], embedder=embedder
        )
        ids = {
            e.external_id: e.id
            for e in session.scalars(
                select(KnowledgeEntry).where(KnowledgeEntry.tenant_id == alpha.tenant.id)
            )
        }
        return {
            "tenant": alpha.tenant.id,
            "other": beta.tenant.id,
            "user": alpha.users["redaktion"].id,
            "other_user": beta.users["redaktion"].id,
            "ids": ids,
        }


def _user(session, world, key="user"):  # type: ignore[no-untyped-def]
    from rathaus.core.models import User

    return session.get(User, world[key])


def _turn(
    session,
    tenant_id: int,
    question: str,
    *,
    cites=(),
    abstained=False,
    confidence=0.9,
    feedback=None,
    ago_days: float = 0,
    text="Eine Antwort.",
):  # type: ignore[no-untyped-def]
    when = utcnow() - dt.timedelta(days=ago_days)
    conversation = AssistantConversation(
        tenant_id=tenant_id, public_id=uuid.uuid4().hex, created_at=when
    )
    session.add(conversation)
    session.flush()
    turn = AssistantTurn(
        tenant_id=tenant_id,
        conversation_id=conversation.id,
        question=question,
        answer={"text": text, "sentences": [{"text": text, "sources": [1]}]},
        confidence=confidence,
        abstained=abstained,
        feedback=feedback,
        created_at=when,
    )
    session.add(turn)
    session.flush()
    for rank, entry_id in enumerate(cites):
        session.add(
            AssistantCitation(
                tenant_id=tenant_id, turn_id=turn.id, entry_id=entry_id, chunk_key="k", rank=rank
            )
        )
    session.flush()
    return turn


# -- list and get -------------------------------------------------------------------------------


def test_list_searches_filters_and_counts(db, world):
    ausweis, sperr = world["ids"]["ausweis"], world["ids"]["sperrmuell"]
    with db.session() as session:
        _turn(session, world["tenant"], "Ausweis?", cites=[ausweis, ausweis])
        _turn(session, world["tenant"], "Perso?", cites=[ausweis])
        listed = editorial.list_entries(session, tenant_id=world["tenant"])
        assert [r.entry.title for r in listed.rows] == [
            "Personalausweis beantragen",
            "Sperrmüll anmelden",
        ]
        assert listed.total == 2
        rows = {r.entry.id: r for r in listed.rows}
        assert rows[ausweis].chunks >= 2 and rows[sperr].chunks >= 1
        assert rows[ausweis].uses == 2 and rows[sperr].uses == 0  # two answers, not three rows

        found = editorial.list_entries(session, tenant_id=world["tenant"], query="sperr")
        assert [r.entry.id for r in found.rows] == [sperr]
        by_keyword = editorial.list_entries(session, tenant_id=world["tenant"], query="PERSO")
        assert [r.entry.id for r in by_keyword.rows] == [ausweis]
        assert editorial.list_entries(session, tenant_id=world["tenant"], query="100%").total == 0

        used = editorial.list_entries(session, tenant_id=world["tenant"], sort="nutzung")
        assert used.rows[0].entry.id == ausweis
        assert editorial.list_entries(session, tenant_id=world["other"]).total == 0

        session.get(KnowledgeEntry, sperr).last_verified_at = utcnow() - dt.timedelta(days=400)
        session.get(KnowledgeEntry, ausweis).last_verified_at = utcnow() - dt.timedelta(days=10)
        session.flush()
        stale = editorial.list_entries(session, tenant_id=world["tenant"], stale_days=365)
        assert [r.entry.id for r in stale.rows] == [sperr]
        oldest_first = editorial.list_entries(session, tenant_id=world["tenant"], sort="pruefung")
        assert [r.entry.id for r in oldest_first.rows] == [sperr, ausweis]
        assert (
            editorial.list_entries(session, tenant_id=world["tenant"], only_unverified=True).total
            == 0
        )


def test_get_entry_of_another_tenant_is_not_found(db, world):
    with db.session() as session, pytest.raises(NotFoundError):
        editorial.get_entry(session, tenant_id=world["other"], entry_id=world["ids"]["ausweis"])


# -- editing ------------------------------------------------------------------------------------


def _edit(session, world, embedder, **changes):  # type: ignore[no-untyped-def]
    entry = session.get(KnowledgeEntry, world["ids"]["ausweis"])
    fields = {
        "title": entry.title,
        "url": entry.url,
        "body": entry.body,
        "keywords": entry.keywords,
        "facts": entry.facts,
        "is_published": entry.is_published,
    }
    fields.update(changes)
    return editorial.update_fields(
        session,
        tenant_id=world["tenant"],
        entry_id=entry.id,
        embedder=embedder,
        user=_user(session, world),
        **fields,
    )


def test_edit_reindexes_the_entry(db, world, embedder):
    ausweis = world["ids"]["ausweis"]
    new_body = (
        "Den Personalausweis beantragen Sie persönlich im Bürgerbüro.\n\n"
        "Neu: Kinder unter zwölf Jahren erhalten stattdessen einen Kinderreisepass aus Quittenholz."
    )
    with db.session() as session:
        old_keys = set(
            session.scalars(
                select(KnowledgeChunk.chunk_key).where(KnowledgeChunk.entry_id == ausweis)
            )
        )
        before = retrieve.search(  # fills the in-process index, which the edit must refresh
            session, tenant_id=world["tenant"], query="Quittenholz", embedder=embedder
        )
        assert not any("Quittenholz" in c.text for hit in before for c in hit.chunks)
        _edit(session, world, embedder, body=new_body, facts={"fees": "22,80 Euro"})
    with db.session() as session:
        chunks = session.scalars(
            select(KnowledgeChunk).where(KnowledgeChunk.entry_id == ausweis)
        ).all()
        texts = " ".join(c.text for c in chunks)
        assert "Quittenholz" in texts and "Passfoto" not in texts
        assert "22,80 Euro" in texts  # facts are indexed too
        assert not {c.chunk_key for c in chunks} & old_keys  # the old passages are gone
        vectors = session.scalars(
            select(Embedding.owner_id).where(Embedding.owner_type == knowledge.CHUNK_OWNER)
        ).all()
        assert {c.id for c in chunks} <= set(vectors)
        hits = retrieve.search(
            session,
            tenant_id=world["tenant"],
            query="Kinderreisepass aus Quittenholz",
            embedder=embedder,
        )
        assert hits[0].entry_id == ausweis
        assert any("Quittenholz" in c.text for c in hits[0].chunks)
        entry = session.get(KnowledgeEntry, ausweis)
        assert entry.facts == {"fees": "22,80 Euro"}
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "knowledge_entry_changed")
        ).one()
        assert event.subject == f"knowledge_entry:{ausweis}"
        assert event.data["fields"] == ["body", "facts"]


def test_edit_refuses_missing_title_and_unsafe_links(db, world, embedder):
    with db.session() as session:
        with pytest.raises(editorial.EntryInvalid) as caught:
            _edit(
                session,
                world,
                embedder,
                title="  ",
                url="javascript:alert(1)",
                facts={
                    "online_url": "ftp://stadt.example/x",
                    "forms": [{"title": "Antrag", "url": "data:text/html,hi"}],
                },
            )
        errors = caught.value.errors
        assert len(errors) == 4
        assert "Titel" in errors[0]
        assert all("http://" in e for e in errors[1:])
        assert "Quelle (URL)" in errors[1] and "Online-Dienst" in " ".join(errors)
    with db.session() as session:
        entry = session.get(KnowledgeEntry, world["ids"]["ausweis"])
        assert entry.title == "Personalausweis beantragen"  # nothing was saved


def test_unchanged_edit_writes_nothing(db, world, embedder):
    with db.session() as session:
        before = session.get(KnowledgeEntry, world["ids"]["ausweis"]).updated_at
        _edit(session, world, embedder)
        assert session.get(KnowledgeEntry, world["ids"]["ausweis"]).updated_at == before
        changed = select(AuditEvent.id).where(AuditEvent.kind == "knowledge_entry_changed")
        assert session.scalar(changed) is None


def test_facts_form_round_trip():
    typed = {
        "fees": " 37,00 Euro ",
        "required_documents": "Passfoto\r\n\r\nalter Ausweis\n",
        "forms": "Antrag | https://stadt.example/antrag.pdf\nhttps://stadt.example/b.pdf\nVollmacht",
        "phone": "",
    }
    facts = editorial.facts_from_form(typed)
    assert facts == {
        "fees": "37,00 Euro",
        "required_documents": ["Passfoto", "alter Ausweis"],
        "forms": [
            {"title": "Antrag", "url": "https://stadt.example/antrag.pdf"},
            {"title": "https://stadt.example/b.pdf", "url": "https://stadt.example/b.pdf"},
            {"title": "Vollmacht", "url": ""},
        ],
    }
    shown = editorial.facts_to_form(facts)
    assert shown["forms"].splitlines() == [
        "Antrag | https://stadt.example/antrag.pdf",
        "https://stadt.example/b.pdf",
        "Vollmacht",
    ]
    assert editorial.facts_from_form(shown) == facts
    assert shown["phone"] == ""


def test_mark_verified_and_delete(db, world):
    when = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    with db.session() as session:
        editorial.mark_verified(
            session,
            tenant_id=world["tenant"],
            entry_id=world["ids"]["sperrmuell"],
            user=_user(session, world),
            now=when,
        )
    with db.session() as session:
        entry = session.get(KnowledgeEntry, world["ids"]["sperrmuell"])
        assert entry.last_verified_at.replace(tzinfo=dt.UTC) == when
        assert entry.verified_by == "Redaktion"
        with pytest.raises(NotFoundError):  # another tenant's Redaktion cannot
            editorial.mark_verified(
                session,
                tenant_id=world["other"],
                entry_id=entry.id,
                user=_user(session, world, "other_user"),
            )
        editorial.delete_entry(
            session, tenant_id=world["tenant"], entry_id=entry.id, user=_user(session, world)
        )
    with db.session() as session:
        assert session.get(KnowledgeEntry, world["ids"]["sperrmuell"]) is None
        assert (
            session.scalar(
                select(KnowledgeChunk.id).where(
                    KnowledgeChunk.entry_id == world["ids"]["sperrmuell"]
                )
            )
            is None
        )
        kinds = set(session.scalars(select(AuditEvent.kind)))
        assert {"knowledge_entry_verified", "knowledge_entry_deleted"} <= kinds


# -- answers and gaps ---------------------------------------------------------------------------


def test_answers_using_an_entry(db, world):
    ausweis, sperr = world["ids"]["ausweis"], world["ids"]["sperrmuell"]
    with db.session() as session:
        _turn(session, world["tenant"], "Was kostet der Ausweis?", cites=[ausweis], ago_days=2)
        _turn(
            session,
            world["tenant"],
            "Ausweis verloren",
            cites=[sperr, ausweis, ausweis],
            confidence=0.41,
            feedback=-1,
            ago_days=1,
        )
        _turn(session, world["tenant"], "Sperrmüll?", cites=[sperr])
        uses = editorial.answers_using(session, tenant_id=world["tenant"], entry_id=ausweis)
        assert [u.question for u in uses] == ["Ausweis verloren", "Was kostet der Ausweis?"]
        assert uses[0].rank == 1 and uses[0].feedback == -1 and uses[0].confidence == 0.41
        assert uses[0].answer == "Eine Antwort."
        assert editorial.answers_using(session, tenant_id=world["other"], entry_id=ausweis) == []
        assert (
            len(
                editorial.answers_using(
                    session, tenant_id=world["tenant"], entry_id=ausweis, limit=1
                )
            )
            == 1
        )


def test_gaps_report_groups_wordings(db, world):
    ausweis = world["ids"]["ausweis"]
    t = world["tenant"]
    with db.session() as session:
        _turn(session, t, "Wo melde ich Sperrmüll an?", abstained=True, confidence=0.1, ago_days=3)
        _turn(session, t, "wo melde ich sperrmüll an", abstained=True, confidence=0.2, ago_days=1)
        _turn(session, t, "Was kostet ein Personalausweis?", cites=[ausweis], confidence=0.3)
        _turn(session, t, "Was kostet der Personalausweis", cites=[ausweis], feedback=-1)
        _turn(session, t, "Wie lange dauert ein Reisepass?", abstained=True, ago_days=2)
        _turn(session, t, "Personalausweis beantragen", confidence=0.95)  # answered well
        _turn(session, t, "Hundesteuer?", abstained=True, ago_days=40)  # before the period
        _turn(session, world["other"], "Wo melde ich Sperrmüll an?", abstained=True)
        gaps = editorial.gaps_report(
            session, tenant_id=t, since=utcnow() - dt.timedelta(days=30), low_confidence_below=0.5
        )
    assert [g.count for g in gaps] == [2, 2, 1]
    sperr = next(g for g in gaps if "perrmüll" in g.example)
    assert sperr.example == "wo melde ich sperrmüll an"  # the latest wording
    assert sperr.abstained == 2 and not sperr.cited
    assert sperr.variants == []  # equal after normalising
    kosten = next(g for g in gaps if "kostet" in g.example)
    assert kosten.low_confidence == 1 and kosten.thumbs_down == 1
    assert kosten.entries == [(ausweis, "Personalausweis beantragen")]
    assert len(kosten.variants) == 1  # "ein" and "der" differ: a near-equal wording
    assert gaps[2].example == "Wie lange dauert ein Reisepass?"

    text = editorial.gaps_csv(gaps)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][:3] == ["Frage", "Anzahl", "Zuletzt gefragt (UTC)"]
    assert len(rows) == 4 and rows[1][1] == "2"


def test_gaps_csv_defuses_formulas():
    gap = editorial.Gap(
        example='=HYPERLINK("http://evil.example")', count=1, last_asked=utcnow(), abstained=1
    )
    rows = list(csv.reader(io.StringIO(editorial.gaps_csv([gap]).lstrip("\ufeff")), delimiter=";"))
    assert rows[1][0].startswith("'=")


def test_near_duplicates_need_most_words_in_common():
    norm = editorial.normalise_question
    assert norm("  Wo melde ich   Sperrmüll an?!") == "wo melde ich sperrmüll an"
    words = [
        editorial._content_words(norm(q))
        for q in (
            "Was kostet der Personalausweis?",
            "Wie viel kostet ein Personalausweis",
            "Personalausweis verloren",
            "Reisepass kostet",
        )
    ]
    assert editorial._cluster(words, editorial.NEAR_DUPLICATE) == [0, 0, 2, 3]
