"""The knowledge base: entries are stored, cut into passages (chunks) and indexed.

Indexing keeps three things in step for every passage: the analysed terms in the full-text index
(SQLite FTS5 table ``knowledge_fts`` or PostgreSQL's GIN index over ``knowledge_chunks``), a
passage vector in ``embeddings`` (owner ``knowledge_chunk``), and per entry a vector of its
title and keywords (owner ``knowledge_entry``). Import is idempotent: an entry is identified by
``(source, external_id)``; unchanged content is skipped, changed content replaces the entry's
passages (unchanged passages keep their ``chunk_key``) after its old content was kept as a
version (:mod:`rathaus.assistant.versions`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from rathaus.assistant import versions
from rathaus.assistant.analysis import Analyzer, vocabulary_of
from rathaus.assistant.entries import FACTS, LIST_FACTS, EntryData
from rathaus.core.models import Embedding, KnowledgeChunk, KnowledgeEntry, utcnow
from rathaus.inbox.vectors import delete_vectors, store_vectors, text_hash

CHUNK_OWNER = "knowledge_chunk"
ENTRY_OWNER = "knowledge_entry"
CHUNK_CHARS = 700  # a passage is at most about this long (whole sentences)
FACTS_HEADING = "Auf einen Blick"

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ0-9„\"(])")


class KnowledgeError(Exception):
    pass


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.failed)


@dataclass
class Passage:
    heading: str
    text: str


# ---------------------------------------------------------------------------- chunking


def _sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(paragraph) if s.strip()]


def sections(body: str) -> list[tuple[str, list[str]]]:
    """``(heading, paragraphs)`` in order; a line ``## Heading`` starts a section."""
    out: list[tuple[str, list[str]]] = [("", [])]
    for block in re.split(r"\n\s*\n", body.replace("\r\n", "\n")):
        lines = [line.rstrip() for line in block.strip().split("\n") if line.strip()]
        while lines and lines[0].lstrip().startswith("#"):
            out.append((lines.pop(0).lstrip("#").strip(), []))
        if lines:
            out[-1][1].append("\n".join(lines))
    return [(h, ps) for h, ps in out if ps or h]


def chunk_body(body: str, *, limit: int = CHUNK_CHARS) -> list[Passage]:
    """Passages of at most about ``limit`` characters: paragraphs are packed together within a
    section; a longer paragraph is cut between sentences. A section heading stays with each of
    its passages."""
    passages: list[Passage] = []
    for heading, paragraphs in sections(body):
        buffer = ""
        pieces: list[str] = []
        for paragraph in paragraphs:
            if len(paragraph) <= limit:
                pieces.append(paragraph)
            else:
                current = ""
                for sentence in _sentences(paragraph):
                    if current and len(current) + len(sentence) + 1 > limit:
                        pieces.append(current)
                        current = ""
                    current = f"{current} {sentence}".strip()
                if current:
                    pieces.append(current)
        for piece in pieces:
            if buffer and len(buffer) + len(piece) + 2 > limit:
                passages.append(Passage(heading, buffer))
                buffer = ""
            buffer = f"{buffer}\n\n{piece}".strip()
        if buffer:
            passages.append(Passage(heading, buffer))
    return passages


def facts_text(facts: dict[str, Any]) -> str:
    """The facts as one readable passage ("Gebühren: 37 Euro …"), so questions about fees or
    documents find them in the full text and by meaning."""
    lines = []
    for key, label in FACTS.items():
        value = facts.get(key)
        if not value:
            continue
        if key == "forms":
            items = [str(f.get("title") or f.get("url")) for f in value if isinstance(f, dict)]
            value = "; ".join(items)
        elif key in LIST_FACTS and isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        elif key in ("online_url", "appointment_url"):
            continue  # a link is shown as a fact, it does not help finding the entry
        lines.append(f"{label}: {value}")
    return "\n".join(lines)


def entry_passages(entry: KnowledgeEntry) -> list[Passage]:
    passages = chunk_body(entry.body or "")
    facts = facts_text(entry.facts or {})
    if facts:
        passages.append(Passage(FACTS_HEADING, facts))
    if not passages:
        passages.append(Passage("", entry.title))
    return passages


def chunk_key(entry: KnowledgeEntry, passage: Passage) -> str:
    raw = f"{entry.source}\x1f{entry.external_id}\x1f{passage.heading}\x1f{passage.text}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def passage_for_embedding(title: str, heading: str, text_: str) -> str:
    lead = f"{title} – {heading}" if heading and heading != title else title
    return f"{lead}: {text_}"


def title_for_embedding(entry: KnowledgeEntry) -> str:
    return f"{entry.title}. {entry.keywords}".strip(" .") if entry.keywords else entry.title


# ---------------------------------------------------------------------------- vocabulary


def tenant_vocabulary(session: Session, tenant_id: int, extra: Iterable[str] = ()) -> set[str]:
    """Stems of the words of a tenant's knowledge base (for splitting compounds)."""
    rows = session.execute(
        select(KnowledgeEntry.title, KnowledgeEntry.keywords, KnowledgeEntry.body).where(
            KnowledgeEntry.tenant_id == tenant_id
        )
    )
    texts = [f"{t} {k} {b}" for t, k, b in rows]
    return vocabulary_of([*texts, *extra])


# ---------------------------------------------------------------------------- full-text index


def _fts_delete(session: Session, chunk_ids: Sequence[int]) -> None:
    if chunk_ids and session.get_bind().dialect.name == "sqlite":
        session.execute(
            text("DELETE FROM knowledge_fts WHERE chunk_id = :id"),
            [{"id": int(i)} for i in chunk_ids],
        )


def _fts_insert(session: Session, chunks: Sequence[KnowledgeChunk]) -> None:
    if chunks and session.get_bind().dialect.name == "sqlite":
        session.execute(
            text(
                "INSERT INTO knowledge_fts (search_title, search_text, tenant_id, chunk_id) "
                "VALUES (:t, :s, :tenant, :id)"
            ),
            [
                {"t": c.search_title, "s": c.search_text, "tenant": c.tenant_id, "id": c.id}
                for c in chunks
            ],
        )
    # PostgreSQL: the GIN expression index over knowledge_chunks follows by itself.


# ---------------------------------------------------------------------------- storing


def _values(data: EntryData) -> dict[str, Any]:
    """The columns an import sets from ``data``."""
    return {
        "title": data.title.strip()[:300],
        "url": (data.url or "").strip()[:500],
        "body": data.body or "",
        "keywords": data.keywords or "",
        "leika_key": data.leika_key if data.leika_key and len(data.leika_key) == 14 else None,
        "facts": dict(data.facts or {}),
        "language": data.language or "de",
        "content_sha256": data.content_sha256(),
    }


def _apply(entry: KnowledgeEntry, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(entry, key, value)


def _validate(data: EntryData) -> None:
    if not data.external_id or not str(data.external_id).strip():
        raise KnowledgeError("Der Eintrag hat keine Kennung (id).")
    if not data.title or not data.title.strip():
        raise KnowledgeError("Der Eintrag hat keinen Titel.")
    if data.url and not re.match(r"^https?://", data.url.strip()):
        raise KnowledgeError(f"Die Adresse „{data.url[:80]}“ ist kein http(s)-Link.")


def _rechunk(
    session: Session, entries: Sequence[KnowledgeEntry], analyzer: Analyzer
) -> list[tuple[KnowledgeEntry, list[KnowledgeChunk]]]:
    """Replace the passages of ``entries``; passages with unchanged text keep their row."""
    result = []
    for entry in entries:
        old = {c.chunk_key: c for c in entry.chunks} if entry.id else {}
        keep: list[KnowledgeChunk] = []
        fresh: list[KnowledgeChunk] = []
        title_terms = " ".join(analyzer.terms(f"{entry.title} {entry.keywords}"))
        for ordinal, passage in enumerate(entry_passages(entry)):
            key = chunk_key(entry, passage)
            chunk = old.pop(key, None)
            if chunk is None:
                chunk = KnowledgeChunk(tenant_id=entry.tenant_id, chunk_key=key, text=passage.text)
                fresh.append(chunk)
            else:
                keep.append(chunk)
            chunk.ordinal = ordinal
            chunk.heading = passage.heading[:300]
            chunk.text = passage.text
            head_terms = " ".join(analyzer.terms(passage.heading))
            chunk.search_title = f"{title_terms} {head_terms}".strip()
            chunk.search_text = " ".join(analyzer.terms(passage.text))
            chunk.text_sha256 = hashlib.sha256(passage.text.encode("utf-8")).hexdigest()
        gone = list(old.values())
        _fts_delete(session, [c.id for c in gone if c.id])
        delete_vectors(session, entry.tenant_id, [c.id for c in gone if c.id], owner=CHUNK_OWNER)
        for chunk in gone:
            entry.chunks.remove(chunk)
        for chunk in fresh:
            entry.chunks.append(chunk)
        result.append((entry, [*keep, *fresh]))
    session.flush()
    return result


def _embed_missing(
    session: Session,
    tenant_id: int,
    owner: str,
    ids: Sequence[int],
    texts: Sequence[str],
    embedder: Any,
) -> None:
    """Embed and store only the texts whose stored vector is missing or was made from other
    text (re-importing or re-indexing unchanged passages costs no model time)."""
    if not ids:
        return
    stored = dict(
        session.execute(
            select(Embedding.owner_id, Embedding.text_sha256).where(
                Embedding.tenant_id == tenant_id,
                Embedding.owner_type == owner,
                Embedding.model == embedder.model,
                Embedding.owner_id.in_(list(ids)),
            )
        ).all()
    )
    todo = [(i, t) for i, t in zip(ids, texts, strict=True) if stored.get(i) != text_hash(t)]
    if todo:
        vectors = embedder.embed_passages([t for _, t in todo])
        store_vectors(
            session,
            tenant_id,
            [i for i, _ in todo],
            vectors,
            embedder.model,
            [t for _, t in todo],
            owner=owner,
        )


def _index(
    session: Session,
    tenant_id: int,
    done: Sequence[tuple[KnowledgeEntry, list[KnowledgeChunk]]],
    embedder: Any,
) -> None:
    chunks = [c for _, cs in done for c in cs]
    _fts_delete(session, [c.id for c in chunks])
    _fts_insert(session, chunks)
    if embedder is None:
        return
    by_entry = {e.id: e for e, _ in done}
    texts = [passage_for_embedding(by_entry[c.entry_id].title, c.heading, c.text) for c in chunks]
    _embed_missing(session, tenant_id, CHUNK_OWNER, [c.id for c in chunks], texts, embedder)
    entries = [e for e, _ in done]
    titles = [title_for_embedding(e) for e in entries]
    _embed_missing(session, tenant_id, ENTRY_OWNER, [e.id for e in entries], titles, embedder)


def upsert_entries(
    session: Session,
    *,
    tenant_id: int,
    entries: Iterable[EntryData],
    embedder: Any,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 16,
    actor: str = "",
) -> ImportReport:
    """Store ``entries`` (new, changed or unchanged) and index what changed.

    A single bad entry is reported in ``failed`` and the others are still imported. Entries are
    indexed in batches; the caller commits. ``embedder`` None skips vectors (full text only).
    The content a changed entry had is kept as a version by "Import <source>" (with ``actor``,
    the person who started the import, in brackets when given).
    """
    report = ImportReport()
    incoming = list(entries)
    analyzer = Analyzer(
        tenant_vocabulary(
            session, tenant_id, (f"{e.title} {e.keywords} {e.body}" for e in incoming)
        )
    )
    pending: list[KnowledgeEntry] = []

    def flush() -> None:
        if pending:
            _index(session, tenant_id, _rechunk(session, pending, analyzer), embedder)
            if progress:
                progress(len(pending))
            pending.clear()

    seen: set[tuple[str, str]] = set()
    for data in incoming:
        key = (data.source, str(data.external_id))
        try:
            _validate(data)
            if key in seen:
                raise KnowledgeError("Die Kennung kommt in dieser Datei doppelt vor.")
            seen.add(key)
        except KnowledgeError as exc:
            report.failed.append((str(data.external_id or data.title or "?"), str(exc)))
            continue
        entry = session.scalar(
            select(KnowledgeEntry).where(
                KnowledgeEntry.tenant_id == tenant_id,
                KnowledgeEntry.source == data.source,
                KnowledgeEntry.external_id == str(data.external_id),
            )
        )
        if entry is not None and entry.content_sha256 == data.content_sha256():
            report.unchanged += 1
            if progress:
                progress(1)
            continue
        values = _values(data)
        if entry is None:
            entry = KnowledgeEntry(
                tenant_id=tenant_id, source=data.source, external_id=str(data.external_id)
            )
            session.add(entry)
            report.created += 1
        else:
            report.updated += 1
            by = f"Import {data.source}" + (f" ({actor})" if actor else "")
            versions.record(session, entry=entry, after=values, changed_by=by, reason="import")
        _apply(entry, values)
        session.flush()
        pending.append(entry)
        if len(pending) >= batch_size:
            flush()
    flush()
    return report


def update_entry(session: Session, *, entry: KnowledgeEntry, embedder: Any) -> None:
    """Re-chunk and re-index one entry after its fields were edited (editor UI)."""
    entry.content_sha256 = EntryData(
        source=entry.source,
        external_id=entry.external_id,
        title=entry.title,
        body=entry.body,
        url=entry.url,
        keywords=entry.keywords,
        leika_key=entry.leika_key,
        facts=entry.facts,
        language=entry.language,
    ).content_sha256()
    entry.updated_at = utcnow()
    session.flush()
    analyzer = Analyzer(tenant_vocabulary(session, entry.tenant_id))
    _index(session, entry.tenant_id, _rechunk(session, [entry], analyzer), embedder)


def delete_entry(session: Session, *, entry: KnowledgeEntry) -> None:
    """Remove an entry with its passages, index rows and vectors."""
    ids = [c.id for c in entry.chunks]
    _fts_delete(session, ids)
    delete_vectors(session, entry.tenant_id, ids, owner=CHUNK_OWNER)
    delete_vectors(session, entry.tenant_id, [entry.id], owner=ENTRY_OWNER)
    session.delete(entry)
    session.flush()


def reindex(
    session: Session,
    *,
    tenant_id: int,
    embedder: Any,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 16,
) -> int:
    """Rebuild passages, full-text rows and vectors of every entry of a tenant."""
    analyzer = Analyzer(tenant_vocabulary(session, tenant_id))
    entries = list(
        session.scalars(
            select(KnowledgeEntry)
            .where(KnowledgeEntry.tenant_id == tenant_id)
            .order_by(KnowledgeEntry.id)
        )
    )
    for start in range(0, len(entries), batch_size):
        part = entries[start : start + batch_size]
        _index(session, tenant_id, _rechunk(session, part, analyzer), embedder)
        if progress:
            progress(len(part))
    return len(entries)
