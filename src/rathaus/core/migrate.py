"""Schema migrations with Alembic: the same revisions on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from rathaus.core.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


# Full-text index tables are created by hand in the migrations (SQLite FTS5 is a virtual table
# with shadow tables, PostgreSQL uses an expression index); comparing the models with the database must not count them.
UNMANAGED_PREFIXES = ("knowledge_fts",)
UNMANAGED_INDEXES = ("ix_knowledge_chunks_fulltext",)  # PostgreSQL GIN expression index


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """Alembic filter: every object except the hand-made full-text index tables."""
    if type_ == "index" and reflected and name in UNMANAGED_INDEXES:
        return False
    return not (type_ == "table" and reflected and str(name).startswith(UNMANAGED_PREFIXES))


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest)."""
    cfg = alembic_config(db)
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(db: Database, revision: str) -> None:
    cfg = alembic_config(db)
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def is_up_to_date(db: Database) -> bool:
    return current_revision(db) == head_revision()


@functools.cache
def known_revisions() -> tuple[str | None, frozenset[str]]:
    """This code's head revision and every revision it knows (read once per process)."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return script.get_current_head(), frozenset(r.revision for r in script.walk_revisions())


SchemaState = Literal["aktuell", "neuer", "veraltet"]


def schema_state(current: str | None) -> SchemaState:
    """How the database's revision ``current`` relates to this code.

    ``neuer``: a revision this code does not know, i.e. a newer release has migrated already
    (rolling update). Migrations only add during an update (docs/upgrades.md), so an older
    process may keep serving until it is replaced; ``veraltet``: empty or behind this code.
    """
    head, known = known_revisions()
    if current == head:
        return "aktuell"
    if current is not None and current not in known:
        return "neuer"
    return "veraltet"
