"""Write transactions on one SQLite file under concurrency: begun late, immediate, in turn.

In embedded mode one process writes from many threads at once: web requests (ingestion, the
assistant's conversations) and the job workers' triage. SQLite allows one writer at a time,
and two of its behaviours turn that into failed requests unless they are handled:

1. A transaction that read first and then writes fails at once with "database is locked" when
   another connection wrote in the meantime (its snapshot is stale; the busy timeout does not
   apply). So a session's reads run outside a transaction, each on the newest data (what
   PostgreSQL's READ COMMITTED gives too), and its first write starts ``BEGIN IMMEDIATE``,
   which waits for the write lock instead of failing.
2. Waiting for the lock is polling (sleeps of up to 100 ms): a job worker that commits and at
   once begins its next write transaction wins the lock again and again, and a web request
   waits until its busy timeout runs out. So the writers of one process queue for the file:
   first come, first served, and the lock is handed straight to the next in line.

Only sessions opt in (execution option :data:`LAZY_BEGIN`, set by
:class:`rathaus.core.db.Database` for its sessions); a plain connection (``engine.connect()``,
e.g. the backup's consistent snapshot) keeps ``BEGIN`` at its first statement. Other processes
(CLI commands) still meet the busy timeout.

A transaction that reads a value in order to write the next one (the last Aktenzeichen, to take
the number after it) must read it under the write lock, or two of them read the same value:
:func:`begin_write` begins the write transaction before that read.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
from typing import Any

from sqlalchemy import Connection, Engine, event

LAZY_BEGIN = "rathaus_sqlite_lazy_begin"
WAIT_S = 10.0  # as long as SQLite's busy timeout (see rathaus.core.db)
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT", "CREATE", "DROP", "ALTER")
_HELD = "rathaus_writer_turn"
_QUEUE = "rathaus_writer_queue"


class WriterQueue:
    """A lock that is handed to the longest waiting thread (``threading.Lock`` is not fair)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._waiting: collections.deque[tuple[int, threading.Event]] = collections.deque()

    def acquire(self, timeout: float) -> bool:
        me = threading.get_ident()
        with self._mutex:
            if self._owner is None:
                self._owner = me
                return True
            turn = threading.Event()
            self._waiting.append((me, turn))
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over while the wait ran out
                return True
            self._waiting.remove((me, turn))
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._owner, turn = self._waiting.popleft()
                turn.set()
            else:
                self._owner = None

    @property
    def held_by_me(self) -> bool:
        return self._owner == threading.get_ident()


_QUEUES: dict[str, WriterQueue] = {}
_QUEUES_LOCK = threading.Lock()


def queue_for(path: str) -> WriterQueue:
    """The one queue of this process for the SQLite file at ``path``."""
    with _QUEUES_LOCK:
        return _QUEUES.setdefault(path, WriterQueue())


def begin_write(connection: Connection) -> None:
    """Begin the write transaction of ``connection`` now (``BEGIN IMMEDIATE``, in turn), so that
    its next reads see the newest data and no other writer can change it until the transaction
    ends. Does nothing when it has begun already, on a connection without :data:`LAZY_BEGIN`
    (that began with ``BEGIN``) and outside a SQLAlchemy transaction."""
    if not connection.get_execution_options().get(LAZY_BEGIN) or not connection.in_transaction():
        return
    _begin_immediate(connection)


def _begin_immediate(connection: Connection) -> None:
    fairy = connection.connection
    dbapi = fairy.dbapi_connection
    writers: WriterQueue | None = fairy.info.get(_QUEUE)
    if dbapi is None or dbapi.in_transaction or writers is None:
        return
    # A thread that holds the file already (a second session inside its own transaction)
    # does not queue behind itself; SQLite's busy timeout decides, as without the queue.
    if not writers.held_by_me:
        if not writers.acquire(WAIT_S):
            raise sqlite3.OperationalError("database is locked")
        fairy.info[_HELD] = writers
    dbapi.execute("BEGIN IMMEDIATE")


def install(engine: Engine, path: str) -> None:
    """Make sessions with :data:`LAZY_BEGIN` begin at their first write, in turn."""
    writers = queue_for(path)

    @event.listens_for(engine, "connect")
    def remember(_dbapi: Any, record: Any) -> None:
        record.info[_QUEUE] = writers

    @event.listens_for(engine, "begin")
    def begin(connection: Any) -> None:
        if not connection.get_execution_options().get(LAZY_BEGIN):
            connection.exec_driver_sql("BEGIN")

    @event.listens_for(engine, "before_cursor_execute")
    def first_write(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if (
            not connection.get_execution_options().get(LAZY_BEGIN)
            or not connection.in_transaction()
            or not statement.lstrip()[:9].upper().startswith(_WRITES)
        ):
            return
        _begin_immediate(connection)

    def end(connection: Any, *_args: Any) -> None:
        info = connection.info if hasattr(connection, "info") else None
        turn = info.pop(_HELD, None) if info is not None else None
        if turn is not None:
            turn.release()

    # The next writer's BEGIN IMMEDIATE may come a moment before this COMMIT is done: it waits
    # the few milliseconds in SQLite's busy handler.
    event.listen(engine, "commit", end)
    event.listen(engine, "rollback", end)

    @event.listens_for(engine, "checkin")
    def returned(_dbapi: Any, record: Any) -> None:
        # A connection given back without commit or rollback (an error, a closed session).
        turn = record.info.pop(_HELD, None)
        if turn is not None:
            turn.release()
