"""Summaries of documents, case files and long council papers: hierarchical (per section, then
across sections), every sentence linked to its source paragraph, with a coverage report.

Extractive mode needs only the embedder: sentences are picked verbatim by centrality and MMR
over sentence embeddings, with position and section priors. Generated mode gives a language model
only the selected passages and keeps only sentences that its cited passage supports.
Nothing is silently truncated: text over ``writing.max_document_chars`` is refused, and the
coverage report names every section and why it was or was not used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rathaus.assistant.analysis import STOP_WORDS, stem, words
from rathaus.assistant.answer import supported_by
from rathaus.core.errors import RathausError
from rathaus.core.languages import name_of
from rathaus.writing.sections import (
    PRIORITY_HEADINGS,
    USED,
    Paragraph,
    Part,
    Section,
    Sentence,
    split_sections,
)

EXTRACTIVE = "extraktiv"
GENERATED = "generiert"
MODES = (EXTRACTIVE, GENERATED)
# Sentences embedded at most (plus one per section): keeps 60,000 characters under 10 s on
# two cores; the rest are ranked by TF-IDF only, and the coverage report says so.
EMBED_BUDGET = 48
EMBED_CHARS = 300  # what of a very long "sentence" (a table row run-on) is embedded
MIN_WORDS, MAX_WORDS = 5, 80
MAX_PASSAGES = 24  # what a generating model sees at most (fits a 2,048-token context)
BUNDLED_MODEL_NOTE = "Demo-Qualität"


class SummaryError(RathausError):
    """The input cannot be summarised (empty, too long); the message says what to do."""


@dataclass
class SummarySentence:
    """A summary sentence and where it comes from (``part_key`` names the document/message)."""

    text: str
    paragraph_id: str
    section_id: int
    section_title: str
    part_key: str
    start: int
    end: int
    supported: bool
    verbatim: bool
    sources: list[str] = field(default_factory=list)  # paragraph ids that support it


@dataclass
class SectionSummary:
    section_id: int
    title: str
    part_key: str
    sentences: list[SummarySentence]


@dataclass
class CoverageRow:
    section_id: int
    title: str
    part_key: str
    status: str  # verwendet, leer, doppelt, Formalien
    reason: str
    chars: int
    paragraphs: int
    chars_used: int
    paragraphs_used: int
    sentences: int
    embedded: int  # sentences ranked with embeddings (the rest by TF-IDF)
    represented: bool  # a sentence of it is in the overall summary


@dataclass
class Coverage:
    rows: list[CoverageRow]
    total_chars: int
    used_chars: int
    share_text: float
    sections_total: int
    sections_used: int
    sections_in_summary: int
    sections_in_section_summaries: int
    share_sections: float  # used sections with a sentence in the section summaries


@dataclass
class PartInfo:
    key: str
    title: str
    url: str | None
    date: str | None
    kind: str
    chars: int


@dataclass
class Summary:
    mode: str
    label: str
    sentences: list[SummarySentence]
    sections: list[SectionSummary]
    coverage: Coverage
    parts: list[PartInfo]
    paragraphs: list[Paragraph]
    notes: list[str]
    removed: list[str]  # generated sentences without support, never shown as summary
    language: str
    model: str | None
    runtime_s: float
    document_chars: int

    def to_dict(self, *, with_paragraphs: bool = False) -> dict[str, Any]:
        out = {
            "mode": self.mode,
            "label": self.label,
            "language": self.language,
            "model": self.model,
            "runtime_s": round(self.runtime_s, 3),
            "document_chars": self.document_chars,
            "notes": self.notes,
            "removed": self.removed,
            "sentences": [asdict(s) for s in self.sentences],
            "sections": [asdict(s) for s in self.sections],
            "coverage": asdict(self.coverage),
            "parts": [asdict(p) for p in self.parts],
        }
        if with_paragraphs:
            out["paragraphs"] = [
                {"id": p.id, "section_id": p.section_id, "part_key": p.part_key, "text": p.text,
                 "start": p.start, "end": p.end, "kind": p.kind, "reason": p.reason}
                for p in self.paragraphs
            ]  # fmt: skip
        return out


# -- input checks -------------------------------------------------------------------------------


def check_input(parts: Sequence[Part], *, max_chars: int) -> int:
    """The total length; raises :class:`SummaryError` for empty or over-long input."""
    total = sum(len(p.text) for p in parts)
    if not any(p.text.strip() for p in parts):
        raise SummaryError(
            "Der Text ist leer: es gibt nichts zusammenzufassen. Bitte Text einfügen oder eine "
            "Datei mit Text (TXT, PDF, DOCX) hochladen."
        )
    if total > max_chars:
        given, allowed = f"{total:,}".replace(",", "."), f"{max_chars:,}".replace(",", ".")
        raise SummaryError(
            f"Der Text ist mit {given} Zeichen länger als die erlaubten {allowed} Zeichen "
            "(Einstellung writing.max_document_chars). Er wird nicht gekürzt: bitte in Teilen "
            "zusammenfassen oder die Grenze anheben."
        )
    return total


def language_note(parts: Sequence[Part]) -> tuple[str, str | None]:
    from rathaus.inbox.classify import detect_language

    sample = " ".join(p.text[:3000] for p in parts)[:5000]
    code = detect_language(sample).label
    if code == "de":
        return code, None
    name = name_of(code)
    return code, (
        f"Die Sprache des Textes wurde als {name} erkannt, nicht als Deutsch. Die "
        "Zusammenfassung wurde trotzdem erstellt; sie ist weniger verlässlich und bleibt in der "
        "Sprache des Textes."
    )


# -- ranking ------------------------------------------------------------------------------------


def _terms(text: str) -> list[str]:
    return [stem(w) for w in words(text) if len(w) > 2 and w not in STOP_WORDS]


def _eligible(s: Sentence) -> bool:
    letters = sum(c.isalpha() for c in s.text)
    return MIN_WORDS <= s.words <= MAX_WORDS and letters >= 0.6 * len(s.text.replace(" ", ""))


def _tfidf_scores(groups: list[list[Sentence]]) -> list[np.ndarray]:
    """Per section: each sentence's TF-IDF cosine to its section's and the document's centroid."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    flat = [s.text for g in groups for s in g]
    if not flat:
        return [np.zeros(0) for _ in groups]
    vectorizer = TfidfVectorizer(analyzer=_terms, sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform(flat)
    except ValueError:  # no terms at all
        return [np.zeros(len(g)) for g in groups]
    doc = np.asarray(matrix.mean(axis=0)).ravel()
    doc /= np.linalg.norm(doc) or 1.0
    out, pos = [], 0
    for g in groups:
        block = matrix[pos : pos + len(g)]
        pos += len(g)
        centre = np.asarray(block.mean(axis=0)).ravel()
        centre /= np.linalg.norm(centre) or 1.0
        out.append(0.5 * block.dot(centre) + 0.5 * block.dot(doc))
    return out


def _mmr(
    candidates: list[int], vectors: np.ndarray, relevance: np.ndarray, k: int, lam: float = 0.7
) -> list[int]:
    chosen: list[int] = []
    pool = list(candidates)
    while pool and len(chosen) < k:
        if chosen:
            redundancy = (vectors[pool] @ vectors[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(pool))
        scores = lam * relevance[pool] - (1 - lam) * redundancy
        best = pool[int(np.argmax(scores))]
        chosen.append(best)
        pool.remove(best)
    return chosen


def _section_quota(section: Section) -> int:
    chars = sum(len(p.text) for p in section.used_paragraphs)
    return 1 if chars < 1500 else 2 if chars < 6000 else 3


@dataclass
class _Ranked:
    sentences: list[Sentence]
    section_of: list[Section]
    vectors: np.ndarray
    relevance: np.ndarray
    embedded: dict[int, int]  # section id -> sentences embedded
    by_section: dict[int, list[int]]


def _rank(sections: list[Section], embedder: Any, budget: int = EMBED_BUDGET) -> _Ranked:
    used = [s for s in sections if s.status == USED]
    groups: list[list[Sentence]] = []
    for section in used:
        all_ = [s for p in section.used_paragraphs for s in p.sentences]
        eligible = [s for s in all_ if _eligible(s)]
        # A section of fragments only (lists, short lines) is still represented by its longest.
        groups.append(eligible or sorted(all_, key=lambda s: -s.words)[:3])
    tfidf = _tfidf_scores(groups)
    total = sum(len(g) for g in groups) or 1
    picked: list[Sentence] = []
    section_of: list[Section] = []
    prior: list[float] = []
    embedded: dict[int, int] = {}
    for section, group, scores in zip(used, groups, tfidf, strict=True):
        if not group:
            embedded[section.id] = 0
            continue
        quota = max(1, round(budget * len(group) / total))
        position = np.array([0.1 if i == 0 else 0.05 if i == 1 else 0.0 for i in range(len(group))])
        order = np.argsort(-(scores + position), kind="stable")[:quota]
        embedded[section.id] = len(order)
        bonus = 0.08 if section.heading_key in PRIORITY_HEADINGS else 0.0
        for i in sorted(order):
            picked.append(group[i])
            section_of.append(section)
            short = -0.04 if group[i].words < 8 else 0.0
            prior.append(float(position[i] * 0.5 + bonus + short))
    if not picked:
        return _Ranked([], [], np.zeros((0, 1)), np.zeros(0), embedded, {})
    texts = [s.text[:EMBED_CHARS] for s in picked]
    # Batches of similar length: the model pads each batch to its longest text.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = np.zeros((len(texts), 0), dtype=np.float32)
    for b in range(0, len(order), 32):
        batch = order[b : b + 32]
        found = embedder.embed_passages([texts[i] for i in batch])
        if vectors.shape[1] == 0:
            vectors = np.zeros((len(texts), found.shape[1]), dtype=np.float32)
        vectors[batch] = found
    by_section: dict[int, list[int]] = {}
    for i, section in enumerate(section_of):
        by_section.setdefault(section.id, []).append(i)
    centres = {}
    weights = []
    for sid, idx in by_section.items():
        c = vectors[idx].mean(axis=0)
        centres[sid] = c / (np.linalg.norm(c) or 1.0)
        weights.append((centres[sid], sum(len(p.text) for p in _section(used, sid).paragraphs)))
    doc = sum(c * w for c, w in weights)
    doc = doc / (np.linalg.norm(doc) or 1.0)
    relevance = np.array(
        [
            0.5 * float(vectors[i] @ centres[section_of[i].id]) + 0.5 * float(vectors[i] @ doc)
            for i in range(len(picked))
        ]
    ) + np.array(prior)
    return _Ranked(picked, section_of, vectors, relevance, embedded, by_section)


def _section(sections: list[Section], section_id: int) -> Section:
    return next(s for s in sections if s.id == section_id)


# -- assembling ---------------------------------------------------------------------------------


def _link(sentence: Sentence, section: Section, paragraph: Paragraph) -> SummarySentence:
    verbatim = sentence.text in paragraph.text
    return SummarySentence(
        text=sentence.text,
        paragraph_id=paragraph.id,
        section_id=section.id,
        section_title=section.title,
        part_key=paragraph.part_key,
        start=sentence.start,
        end=sentence.end,
        supported=verbatim and supported_by(sentence.text, [paragraph.text]),
        verbatim=verbatim,
        sources=[paragraph.id],
    )


def summarize_parts(
    parts: Sequence[Part],
    *,
    embedder: Any,
    sentences: int = 8,
    mode: str = EXTRACTIVE,
    llm: Any = None,
    max_chars: int = 2_000_000,
) -> Summary:
    """The hierarchical summary of ``parts`` (one document, the documents and messages of a case,
    or the files of a council paper). Raises :class:`SummaryError` for empty or over-long input.
    """
    started = time.perf_counter()
    if mode not in MODES:
        raise SummaryError(f"Unbekannter Modus „{mode}“; erlaubt: {', '.join(MODES)}.")
    total = check_input(parts, max_chars=max_chars)
    language, note = language_note(parts)
    notes = [note] if note else []
    sections = split_sections(parts)
    paragraphs = {p.id: p for s in sections for p in s.paragraphs}
    ranked = _rank(sections, embedder)
    sentence_count = max(1, min(int(sentences), 100))

    section_picks: dict[int, list[int]] = {
        sid: sorted(
            _mmr(idx, ranked.vectors, ranked.relevance, _section_quota(_section(sections, sid)))
        )
        for sid, idx in ranked.by_section.items()
    }
    # Across sections: MMR over the section picks, preferring sections not yet represented.
    pool = [i for idx in section_picks.values() for i in idx]
    chosen: list[int] = []
    covered: set[int] = set()
    while pool and len(chosen) < sentence_count:
        redundancy = (
            (ranked.vectors[pool] @ ranked.vectors[chosen].T).max(axis=1)
            if chosen
            else np.zeros(len(pool))
        )
        fresh = np.array([0.1 if ranked.section_of[i].id not in covered else 0.0 for i in pool])
        scores = 0.7 * ranked.relevance[pool] - 0.3 * redundancy + fresh
        best = pool[int(np.argmax(scores))]
        chosen.append(best)
        covered.add(ranked.section_of[best].id)
        pool.remove(best)
    chosen.sort(key=lambda i: ranked.sentences[i].index)  # document order

    def linked(i: int) -> SummarySentence:
        s = ranked.sentences[i]
        return _link(s, ranked.section_of[i], paragraphs[s.paragraph_id])

    overall = [linked(i) for i in chosen]
    section_summaries = [
        SectionSummary(sid, _section(sections, sid).title, _section(sections, sid).part_key,
                       [linked(i) for i in idx])
        for sid, idx in sorted(section_picks.items())
    ]  # fmt: skip
    label = "Extraktiv: wörtliche Sätze aus dem Text (ohne Sprachmodell)"
    removed: list[str] = []
    model_name = None
    used_mode = EXTRACTIVE
    screening = None
    if mode == GENERATED and llm is not None:
        from rathaus.governance.injection import screen, writing_warning

        screening = screen("\n\n".join(p.text for p in parts))
        if screening.found:
            notes.append(
                writing_warning(screening) + " Deshalb ohne Sprachmodell: gezeigt wird die "
                "extraktive Zusammenfassung."
            )
    if mode == GENERATED and not (screening is not None and screening.found):
        if llm is None:
            notes.append(
                "Es ist kein Sprachmodell eingerichtet (RATHAUS_LLM__BACKEND=none); gezeigt wird "
                "die extraktive Zusammenfassung."
            )
        else:
            from rathaus.ai.llm import ModelUnavailableError
            from rathaus.writing.summary_generate import generate

            # The chosen sentences and the best other section picks; a small context suffices.
            limit = min(max(2 * sentence_count, 6), MAX_PASSAGES)
            extra = sorted(pool, key=lambda i: -ranked.relevance[i])[: max(0, limit - len(chosen))]
            order = sorted(chosen + extra, key=lambda i: ranked.sentences[i].index)
            passages = [linked(i) for i in order]
            try:
                generated, removed = generate(llm, passages, sentences=sentence_count)
            except ModelUnavailableError as exc:
                notes.append(
                    f"Das Sprachmodell ist nicht erreichbar ({exc}); gezeigt wird die extraktive "
                    "Zusammenfassung."
                )
            else:
                if generated:
                    overall, used_mode, model_name = generated, GENERATED, llm.model
                    label = f"Generiert mit {llm.model}"
                    if getattr(llm, "name", "") == "local":
                        label += f" ({BUNDLED_MODEL_NOTE}: kleines mitgeliefertes Modell)"
                    label += "; jeder Satz gegen seine Fundstelle geprüft"
                else:
                    notes.append(
                        "Kein generierter Satz ließ sich an einer Fundstelle belegen; gezeigt wird "
                        "die extraktive Zusammenfassung."
                    )
                if removed:
                    notes.append(
                        f"{len(removed)} generierte(r) Satz/Sätze ohne Beleg in der Fundstelle "
                        "wurde(n) entfernt."
                    )
    coverage = _coverage(sections, ranked, overall, section_summaries, total)
    if coverage.used_chars < coverage.total_chars:
        notes.append(
            f"{coverage.share_text:.0%} des Textes flossen ein; der Rest ist leer, doppelt oder "
            "Formalien (siehe Abdeckung)."
        )
    part_infos = [PartInfo(p.key, p.title, p.url, p.date, p.kind, len(p.text)) for p in parts]
    return Summary(
        mode=used_mode,
        label=label,
        sentences=overall,
        sections=section_summaries,
        coverage=coverage,
        parts=part_infos,
        paragraphs=list(paragraphs.values()),
        notes=notes,
        removed=removed,
        language=language,
        model=model_name,
        runtime_s=time.perf_counter() - started,
        document_chars=total,
    )


def _coverage(
    sections: list[Section],
    ranked: _Ranked,
    overall: list[SummarySentence],
    section_summaries: list[SectionSummary],
    total: int,
) -> Coverage:
    in_summary = {s.section_id for s in overall}
    in_sections = {s.section_id for s in section_summaries if s.sentences}
    rows = []
    for section in sections:
        used = section.used_paragraphs
        rows.append(
            CoverageRow(
                section_id=section.id,
                title=section.title,
                part_key=section.part_key,
                status=section.status,
                reason=section.reason,
                chars=section.chars,
                paragraphs=len(section.paragraphs),
                chars_used=sum(len(p.text) for p in used),
                paragraphs_used=len(used),
                sentences=sum(len(p.sentences) for p in used),
                embedded=ranked.embedded.get(section.id, 0),
                represented=section.id in in_summary,
            )
        )
    text_chars = sum(r.chars for r in rows) or 1
    used_chars = sum(r.chars_used for r in rows)
    used_sections = [r for r in rows if r.status == USED]
    return Coverage(
        rows=rows,
        total_chars=sum(r.chars for r in rows),
        used_chars=used_chars,
        share_text=round(used_chars / text_chars, 4),
        sections_total=len(rows),
        sections_used=len(used_sections),
        sections_in_summary=len(in_summary),
        sections_in_section_summaries=len(in_sections),
        share_sections=round(len(in_sections) / len(used_sections), 4) if used_sections else 0.0,
    )


def summarize_text(
    text: str,
    *,
    embedder: Any,
    title: str = "",
    sentences: int = 8,
    mode: str = EXTRACTIVE,
    llm: Any = None,
    max_chars: int = 2_000_000,
) -> Summary:
    """One document's summary; see :func:`summarize_parts`."""
    return summarize_parts(
        [Part(key="text", title=title, text=text.replace("\r\n", "\n"))],
        embedder=embedder,
        sentences=sentences,
        mode=mode,
        llm=llm,
        max_chars=max_chars,
    )
