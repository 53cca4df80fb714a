"""Concurrent writers on one SQLite file (embedded mode): no "database is locked" for a
request that read before it wrote, writers served in turn, snapshots where asked for."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from rathaus.core.db import Database
from rathaus.core.models import Tenant
from rathaus.core.sqlite_writers import WriterQueue


def _tenant(n: int) -> Tenant:
    return Tenant(slug=f"t{n}-{time.monotonic_ns()}", name="Stadt", city="Stadt", land="BW")


def _count(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count(Tenant.id))) or 0)


def test_session_that_read_first_writes_after_another_committed(sqlite_db: Database) -> None:
    with sqlite_db.session() as first:
        before = first.scalar(select(func.count(Tenant.id)))
        with sqlite_db.session() as second:  # another request writes meanwhile
            second.add(_tenant(1))
        first.add(_tenant(2))  # a stale read snapshot would make this "database is locked"
        first.flush()
        assert first.scalar(select(func.count(Tenant.id))) == (before or 0) + 2
    assert _count(sqlite_db) == 2


def test_writers_take_turns_with_a_busy_job_worker(sqlite_db: Database) -> None:
    """A worker that writes back to back (as triage does) must not starve a web request: the
    waiting writers get the file in turn instead of polling until their timeout runs out."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def busy_worker() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            with sqlite_db.session() as session:
                session.add(_tenant(1000 + n))
                session.flush()
                time.sleep(0.05)  # holds the write lock, like a triage step

    def request(n: int) -> None:
        try:
            for i in range(3):
                with sqlite_db.session() as session:
                    session.scalar(select(func.count(Tenant.id)))
                    session.add(_tenant(n * 10 + i))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    worker = threading.Thread(target=busy_worker)
    worker.start()
    time.sleep(0.2)
    requests = [threading.Thread(target=request, args=(n,)) for n in range(1, 4)]
    for t in requests:
        t.start()
    for t in requests:
        t.join(30)
    stop.set()
    worker.join(30)
    assert errors == []
    assert not any(t.is_alive() for t in requests)


def test_plain_connection_keeps_its_snapshot(sqlite_db: Database) -> None:
    """The backup reads through ``engine.connect()`` and one transaction: it must see one
    state, whatever sessions commit meanwhile."""
    with sqlite_db.session() as session:
        session.add(_tenant(1))
    with sqlite_db.engine.connect() as conn:
        conn.begin()
        assert conn.scalar(select(func.count(Tenant.id))) == 1
        with sqlite_db.session() as session:
            session.add(_tenant(2))
        assert conn.scalar(select(func.count(Tenant.id))) == 1
        conn.rollback()
    assert _count(sqlite_db) == 2


def test_queue_hands_the_turn_to_the_longest_waiting() -> None:
    queue = WriterQueue()
    assert queue.acquire(1)
    order: list[int] = []

    def wait(n: int) -> None:
        assert queue.acquire(5)
        order.append(n)
        queue.release()

    threads = []
    for n in range(3):
        t = threading.Thread(target=wait, args=(n,))
        t.start()
        threads.append(t)
        time.sleep(0.05)  # queue up in this order
    failed = []
    late = threading.Thread(target=lambda: failed.append(queue.acquire(0.05)))
    late.start()
    late.join()
    assert failed == [False]  # gave up after its timeout, and left the line
    queue.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2]
    assert queue.acquire(0.1)  # free again
