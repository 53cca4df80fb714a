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
    # The passages grouped by entry: positions into chunk_ids, entry by entry (chunk id order
    # within an entry); an entry's are by_entry[starts[e]:starts[e + 1]].
    by_entry: np.ndarray
    starts: np.ndarray
    char_vectorizer: Any
    char_matrix: Any
    model: str
    built_at: float = field(default_factory=time.monotonic)
    checked_at: float = field(default_factory=time.monotonic)  # signature last compared

    def passages_of(self, entry_pos: int) -> np.ndarray:
        return self.by_entry[self.starts[entry_pos] : self.starts[entry_pos + 1]]


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
    by_entry = np.argsort(chunk_entry_pos, kind="stable")
    starts = np.searchsorted(chunk_entry_pos[by_entry], np.arange(len(entry_ids) + 1))
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
        by_entry=by_entry,
        starts=starts,
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

    Whether a large index is current is not asked before every question either: comparing the
    signature reads every entry row of the tenant (about 20 ms at 11,000 entries in SQLite,
    the larger part of a search). :meth:`serve` compares it in the background, at most every
    ``recheck_s`` seconds, and has the caller check its few hits against the database instead.
    """

    def __init__(self, *, background_above: int = 5000, recheck_s: float = 1.0) -> None:
        self.background_above = background_above
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._tenants: dict[tuple[int, str], _TenantIndex] = {}
        self._building: dict[tuple[int, str], threading.Thread] = {}

    def get(self, session: Session, tenant_id: int, model: str, dim: int) -> _TenantIndex:
        return self.lookup(session, tenant_id, model, dim)[0]

    def serve(
        self, session: Session, tenant_id: int, model: str, dim: int
    ) -> tuple[_TenantIndex, bool]:
        """The index to answer a question from and whether its hits must be checked against
        the database (deleted or unpublished entries dropped): a small index is compared with
        the database first, as in :meth:`lookup`; a large one is served as it is and compared
        in the background."""
        key = (tenant_id, model)
        with self._lock:
            current = self._tenants.get(key)
            if current is not None and len(current.chunk_ids) >= self.background_above:
                due = time.monotonic() - current.checked_at >= self.recheck_s
                if due and key not in self._building:
                    self._start(self._refresh, session.get_bind(), key, dim, current)
                return current, True
        return self.lookup(session, tenant_id, model, dim)

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
                current.checked_at = time.monotonic()
                return current, False
            if current is not None and len(current.chunk_ids) >= self.background_above:
                if key not in self._building:
                    self._start(self._rebuild, session.get_bind(), key, dim)
                return current, True
        built = _build(session, tenant_id, model, dim)
        with self._lock:
            self._tenants[key] = built
        return built, False

    def _start(self, target: Any, bind: Any, key: tuple[int, str], *args: Any) -> None:
        """Run ``target`` in a background thread, one per tenant and model (under the lock)."""
        thread = threading.Thread(
            target=target, args=(bind, key, *args), name=f"wissen-index-{key[0]}", daemon=True
        )
        self._building[key] = thread
        thread.start()

    def _refresh(self, bind: Any, key: tuple[int, str], dim: int, current: _TenantIndex) -> None:
        """Compare a served index with the database; rebuild it when it changed."""
        tenant_id, model = key
        try:
            with Session(bind=bind) as session:
                checked = time.monotonic()
                if _signature(session, tenant_id, model) == current.signature:
                    current.checked_at = checked
                    return
                built = _build(session, tenant_id, model, dim)
            with self._lock:
                self._tenants[key] = built
        except Exception:  # the old index keeps serving; the next question tries again
            log.exception("Wissensindex der Kommune %s ließ sich nicht prüfen", tenant_id)
            current.checked_at = time.monotonic()
        finally:
            with self._lock:
                self._building.pop(key, None)

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
        # Ordered by FTS5's own ``rank`` (bm25 with these weights): FTS5 then sorts by score
        # before it reads a row's tenant and chunk id, so only the rows the limit keeps are
        # read, not every match (same scores and order as ``ORDER BY bm25(…)``; 300 queries
        # at 30,000 passages: 35 → 22 ms median).
        rows = session.execute(
            text(
                "SELECT chunk_id, -rank AS score FROM knowledge_fts "
                "WHERE knowledge_fts MATCH :match AND rank MATCH :rank AND tenant_id = :tenant "
                "ORDER BY rank LIMIT :limit"
            ),
            {
                "match": match,
                "rank": f"bm25({TITLE_WEIGHT}, 1.0)",
                "tenant": tenant_id,
                "limit": limit,
            },
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


_BLAS: Any = None


def _one_blas_thread() -> Any:
    """A context in which numpy's BLAS computes on one thread.

    A matrix-vector product over 30,000 passage vectors is bound by memory, not arithmetic;
    a second BLAS thread gains little on an idle machine and, on busy cores, waits for its
    partner: measured 40 ms median (72 ms p95) with OpenBLAS's two threads against 11 ms
    (18 ms) with one, load average about 6 on two cores. The limit holds for the whole process
    while the product runs (BLAS libraries know no per-thread setting); another thread's
    product at that moment merely runs on one thread too. The controller is built once
    (building one takes about half a millisecond; limiting with it about 10 µs).
    """
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController  # comes with scikit-learn

        _BLAS = ThreadpoolController().select(user_api="blas")
    return _BLAS.limit(limits=1)


def _top(scores: np.ndarray, m: int) -> np.ndarray:
    """Positions of the ``m`` highest scores, best first; equal scores by position.

    A partition and a sort of the few candidates instead of sorting every entry."""
    if m <= 0:
        return np.zeros(0, dtype=np.int64)
    if m < len(scores):
        kth = np.partition(scores, len(scores) - m)[len(scores) - m]  # the m-th highest
        candidates = np.flatnonzero(scores >= kth)
    else:
        candidates = np.arange(len(scores))
    return candidates[np.lexsort((candidates, -scores[candidates]))][:m]


def _char_scores(idx: _TenantIndex, query: str, n: int) -> np.ndarray:
    """Character n-gram similarity of the query to every entry: the query's tf-idf row times
    the (terms × entries) matrix, summed with ``np.bincount`` over only the query's n-gram rows
    (what ``q @ matrix`` computes, in the same order, without building a sparse result)."""
    if idx.char_matrix is None:
        return np.zeros(n, dtype=np.float64)
    q = idx.char_vectorizer.transform([fold(query)])
    if not q.nnz:
        return np.zeros(n, dtype=np.float64)
    matrix = idx.char_matrix
    rows = q.indices
    begin = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - begin
    total = int(lengths.sum())
    # positions into matrix.data of every row of the query's n-grams, row after row
    offsets = np.repeat(begin - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
    weights = matrix.data[offsets] * np.repeat(q.data, lengths)
    return np.bincount(matrix.indices[offsets], weights=weights, minlength=n)


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
    meaning_only: bool = False,
) -> list[EntryHit]:
    """The ``k`` best entries for ``query``, each with its best passages (``query_vector``:
    the query's embedding when the caller has it already).

    ``meaning_only`` ranks by the multilingual e5 signals alone (same weights among them): for
    a question in another language, German full text and character n-grams match only by
    accident ("card", "register") and push the right entry down (docs/assistant.md)."""
    query = query.strip()
    if not query:
        return []
    if query_vector is None:
        query_vector = embedder.embed_queries([query])[0]
    idx, verify = index.serve(session, tenant_id, embedder.model, int(query_vector.shape[0]))
    n = len(idx.entry_ids)
    if n == 0:
        return []

    # Full text: best passage score per entry.
    ft = np.zeros(n, dtype=np.float64)
    ft_rows = [] if meaning_only else fulltext(session, tenant_id, idx.analyzer.terms(query))
    for chunk_id, score in ft_rows:
        pos = idx.chunk_pos.get(chunk_id)
        if pos is not None:
            e = idx.chunk_entry_pos[pos]
            ft[e] = max(ft[e], score)

    # Meaning: best passage, whole entry and title.
    with _one_blas_thread():
        chunk_sims = idx.chunk_vectors @ query_vector if len(idx.chunk_ids) else np.zeros(0)
        whole = (idx.entry_vectors @ query_vector).astype(np.float64)
        title = (idx.title_vectors @ query_vector).astype(np.float64)
    passage = np.full(n, -1.0, dtype=np.float64)
    if len(chunk_sims):  # the maximum over each entry's passages, entry by entry
        has = idx.starts[:-1] < idx.starts[1:]
        passage[has] = np.maximum.reduceat(chunk_sims[idx.by_entry], idx.starts[:-1][has])
    passage[passage < -0.5] = 0.0

    # Spelling: character n-grams.
    chars = np.zeros(n, dtype=np.float64) if meaning_only else _char_scores(idx, query, n)

    signals = {
        "volltext": ft,
        "passage": passage,
        "eintrag": whole,
        "titel": title,
        "zeichen": chars,
    }
    weighted = [
        (W_FULLTEXT, ft),
        (W_PASSAGE, passage),
        (W_ENTRY, whole),
        (W_TITLE, title),
        (W_CHARS, chars),
    ]
    if meaning_only:  # the three e5 signals alone, their weights scaled to sum to 1
        meaning = W_PASSAGE + W_ENTRY + W_TITLE
        weighted = [(w / meaning, values) for w, values in weighted[1:4]]
    fused = sum(w * _standardise(values) for w, values in weighted)
    order = _top(fused, k * 2 if verify else k)
    if verify:  # a large index, served without asking: skip entries deleted or unpublished
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
    chosen: dict[int, float] = {}
    for hit in hits:
        positions = idx.passages_of(idx.entry_pos[hit.entry_id])
        pairs = zip(chunk_sims[positions].tolist(), idx.chunk_ids[positions].tolist(), strict=True)
        for sim, cid in sorted(pairs, reverse=True)[:per_entry]:
            chosen[cid] = sim
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
