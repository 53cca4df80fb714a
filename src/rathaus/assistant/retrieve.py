"""Hybrid retrieval over a tenant's knowledge base: full text, meaning and spelling, fused.

Three signals are computed for every entry and fused after standardising each one over the
tenant's entries (z-scores, so no signal dominates by its scale):

* **full text** – the database's full-text index (FTS5 ``bm25`` in SQLite, ``ts_rank_cd`` in
  PostgreSQL) over analysed terms (stems, split compounds), title weighted higher;
* **meaning** – multilingual e5 vectors: the best passage of the entry, the entry as a whole
  (the normalised mean of its passage vectors, computed when the index is built, so nothing new
  is stored) and the entry's title, searched in this process with numpy (the vectors are stored
  in the database);
* **spelling** – character n-grams of title and text (finds "Perso", "Kfzzulassung").

The index of a tenant is held in memory and rebuilt when its entries change (a large one in the
background, see :class:`KnowledgeIndex`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from rathaus.assistant.analysis import Analyzer, fold
from rathaus.assistant.knowledge import (
    CHUNK_OWNER,
    ENTRY_OWNER,
    tenant_vocabulary,
)
from rathaus.core.models import Embedding, KnowledgeChunk, KnowledgeEntry
from rathaus.inbox.vectors import from_bytes

log = logging.getLogger(__name__)

# Fusion weights of the standardised signals, chosen by a grid search (steps of 0.05, sum 1) on
# the keyword queries of the odd-numbered half of the Munich catalogue's services only, reported
# on all and on the even half (see docs/assistant.md). The title vector is held at 0.2 or more:
# in operation it is embedded from the title *and the keywords* (``title_for_embedding``), while
# the evaluation indexes no keywords, so there it is the bare title, which the grid alone would
# drop as redundant with the full text and the n-grams (that cost 2 of 33 right sources in
# ``rathaus eval assistant``, whose index has keywords).
W_FULLTEXT = 0.2
W_PASSAGE = 0.15
W_ENTRY = 0.35
W_TITLE = 0.2
W_CHARS = 0.1
FULLTEXT_CANDIDATES = 200
TITLE_WEIGHT = 4.0  # bm25 weight of the title column against the passage text


@dataclass
class ChunkHit:
    chunk_id: int
    chunk_key: str
    heading: str
    text: str
    similarity: float  # cosine similarity of the question to the passage


@dataclass
class EntryHit:
    entry_id: int
    title: str
    url: str
    score: float  # fused, standardised: higher is better
    signals: dict[str, float]
    chunks: list[ChunkHit] = field(default_factory=list)  # best passages first


@dataclass
class _TenantIndex:
    signature: tuple[Any, ...]
    analyzer: Analyzer
    entry_ids: np.ndarray
    entry_pos: dict[int, int]
    titles: list[str]
    urls: list[str]
    title_vectors: np.ndarray
    chunk_ids: np.ndarray
    chunk_entry_pos: np.ndarray
    chunk_vectors: np.ndarray
    entry_vectors: np.ndarray  # normalised mean of each entry's passage vectors
    chunk_pos: dict[int, int]
    char_vectorizer: Any
    char_matrix: Any
    model: str
    built_at: float = field(default_factory=time.monotonic)


def _signature(session: Session, tenant_id: int, model: str) -> tuple[Any, ...]:
    """Changes whenever an entry, its passages or their vectors change: entries are stamped on
    every change (``updated_at``) and passages and vectors are written in the same transaction.
    Two cheap indexed queries, run before every search."""
    entries = session.execute(
        select(func.count(KnowledgeEntry.id), func.max(KnowledgeEntry.updated_at)).where(
            KnowledgeEntry.tenant_id == tenant_id, KnowledgeEntry.is_published
        )
    ).one()
    last_chunk = session.scalar(
        select(func.max(KnowledgeChunk.id)).where(KnowledgeChunk.tenant_id == tenant_id)
    )
    return (tuple(entries), last_chunk, model)


def _vectors(
    session: Session, tenant_id: int, owner: str, model: str, ids: np.ndarray, dim: int
) -> np.ndarray:
    matrix = np.zeros((len(ids), dim), dtype=np.float32)
    pos = {int(i): n for n, i in enumerate(ids)}
    rows = session.execute(
        select(Embedding.owner_id, Embedding.vector, Embedding.dim).where(
            Embedding.tenant_id == tenant_id,
            Embedding.owner_type == owner,
            Embedding.model == model,
        )
    )
    for owner_id, raw, row_dim in rows:
        n = pos.get(owner_id)
        if n is not None and row_dim == dim:
            matrix[n] = from_bytes(raw, dim)
    return matrix


def _entry_vectors(chunk_vectors: np.ndarray, chunk_entry_pos: np.ndarray, n: int) -> np.ndarray:
    """One vector per entry: the direction of the sum of its passage vectors (the whole entry's
    meaning, unlike its best passage); an entry without vectors gets a zero row."""
    from scipy.sparse import csr_matrix

    # entries × passages indicator times the passage vectors: the sums (np.add.at is ~15 times
    # slower at 30,000 passages)
    member = csr_matrix(
        (
            np.ones(len(chunk_entry_pos), dtype=np.float32),
            (chunk_entry_pos, np.arange(len(chunk_entry_pos))),
        ),
        shape=(n, len(chunk_entry_pos)),
    )
    sums = np.asarray(member @ chunk_vectors, dtype=np.float32).reshape(n, chunk_vectors.shape[1])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return sums / np.where(norms < 1e-9, 1.0, norms)


def _char_text(title: str, body: str) -> str:
    return fold(f"{title} {title} {body[:3000]}")


def _build(session: Session, tenant_id: int, model: str, dim: int) -> _TenantIndex:
    from sklearn.feature_extraction.text import TfidfVectorizer

    entries = session.execute(
        select(
            KnowledgeEntry.id,
            KnowledgeEntry.title,
            KnowledgeEntry.url,
            KnowledgeEntry.keywords,
            KnowledgeEntry.body,
        )
        .where(KnowledgeEntry.tenant_id == tenant_id, KnowledgeEntry.is_published)
        .order_by(KnowledgeEntry.id)
    ).all()
    entry_ids = np.array([e.id for e in entries], dtype=np.int64)
    entry_pos = {int(i): n for n, i in enumerate(entry_ids)}
    chunks = session.execute(
        select(KnowledgeChunk.id, KnowledgeChunk.entry_id)
        .where(KnowledgeChunk.tenant_id == tenant_id)
        .order_by(KnowledgeChunk.id)
    ).all()
    chunks = [c for c in chunks if c.entry_id in entry_pos]
    chunk_ids = np.array([c.id for c in chunks], dtype=np.int64)
    chunk_entry_pos = np.array([entry_pos[c.entry_id] for c in chunks], dtype=np.int64)
    chunk_vectors = _vectors(session, tenant_id, CHUNK_OWNER, model, chunk_ids, dim)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    char_texts = [_char_text(f"{e.title} {e.keywords}", e.body or "") for e in entries]
    matrix = vectorizer.fit_transform(char_texts) if entries else None
    return _TenantIndex(
        signature=_signature(session, tenant_id, model),
        analyzer=Analyzer(tenant_vocabulary(session, tenant_id)),
        entry_ids=entry_ids,
        entry_pos=entry_pos,
        titles=[e.title for e in entries],
        urls=[e.url for e in entries],
        title_vectors=_vectors(session, tenant_id, ENTRY_OWNER, model, entry_ids, dim),
        chunk_ids=chunk_ids,
        chunk_entry_pos=chunk_entry_pos,
        chunk_vectors=chunk_vectors,
        entry_vectors=_entry_vectors(chunk_vectors, chunk_entry_pos, len(entry_ids)),
        chunk_pos={int(c): i for i, c in enumerate(chunk_ids)},
        char_vectorizer=vectorizer,
        # Stored transposed (terms × entries) so a query multiplies only its own n-gram rows.
        char_matrix=matrix.T.tocsr() if matrix is not None else None,
        model=model,
    )


class KnowledgeIndex:
    """Per-tenant in-memory search structures, rebuilt when the tenant's entries change.

    A small index is rebuilt at once, so the next question sees every change. Rebuilding a
    large one (``background_above`` passages or more; about 15 s at 30,000 passages) would make
    one citizen wait, so it is rebuilt in a background thread while questions are answered from
    the previous index; :func:`search` drops hits whose entry was deleted or unpublished since.
    """

    def __init__(self, *, background_above: int = 5000) -> None:
        self.background_above = background_above
        self._lock = threading.Lock()
        self._tenants: dict[tuple[int, str], _TenantIndex] = {}
        self._building: dict[tuple[int, str], threading.Thread] = {}

    def get(self, session: Session, tenant_id: int, model: str, dim: int) -> _TenantIndex:
        return self.lookup(session, tenant_id, model, dim)[0]

    def lookup(
        self, session: Session, tenant_id: int, model: str, dim: int
    ) -> tuple[_TenantIndex, bool]:
        """The tenant's index and whether it is stale: the previous one, serving while a large
        one is rebuilt in the background."""
        key = (tenant_id, model)
        signature = _signature(session, tenant_id, model)
        with self._lock:
            current = self._tenants.get(key)
            if current is not None and current.signature == signature:
                return current, False
            if current is not None and len(current.chunk_ids) >= self.background_above:
                if key not in self._building:
                    thread = threading.Thread(
                        target=self._rebuild,
                        args=(session.get_bind(), key, dim),
                        name=f"wissen-index-{tenant_id}",
                        daemon=True,
                    )
                    self._building[key] = thread
                    thread.start()
                return current, True
        built = _build(session, tenant_id, model, dim)
        with self._lock:
            self._tenants[key] = built
        return built, False

    def _rebuild(self, bind: Any, key: tuple[int, str], dim: int) -> None:
        tenant_id, model = key
        try:
            with Session(bind=bind) as session:
                built = _build(session, tenant_id, model, dim)
            with self._lock:
                self._tenants[key] = built
        except Exception:  # the old index keeps serving; the next question tries again
            log.exception("Wissensindex der Kommune %s ließ sich nicht neu aufbauen", tenant_id)
        finally:
            with self._lock:
                self._building.pop(key, None)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for running background rebuilds (tests, benchmarks, shutdown)."""
        with self._lock:
            threads = list(self._building.values())
        for thread in threads:
            thread.join(timeout)

    def clear(self) -> None:
        self.wait()
        with self._lock:
            self._tenants.clear()


KNOWLEDGE_INDEX = KnowledgeIndex()


# ---------------------------------------------------------------------------- full text


def fulltext(
    session: Session, tenant_id: int, terms: Sequence[str], limit: int = FULLTEXT_CANDIDATES
) -> list[tuple[int, float]]:
    """``(chunk_id, score)`` of the best passages for any of ``terms``; higher is better."""
    unique = list(dict.fromkeys(t for t in terms if t.isalnum()))
    if not unique:
        return []
    if session.get_bind().dialect.name == "sqlite":
        match = " OR ".join(f'"{t}"' for t in unique)
        rows = session.execute(
            text(
                "SELECT chunk_id, -bm25(knowledge_fts, :wt, 1.0) AS score FROM knowledge_fts "
                "WHERE knowledge_fts MATCH :match AND tenant_id = :tenant "
                "ORDER BY score DESC LIMIT :limit"
            ),
            {"match": match, "tenant": tenant_id, "limit": limit, "wt": TITLE_WEIGHT},
        )
    else:
        query = " | ".join(unique)
        rows = session.execute(
            text(
                "SELECT id, ts_rank_cd(setweight(to_tsvector('simple', search_title), 'A') || "
                "setweight(to_tsvector('simple', search_text), 'B'), q, 1) AS score "
                "FROM knowledge_chunks, to_tsquery('simple', :query) AS q "
                "WHERE tenant_id = :tenant AND (setweight(to_tsvector('simple', search_title), "
                "'A') || setweight(to_tsvector('simple', search_text), 'B')) @@ q "
                "ORDER BY score DESC LIMIT :limit"
            ),
            {"query": query, "tenant": tenant_id, "limit": limit},
        )
    return [(int(cid), float(score)) for cid, score in rows]


def _standardise(values: np.ndarray) -> np.ndarray:
    std = float(values.std())
    if std < 1e-9:
        return np.zeros_like(values)
    return (values - float(values.mean())) / std


# ---------------------------------------------------------------------------- search


def search(
    session: Session,
    *,
    tenant_id: int,
    query: str,
    embedder: Any,
    k: int = 5,
    passages_per_entry: int = 3,
    index: KnowledgeIndex = KNOWLEDGE_INDEX,
    query_vector: np.ndarray | None = None,
) -> list[EntryHit]:
    """The ``k`` best entries for ``query``, each with its best passages (``query_vector``:
    the query's embedding when the caller has it already)."""
    query = query.strip()
    if not query:
        return []
    if query_vector is None:
        query_vector = embedder.embed_queries([query])[0]
    idx, stale = index.lookup(session, tenant_id, embedder.model, int(query_vector.shape[0]))
    n = len(idx.entry_ids)
    if n == 0:
        return []

    # Full text: best passage score per entry.
    ft = np.zeros(n, dtype=np.float64)
    ft_rows = fulltext(session, tenant_id, idx.analyzer.terms(query))
    for chunk_id, score in ft_rows:
        pos = idx.chunk_pos.get(chunk_id)
        if pos is not None:
            e = idx.chunk_entry_pos[pos]
            ft[e] = max(ft[e], score)

    # Meaning: best passage, whole entry and title.
    chunk_sims = idx.chunk_vectors @ query_vector if len(idx.chunk_ids) else np.zeros(0)
    passage = np.full(n, -1.0, dtype=np.float64)
    if len(chunk_sims):
        np.maximum.at(passage, idx.chunk_entry_pos, chunk_sims)
    passage[passage < -0.5] = 0.0
    whole = (idx.entry_vectors @ query_vector).astype(np.float64)
    title = (idx.title_vectors @ query_vector).astype(np.float64)

    # Spelling: character n-grams.
    chars = np.zeros(n, dtype=np.float64)
    if idx.char_matrix is not None:
        q = idx.char_vectorizer.transform([fold(query)])
        chars = (q @ idx.char_matrix).toarray().ravel()

    signals = {
        "volltext": ft,
        "passage": passage,
        "eintrag": whole,
        "titel": title,
        "zeichen": chars,
    }
    fused = (
        W_FULLTEXT * _standardise(ft)
        + W_PASSAGE * _standardise(passage)
        + W_ENTRY * _standardise(whole)
        + W_TITLE * _standardise(title)
        + W_CHARS * _standardise(chars)
    )
    order = np.argsort(-fused)[: k * 2 if stale else k]
    if stale:  # answered from the previous index: skip entries deleted or unpublished since
        live = set(
            session.scalars(
                select(KnowledgeEntry.id).where(
                    KnowledgeEntry.id.in_([int(idx.entry_ids[e]) for e in order]),
                    KnowledgeEntry.is_published,
                )
            )
        )
        order = np.array([e for e in order if int(idx.entry_ids[e]) in live][:k], dtype=np.int64)
    hits: list[EntryHit] = []
    for e in order:
        entry_id = int(idx.entry_ids[e])
        hits.append(
            EntryHit(
                entry_id=entry_id,
                title=idx.titles[e],
                url=idx.urls[e],
                score=float(fused[e]),
                signals={name: float(values[e]) for name, values in signals.items()},
            )
        )
    _attach_passages(session, idx, hits, chunk_sims, passages_per_entry)
    return hits


def _attach_passages(
    session: Session,
    idx: _TenantIndex,
    hits: list[EntryHit],
    chunk_sims: np.ndarray,
    per_entry: int,
) -> None:
    wanted: dict[int, list[tuple[float, int]]] = {h.entry_id: [] for h in hits}
    positions = {idx.entry_pos[h.entry_id]: h.entry_id for h in hits}
    mask = np.isin(idx.chunk_entry_pos, list(positions))
    for pos in np.nonzero(mask)[0]:
        entry_id = positions[int(idx.chunk_entry_pos[pos])]
        wanted[entry_id].append((float(chunk_sims[pos]), int(idx.chunk_ids[pos])))
    chosen = {
        cid: sim
        for pairs in wanted.values()
        for sim, cid in sorted(pairs, reverse=True)[:per_entry]
    }
    if not chosen:
        return
    rows = session.scalars(select(KnowledgeChunk).where(KnowledgeChunk.id.in_(list(chosen))))
    by_entry: dict[int, list[ChunkHit]] = {}
    for chunk in rows:
        by_entry.setdefault(chunk.entry_id, []).append(
            ChunkHit(chunk.id, chunk.chunk_key, chunk.heading, chunk.text, chosen[chunk.id])
        )
    for hit in hits:
        hit.chunks = sorted(by_entry.get(hit.entry_id, []), key=lambda c: -c.similarity)
