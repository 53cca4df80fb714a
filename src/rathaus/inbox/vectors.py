"""Case embeddings: stored in the database (float32 bytes), searched in this process per tenant.

:func:`case_vectors` returns the vectors of cases, computing and storing the missing ones.
:class:`CaseIndex` keeps one tenant's vectors in memory and only reads rows added since the last
search, so finding similar cases stays cheap while items arrive: per search, one query for new
rows and one matrix product; all rows are counted once per transaction, never sorted.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from sqlalchemy import bindparam, delete, event, func, select
from sqlalchemy.orm import Session, SessionTransaction

from rathaus.core.models import Embedding

OWNER = "case"


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(raw: bytes, dim: int) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.float32, count=dim)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def delete_vectors(
    session: Session,
    tenant_id: int,
    owner_ids: Sequence[int],
    *,
    owner: str = OWNER,
    model: str | None = None,
) -> None:
    """Remove the stored vectors of these rows (of one model, or of every model)."""
    if not owner_ids:
        return
    condition = [
        Embedding.tenant_id == tenant_id,
        Embedding.owner_type == owner,
        Embedding.owner_id.in_(list(owner_ids)),
    ]
    if model is not None:
        condition.append(Embedding.model == model)
    result = session.execute(delete(Embedding).where(*condition))
    if owner == OWNER and result.rowcount:  # type: ignore[attr-defined]
        _note_removal()


def store_vectors(
    session: Session,
    tenant_id: int,
    owner_ids: Sequence[int],
    vectors: np.ndarray,
    model: str,
    texts: Sequence[str],
    *,
    owner: str = OWNER,
    flush: bool = True,
    replace: bool = True,
) -> None:
    """Store (or replace) the vectors of cases (or of other ``owner`` rows), with the hash of
    the text they were made from. ``flush=False``: the caller flushes (the rows are written
    with its next flush; :class:`CaseIndex` sees them after that). ``replace=False``: the
    caller knows that none of the rows has a vector of ``model`` yet (see
    :func:`owners_with_vectors`), so there is nothing to delete first."""
    if replace:
        delete_vectors(session, tenant_id, owner_ids, owner=owner, model=model)
    for owner_id, vector, text in zip(owner_ids, vectors, texts, strict=True):
        session.add(
            Embedding(
                tenant_id=tenant_id,
                owner_type=owner,
                owner_id=owner_id,
                model=model,
                dim=int(vector.shape[0]),
                vector=to_bytes(vector),
                text_sha256=text_hash(text),
            )
        )
    if flush:
        session.flush()


def owners_with_vectors(
    session: Session, tenant_id: int, owner_ids: Sequence[int], model: str, *, owner: str = OWNER
) -> set[int]:
    """Which of these rows have a stored vector of ``model``: one query for a batch instead of
    one delete per row in :func:`store_vectors`."""
    found: set[int] = set()
    ids = sorted(set(owner_ids))
    for start in range(0, len(ids), 500):
        found.update(
            session.scalars(
                select(Embedding.owner_id).where(
                    Embedding.tenant_id == tenant_id,
                    Embedding.owner_type == owner,
                    Embedding.owner_id.in_(ids[start : start + 500]),
                    Embedding.model == model,
                )
            )
        )
    return found


def case_vectors(
    session: Session,
    tenant_id: int,
    case_ids: Sequence[int],
    texts: Sequence[str],
    embedder: object,
    *,
    batch: int = 64,
) -> np.ndarray:
    """Passage vectors for the cases (rows in the order of ``case_ids``)."""
    model = embedder.model  # type: ignore[attr-defined]
    hashes = {cid: text_hash(t[:4000]) for cid, t in zip(case_ids, texts, strict=True)}
    found: dict[int, np.ndarray] = {}
    for start in range(0, len(case_ids), 500):
        chunk = list(case_ids[start : start + 500])
        for owner_id, dim, raw, sha in session.execute(
            select(
                Embedding.owner_id, Embedding.dim, Embedding.vector, Embedding.text_sha256
            ).where(
                Embedding.tenant_id == tenant_id,
                Embedding.owner_type == OWNER,
                Embedding.model == model,
                Embedding.owner_id.in_(chunk),
            )
        ):
            if sha == hashes.get(owner_id):
                found[owner_id] = from_bytes(raw, dim)
    missing = [i for i, cid in enumerate(case_ids) if cid not in found]
    for start in range(0, len(missing), batch):
        part = missing[start : start + batch]
        vectors = embedder.embed_passages([texts[i][:4000] for i in part])  # type: ignore[attr-defined]
        store_vectors(
            session,
            tenant_id,
            [case_ids[i] for i in part],
            vectors,
            model,
            [texts[i][:4000] for i in part],
        )
        for i, vector in zip(part, vectors, strict=True):
            found[case_ids[i]] = np.asarray(vector, dtype=np.float32)
    if not case_ids:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([found[cid] for cid in case_ids])


@dataclass
class _TenantVectors:
    last_id: int
    case_ids: np.ndarray
    matrix: np.ndarray
    # Per row: whether it is the newest row of its case (a case whose text changed has an older
    # row too; the newest counts). Kept with the rows, not recomputed per search.
    newest: np.ndarray
    # ``matrix`` is the start of this buffer: new rows are written behind it, and it grows by
    # doubling, so items arriving one by one do not copy all vectors each time.
    buffer: np.ndarray | None = None
    # Case id -> row of its newest vector, so that new rows update ``newest`` without looking
    # at the old ones (changed only under the index's lock).
    last_row: dict[int, int] = field(default_factory=dict)
    # The transaction in which the rows were last counted or read, and the number of
    # removals in this process at that time (see CaseIndex._refresh).
    transaction: weakref.ref[SessionTransaction] | None = None
    removals: int = -1


_EMPTY = _TenantVectors(
    0, np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=bool)
)
# Removals of case vectors (and rollbacks of transactions that searched) in this process: an
# index entry made before the last one counts its rows again.
_removals = 0


def _note_removal(*_: object) -> None:
    global _removals
    _removals += 1


def _newest_after(current: _TenantVectors, ids: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """``newest`` and ``last_row`` once rows for ``ids`` follow the rows of ``current``: only
    the cases of the new rows change."""
    count = len(current.case_ids)
    newest = np.concatenate([current.newest, np.ones(len(ids), dtype=bool)])
    last_row = current.last_row if count else {}
    for row, case_id in enumerate(ids.tolist(), start=count):
        previous = last_row.get(case_id)
        if previous is not None:
            newest[previous] = False
        last_row[case_id] = row
    return newest, last_row


def _append(current: _TenantVectors, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``current`` followed by ``new``, and the buffer they lie in. Rows already
    handed out (``current.matrix``) are never written to."""
    count = len(current.case_ids)
    total = count + len(new)
    buffer = current.buffer
    if buffer is None or buffer.shape[0] < total or buffer.shape[1] != new.shape[1]:
        buffer = np.empty((max(total, 2 * count, 64), new.shape[1]), dtype=np.float32)
        if count:
            buffer[:count] = current.matrix
    buffer[count:total] = new
    return buffer[:total], buffer


# The rows added since the last search: built once, as the index reads them for every item.
_ROWS_AFTER = (
    select(Embedding.id, Embedding.owner_id, Embedding.dim, Embedding.vector)
    .where(
        Embedding.tenant_id == bindparam("tenant_id"),
        Embedding.owner_type == bindparam("owner"),
        Embedding.model == bindparam("model"),
        Embedding.id > bindparam("last_id"),
    )
    .order_by(Embedding.id)
)


class CaseIndex:
    """In-memory nearest-neighbour search over a tenant's stored case vectors."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, int, str], _TenantVectors] = {}
        self._lock = threading.Lock()

    def _refresh(self, session: Session, tenant_id: int, model: str) -> _TenantVectors:
        """Read rows added since the last search. Everything is read again if rows were
        replaced or removed, which a count of the rows shows; the count (which reads every
        row's index entry) is skipped while the same transaction searches again and nothing was
        removed in between: then only its own additions can have come (a worker's batch).
        Rows another process removes meanwhile are noticed in the next transaction."""
        key = (str(session.get_bind().url), tenant_id, model)
        with self._lock:
            current = self._data.get(key) or _EMPTY
            rows = session.execute(
                _ROWS_AFTER,
                {
                    "tenant_id": tenant_id,
                    "owner": OWNER,
                    "model": model,
                    "last_id": current.last_id,
                },
            ).all()
            transaction = session.get_transaction()
            same = (
                current.transaction is not None
                and transaction is not None
                and current.transaction() is transaction
                and current.removals == _removals
            )
            removals = _removals
            if not same:
                if not event.contains(session, "after_soft_rollback", _note_removal):
                    # Rows this session added and the index read may be rolled back.
                    event.listen(session, "after_soft_rollback", _note_removal)
                where = (
                    Embedding.tenant_id == tenant_id,
                    Embedding.owner_type == OWNER,
                    Embedding.model == model,
                )
                total = session.scalar(select(func.count(Embedding.id)).where(*where)) or 0
                if len(current.case_ids) + len(rows) != total:
                    current = _EMPTY
                    rows = session.execute(
                        select(Embedding.id, Embedding.owner_id, Embedding.dim, Embedding.vector)
                        .where(*where)
                        .order_by(Embedding.id)
                    ).all()
            marker = weakref.ref(transaction) if transaction is not None else None
            if rows:
                new = np.stack([from_bytes(raw, dim) for _, _, dim, raw in rows])
                ids = np.array([owner for _, owner, _, _ in rows], dtype=np.int64)
                matrix, buffer = _append(current, new)
                newest, last_row = _newest_after(current, ids)
                current = _TenantVectors(
                    rows[-1][0],
                    np.concatenate([current.case_ids, ids]),
                    matrix,
                    newest,
                    buffer,
                    last_row,
                    marker,
                    removals,
                )
            else:
                if current is _EMPTY:  # shared: a tenant without vectors gets its own
                    current = replace(_EMPTY, last_row={})
                current.transaction, current.removals = marker, removals
            self._data[key] = current
            return current

    def nearest(
        self,
        session: Session,
        tenant_id: int,
        model: str,
        vector: np.ndarray,
        *,
        k: int = 5,
        exclude: set[int] | None = None,
    ) -> list[tuple[int, float]]:
        """Up to ``k`` (case id, cosine similarity) pairs, most similar first (equal scores:
        the earlier stored first)."""
        data = self._refresh(session, tenant_id, model)
        if data.matrix.size == 0 or k <= 0:
            return []
        scores = data.matrix @ np.asarray(vector, dtype=np.float32)
        allowed = data.newest
        if exclude:
            allowed = allowed & ~np.isin(data.case_ids, list(exclude))
        rows = np.flatnonzero(allowed)
        if len(rows) > k:
            # The k best without sorting all rows (linear in the number of cases).
            rows = rows[np.argpartition(-scores[rows], k - 1)[:k]]
        rows = rows[np.lexsort((rows, -scores[rows]))]
        return [(int(data.case_ids[i]), float(scores[i])) for i in rows]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


CASE_INDEX = CaseIndex()
