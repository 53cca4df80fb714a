"""The in-memory case index: per search only the new rows are read; counting all rows (to see
removals) happens once per transaction, after a removal or after a rollback; the best ``k`` are
the same as when sorting every score."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import event, text

from rathaus.core.db import Database
from rathaus.inbox.vectors import CaseIndex, delete_vectors, store_vectors
from tests.factories import build_tenant


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def counts(db: Database) -> list[str]:
    seen: list[str] = []

    def note(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT COUNT"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    yield seen
    event.remove(db.engine, "before_cursor_execute", note)


def test_rows_are_counted_once_per_transaction_while_items_arrive(
    db: Database, counts: list[str]
) -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 30)
    index = CaseIndex()
    with db.session() as session:
        tenant = build_tenant(session, "alpha").tenant.id
        for i in range(20):
            found = index.nearest(session, tenant, "m", vectors[i], k=3)
            # every earlier item is there, the best first
            expected = sorted(range(i), key=lambda j: -float(vectors[j] @ vectors[i]))[:3]
            assert [cid for cid, _ in found] == expected
            store_vectors(session, tenant, [i], vectors[i][None, :], "m", [str(i)])
        assert len(counts) == 1
    with db.session() as session:
        index.nearest(session, tenant, "m", vectors[0])
        index.nearest(session, tenant, "m", vectors[1])
        assert len(counts) == 2  # a new transaction counts again


def test_a_rolled_back_vector_is_not_found_afterwards(db: Database) -> None:
    rng = np.random.default_rng(2)
    vectors = _unit(rng, 3)
    index = CaseIndex()
    with db.session() as session:
        tenant = build_tenant(session, "alpha").tenant.id
        store_vectors(session, tenant, [1], vectors[:1], "m", ["eins"])
        with pytest.raises(RuntimeError), session.begin_nested():
            store_vectors(session, tenant, [2], vectors[1:2], "m", ["zwei"])
            assert index.nearest(session, tenant, "m", vectors[1], k=1)[0][0] == 2
            raise RuntimeError("Schritt fehlgeschlagen")
        assert [cid for cid, _ in index.nearest(session, tenant, "m", vectors[1])] == [1]
        store_vectors(session, tenant, [3], vectors[2:3], "m", ["drei"])
        assert sorted(cid for cid, _ in index.nearest(session, tenant, "m", vectors[1])) == [1, 3]


def test_rows_removed_by_another_session_are_gone_in_the_next_transaction(db: Database) -> None:
    rng = np.random.default_rng(3)
    vectors = _unit(rng, 4)
    index = CaseIndex()
    with db.session() as session:
        tenant = build_tenant(session, "alpha").tenant.id
        store_vectors(session, tenant, [1, 2, 3, 4], vectors, "m", ["1", "2", "3", "4"])
    with db.session() as session:
        assert len(index.nearest(session, tenant, "m", vectors[0])) == 4
    # another worker: its own connection; a removal there says nothing to this process
    other = Database(db.url)
    try:
        with other.engine.begin() as conn:
            conn.execute(text("DELETE FROM embeddings WHERE owner_id IN (1, 2)"))
    finally:
        other.dispose()
    with db.session() as session:
        assert sorted(cid for cid, _ in index.nearest(session, tenant, "m", vectors[0])) == [3, 4]
        # removed in this process: noticed at once, in the same transaction
        delete_vectors(session, tenant, [3])
        assert [cid for cid, _ in index.nearest(session, tenant, "m", vectors[0])] == [4]


def test_the_best_k_equal_a_full_sort_with_excluded_and_replaced_cases(db: Database) -> None:
    rng = np.random.default_rng(4)
    index = CaseIndex()
    with db.session() as session:
        tenant = build_tenant(session, "alpha").tenant.id
        current: dict[int, np.ndarray] = {}
        for start in range(0, 300, 50):
            ids = list(range(start, start + 50))
            vectors = _unit(rng, 50)
            store_vectors(session, tenant, ids, vectors, "m", [str(i) for i in ids])
            current.update(zip(ids, vectors, strict=True))
            # some cases get a new text (and vector)
            again = [int(i) for i in rng.choice(ids, 5, replace=False)]
            newer = _unit(rng, 5)
            store_vectors(session, tenant, again, newer, "m", [f"neu {i}" for i in again])
            current.update(zip(again, newer, strict=True))
            for query in _unit(rng, 3):
                skip = {int(i) for i in rng.choice(list(current), 7, replace=False)}
                for k in (1, 5, 40, 1000):
                    got = index.nearest(session, tenant, "m", query, k=k, exclude=skip)
                    scores = {cid: float(v @ query) for cid, v in current.items()}
                    ranked = sorted((c for c in scores if c not in skip), key=lambda c: -scores[c])
                    assert [cid for cid, _ in got] == ranked[:k]
                    for cid, score in got:
                        assert score == pytest.approx(scores[cid], abs=1e-5)
