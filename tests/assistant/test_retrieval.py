"""Knowledge base indexing and hybrid retrieval on SQLite (FTS5) and PostgreSQL (GIN), with the
bundled embedder: analyser, idempotent import with stable passage ids, edits, deletion,
tenant separation."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, text

from rathaus.assistant import knowledge, retrieve
from rathaus.assistant.analysis import Analyzer, fold, split_compound, stem, vocabulary_of
from rathaus.assistant.entries import EntryData
from rathaus.core.models import KnowledgeChunk, KnowledgeEntry
from tests.factories import build_tenant

ENTRIES = [
    EntryData(
        source="t",
        external_id="ausweis",
        title="Personalausweis beantragen",
        url="https://stadt.example/ausweis",
        body="## Antrag\n\nDen Personalausweis beantragen Sie persönlich im Bürgerbüro.\n\n"
        "Bringen Sie ein biometrisches Passfoto mit.",
        facts={"fees": "37 Euro", "required_documents": ["Passfoto", "alter Ausweis"]},
    ),
    EntryData(
        source="t",
        external_id="gewerbe",
        title="Gewerbe anmelden",
        url="https://stadt.example/gewerbe",
        body="Wer ein Gewerbe beginnt, zeigt es beim Gewerbeamt an. Die Anmeldung geht online.",
        facts={"fees": "50 Euro"},
    ),
    EntryData(
        source="t",
        external_id="sperrmuell",
        title="Sperrmüll abholen lassen",
        url="https://stadt.example/sperrmuell",
        body="Alte Möbel und große Gegenstände holt der Abfallwirtschaftsbetrieb nach Termin ab.",
    ),
]


def TERMS(text: str) -> list[str]:  # noqa: N802 - reads like a constant transformation
    return Analyzer().terms(text)


def test_analyser_folds_stems_and_splits_compounds() -> None:
    assert fold("Führerschein Straße") == "fuhrerschein strasse"
    assert stem("Anmeldungen") == stem("Anmeldung") == "anmeld"
    vocab = vocabulary_of(["Gewerbe Anmeldung Hund Steuer"])
    assert [stem(p) for p in split_compound("Gewerbeanmeldung", vocab)] == [
        stem("Gewerbe"),
        "anmeld",
    ]
    assert split_compound("Hundesteuer", vocab) == ["hund", "steuer"]
    terms = Analyzer(vocab).terms("Die Gewerbeanmeldung und der Hund")
    assert "anmeld" in terms and "hund" in terms and "die" not in terms


def test_chunks_keep_headings_and_cut_long_paragraphs() -> None:
    body = "## Kosten\n\n" + " ".join(f"Satz Nummer {i} ist hier." for i in range(200))
    passages = knowledge.chunk_body(body, limit=300)
    assert len(passages) > 5
    assert all(p.heading == "Kosten" and len(p.text) <= 320 for p in passages)


def test_import_is_idempotent_and_passage_ids_are_stable(db, embedder) -> None:
    with db.session() as session:
        tenant = build_tenant(session, "a").tenant
        first = knowledge.upsert_entries(
            session, tenant_id=tenant.id, entries=ENTRIES, embedder=embedder
        )
        keys = set(session.scalars(select(KnowledgeChunk.chunk_key)))
        again = knowledge.upsert_entries(
            session, tenant_id=tenant.id, entries=ENTRIES, embedder=embedder
        )
        assert (first.created, again.created, again.unchanged) == (3, 0, 3)
        assert set(session.scalars(select(KnowledgeChunk.chunk_key))) == keys
        assert session.query(KnowledgeEntry).count() == 3
        bad = EntryData(source="t", external_id="x", title="", body="ohne Titel")
        report = knowledge.upsert_entries(
            session, tenant_id=tenant.id, entries=[bad, ENTRIES[0]], embedder=embedder
        )
        assert report.failed == [("x", "Der Eintrag hat keinen Titel.")]
        assert report.unchanged == 1


def test_hybrid_search_finds_by_word_part_spelling_and_meaning(db, embedder) -> None:
    with db.session() as session:
        tenant = build_tenant(session, "a").tenant
        knowledge.upsert_entries(session, tenant_id=tenant.id, entries=ENTRIES, embedder=embedder)
        session.commit()

        def top(query: str) -> str:
            hits = retrieve.search(session, tenant_id=tenant.id, query=query, embedder=embedder)
            return session.get(KnowledgeEntry, hits[0].entry_id).external_id

        assert top("Gewerbeanmeldung") == "gewerbe"  # compound split
        assert top("Perso") == "ausweis"  # character n-grams
        assert top("Wohin mit meinem alten Sofa?") == "sperrmuell"  # meaning
        hits = retrieve.search(session, tenant_id=tenant.id, query="Passfoto", embedder=embedder)
        assert hits[0].chunks and "Passfoto" in hits[0].chunks[0].text
        assert retrieve.fulltext(
            session, tenant.id, TERMS("Passfoto")
        )  # the database index answers


def test_search_by_meaning_alone_for_a_question_in_another_language(db, embedder) -> None:
    """``meaning_only`` (the search for a question in another language) ranks by the e5 signals
    alone: German full text and character n-grams are not even computed."""
    with db.session() as session:
        tenant = build_tenant(session, "a").tenant
        knowledge.upsert_entries(session, tenant_id=tenant.id, entries=ENTRIES, embedder=embedder)
        session.commit()
        for question, expected in (
            ("I want to start a business, where do I register it?", "gewerbe"),
            ("Where can I get rid of my old furniture?", "sperrmuell"),
        ):
            hits = retrieve.search(
                session, tenant_id=tenant.id, query=question, embedder=embedder, meaning_only=True
            )
            assert session.get(KnowledgeEntry, hits[0].entry_id).external_id == expected
            assert all(h.signals["volltext"] == 0 and h.signals["zeichen"] == 0 for h in hits)
            assert hits[0].signals["passage"] > 0 and hits[0].chunks


def test_edit_and_delete_update_the_index(db, embedder) -> None:
    with db.session() as session:
        tenant = build_tenant(session, "a").tenant
        knowledge.upsert_entries(session, tenant_id=tenant.id, entries=ENTRIES, embedder=embedder)
        entry = session.scalar(
            select(KnowledgeEntry).where(KnowledgeEntry.external_id == "gewerbe")
        )
        entry.body = "Reisegewerbekarten stellt das Ordnungsamt aus."
        knowledge.update_entry(session, entry=entry, embedder=embedder)
        session.commit()
        assert [cid for cid, _ in retrieve.fulltext(session, tenant.id, TERMS("Ordnungsamt"))]
        knowledge.delete_entry(session, entry=entry)
        session.commit()
        assert retrieve.fulltext(session, tenant.id, TERMS("Ordnungsamt")) == []
        hits = retrieve.search(session, tenant_id=tenant.id, query="Gewerbe", embedder=embedder)
        assert entry.id not in [h.entry_id for h in hits]


def test_search_never_crosses_tenants(db, embedder) -> None:
    with db.session() as session:
        a = build_tenant(session, "a").tenant
        b = build_tenant(session, "b").tenant
        knowledge.upsert_entries(session, tenant_id=a.id, entries=ENTRIES, embedder=embedder)
        knowledge.upsert_entries(session, tenant_id=b.id, entries=ENTRIES[2:], embedder=embedder)
        session.commit()
        own = {
            e.id
            for e in session.scalars(select(KnowledgeEntry).where(KnowledgeEntry.tenant_id == b.id))
        }
        for query in ("Personalausweis", "Gewerbe", "Sperrmüll"):
            hits = retrieve.search(session, tenant_id=b.id, query=query, embedder=embedder)
            assert {h.entry_id for h in hits} <= own
        assert all(
            session.get(KnowledgeChunk, cid).tenant_id == b.id
            for cid, _ in retrieve.fulltext(session, b.id, TERMS("Ausweis Gewerbe Sperrmüll"))
        )


def test_a_large_index_is_rebuilt_in_the_background_without_serving_deleted_entries(
    db, embedder
) -> None:
    index = retrieve.KnowledgeIndex(background_above=1)  # every index counts as large here
    with db.session() as session:
        tenant = build_tenant(session, "a").tenant
        knowledge.upsert_entries(session, tenant_id=tenant.id, entries=ENTRIES, embedder=embedder)
        session.commit()
        first = retrieve.search(
            session, tenant_id=tenant.id, query="Gewerbe", embedder=embedder, index=index
        )
        gewerbe = first[0].entry_id
        entry = session.get(KnowledgeEntry, gewerbe)
        assert entry.title == "Gewerbe anmelden"
        knowledge.delete_entry(session, entry=entry)
        session.commit()

        old, stale = index.lookup(session, tenant.id, embedder.model, 384)
        assert stale and gewerbe in old.entry_ids  # the previous index answers meanwhile …
        hits = retrieve.search(
            session, tenant_id=tenant.id, query="Gewerbe", embedder=embedder, index=index
        )
        assert hits and gewerbe not in [h.entry_id for h in hits]  # … without the deleted entry

        index.wait(timeout=60)
        new, stale = index.lookup(session, tenant.id, embedder.model, 384)
        assert not stale and gewerbe not in new.entry_ids


def test_whole_entry_vector_is_the_direction_of_its_passages() -> None:
    vectors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    whole = retrieve._entry_vectors(vectors, np.array([0, 0, 2]), 3)
    assert np.allclose(whole[0], [2**-0.5, 2**-0.5, 0])
    assert np.allclose(whole[1], 0)  # an entry without passages scores 0, no division by zero
    assert np.allclose(whole[2], [0, 0, 1])
    empty = np.zeros((0, 3), dtype=np.float32)
    assert retrieve._entry_vectors(empty, np.zeros(0, dtype=np.int64), 0).shape == (0, 3)


def test_search_scores_the_whole_entry_next_to_its_best_passage(db, embedder) -> None:
    """Signal ``eintrag``: the question's cosine with the normalised sum of all of the entry's
    passage vectors, next to its best passage (``passage``)."""
    with db.session() as session:
        tenant = build_tenant(session, "a").tenant
        knowledge.upsert_entries(session, tenant_id=tenant.id, entries=ENTRIES, embedder=embedder)
        session.commit()
        query = "Personalausweis beantragen"
        vector = embedder.embed_queries([query])[0]
        hits = retrieve.search(
            session, tenant_id=tenant.id, query=query, embedder=embedder, query_vector=vector
        )
        idx = retrieve.KNOWLEDGE_INDEX.get(session, tenant.id, embedder.model, 384)
        assert len(hits) == len(ENTRIES)
        for hit in hits:
            passages = session.scalars(
                select(KnowledgeChunk.id).where(KnowledgeChunk.entry_id == hit.entry_id)
            ).all()
            rows = [idx.chunk_pos[c] for c in passages]
            mean = idx.chunk_vectors[rows].sum(axis=0)
            expected = float(mean @ vector / np.linalg.norm(mean))
            assert hit.signals["eintrag"] == pytest.approx(expected, abs=1e-5)


def test_rank_metrics_of_the_evaluation() -> None:
    from rathaus.assistant.evaluation import _rank_metrics

    metrics = _rank_metrics(np.array([1, 3, 0, 6]))  # 0: the right service was not found
    assert metrics == {"recall@1": 0.25, "recall@5": 0.5, "mrr": 0.375}
    assert _rank_metrics(np.array([], dtype=int))["mrr"] == 0.0


def test_evaluation_tells_queries_without_a_shared_search_term(db) -> None:
    """The evaluation's split of the queries that the full text cannot find: their analysed
    terms (stems, compound parts) are compared with the terms stored in the index."""
    from rathaus.assistant.evaluation import entry_terms, shares_no_term

    with db.session() as session:
        tenant = build_tenant(session, "a").tenant
        knowledge.upsert_entries(session, tenant_id=tenant.id, entries=ENTRIES, embedder=None)
        session.commit()
        terms = entry_terms(session, tenant.id)
        ausweis = session.scalar(
            select(KnowledgeEntry.id).where(KnowledgeEntry.external_id == "ausweis")
        )
        analyzer = Analyzer(knowledge.tenant_vocabulary(session, tenant.id))
        assert "passfoto" in terms[ausweis]  # from a passage, not from the title
        assert not shares_no_term("Personalausweise beantragen", terms[ausweis], analyzer)
        assert shares_no_term("Reisepass verloren", terms[ausweis], analyzer)


def test_fast_parts_of_the_search_compute_what_the_plain_ones_did(db, embedder) -> None:
    """The speed-ups change no result: the n-gram scores are exactly ``q @ matrix``, the best
    passage per entry is the maximum over its passages, the top entries are the sorted ones
    (equal scores by position), and FTS5's ``rank`` gives the scores of ``bm25(…)``."""
    with db.session() as session:
        tenant = build_tenant(session, "a").tenant
        knowledge.upsert_entries(session, tenant_id=tenant.id, entries=ENTRIES, embedder=embedder)
        session.commit()
        idx = retrieve.KNOWLEDGE_INDEX.get(session, tenant.id, embedder.model, 384)
        n = len(idx.entry_ids)
        for query in ("Perso", "Gewerbeanmeldung", "Sperrmüll abholen", "xyz"):
            plain = idx.char_vectorizer.transform([fold(query)]) @ idx.char_matrix
            fast = retrieve._char_scores(idx, query, n)
            assert np.array_equal(fast, plain.toarray().ravel())
        for e in range(n):
            rows = [idx.chunk_pos[c] for c in idx.chunk_ids[idx.passages_of(e)].tolist()]
            assert sorted(idx.chunk_entry_pos[rows].tolist()) == [e] * len(rows)
        assert sum(len(idx.passages_of(e)) for e in range(n)) == len(idx.chunk_ids)

        scores = np.array([0.5, 2.0, -1.0, 2.0, 0.7, 0.5])
        assert retrieve._top(scores, 3).tolist() == [1, 3, 4]
        assert retrieve._top(scores, 5).tolist() == [1, 3, 4, 0, 5]
        assert retrieve._top(scores, 10).tolist() == [1, 3, 4, 0, 5, 2]
        assert retrieve._top(scores, 0).tolist() == []

        if session.get_bind().dialect.name == "sqlite":
            terms = TERMS("Personalausweis Passfoto beantragen Gewerbe")
            match = " OR ".join(f'"{t}"' for t in dict.fromkeys(terms))
            plain_rows = session.execute(
                text(
                    "SELECT chunk_id, -bm25(knowledge_fts, 4.0, 1.0) AS score FROM knowledge_fts "
                    "WHERE knowledge_fts MATCH :m AND tenant_id = :t ORDER BY score DESC"
                ),
                {"m": match, "t": tenant.id},
            ).all()
            assert len(plain_rows) >= 2
            assert retrieve.fulltext(session, tenant.id, terms) == [
                (int(c), float(s)) for c, s in plain_rows
            ]


def test_a_large_index_is_checked_in_the_background_not_before_each_question(db, embedder) -> None:
    index = retrieve.KnowledgeIndex(background_above=1, recheck_s=3600)
    with db.session() as session:
        tenant = build_tenant(session, "a").tenant
        knowledge.upsert_entries(session, tenant_id=tenant.id, entries=ENTRIES, embedder=embedder)
        session.commit()

        def ask(query: str) -> list[int]:
            hits = retrieve.search(
                session, tenant_id=tenant.id, query=query, embedder=embedder, index=index
            )
            return [h.entry_id for h in hits]

        gewerbe = ask("Gewerbe")[0]
        served, verify = index.serve(session, tenant.id, embedder.model, 384)
        assert verify  # a large index: its hits are checked against the database
        knowledge.delete_entry(session, entry=session.get(KnowledgeEntry, gewerbe))
        session.commit()
        assert gewerbe not in ask("Gewerbe")  # not served although the index still holds it
        assert index.serve(session, tenant.id, embedder.model, 384)[0] is served  # not checked

        index.recheck_s = 0  # now due: the next question starts the check in the background
        ask("Gewerbe")
        index.wait(timeout=60)
        current, _ = index.serve(session, tenant.id, embedder.model, 384)
        assert current is not served and gewerbe not in current.entry_ids
        index.wait(timeout=60)
