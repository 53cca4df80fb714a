"""Database engine and sessions: SQLite (WAL) in embedded mode, PostgreSQL in server mode."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from rathaus.core import sqlite_writers
from rathaus.core.config import Settings
from rathaus.core.errors import DatabaseUnavailableError


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins, so that
    # SAVEPOINTs (session.begin_nested) work (see rathaus.core.sqlite_writers).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _without_nul(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value


def _params_without_nul(parameters: Any) -> Any:
    """The same parameters (a mapping, a row tuple or a list of either) without NUL."""
    if isinstance(parameters, Mapping):
        return {key: _without_nul(value) for key, value in parameters.items()}
    if isinstance(parameters, list | tuple):
        return type(parameters)(
            _params_without_nul(value)
            if isinstance(value, Mapping | list | tuple)
            else _without_nul(value)
            for value in parameters
        )
    return parameters


def _replace_nul(
    _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _executemany: bool
) -> tuple[str, Any]:
    # PostgreSQL text cannot hold U+0000 (SQLite can): a NUL in a letter, a form field or an
    # extracted text would fail the whole write. It becomes U+FFFD, the replacement character;
    # the original file is kept byte for byte in the file store.
    return statement, _params_without_nul(parameters)


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout. The pool
    size applies to PostgreSQL (up to ``pool_size + max_overflow`` connections)."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        sqlite_writers.install(engine, str(Path(path).resolve()) if path else ":memory:")
        return engine
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"connect_timeout": 5},
    )
    event.listen(engine, "before_cursor_execute", _replace_nul, retval=True)
    return engine


class EngineCache:
    """Engines by URL with pool settings of their own, built once per process (a small pool for
    short side writes, a sidecar file). A process normally needs one or two; the bound keeps a
    long test run, which opens a database per test, from holding every file open."""

    LIMIT = 8

    def __init__(
        self, prepare: Callable[[Engine], None] = lambda engine: None, **pool: int
    ) -> None:
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()
        self._prepare = prepare
        self._pool = pool

    def get(self, url: str) -> Engine:
        with self._lock:
            engine = self._engines.get(url)
            if engine is None:
                engine = make_engine(url, **self._pool)
                self._prepare(engine)
                self._engines[url] = engine
                while len(self._engines) > self.LIMIT:
                    self._engines.pop(next(iter(self._engines))).dispose()
            return engine


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, rest = url.split("//", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}//{creds.split(':', 1)[0]}@{host}"


class Database:
    """One engine plus a session factory; ``session()`` commits on success, rolls back on error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        bind = (
            self.engine.execution_options(**{sqlite_writers.LAZY_BEGIN: True})
            if self.is_sqlite
            else self.engine
        )
        self.sessionmaker = sessionmaker(bind, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.effective_database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """Raise :class:`DatabaseUnavailableError` (German) when the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise DatabaseUnavailableError(
                f"Die Datenbank {describe_url(self.url)} ist nicht erreichbar "
                f"({str(exc.orig).strip().splitlines()[0] if exc.orig else exc}). "
                "Bitte prüfen Sie RATHAUS_DATABASE_URL und ob der Datenbankserver läuft."
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()
