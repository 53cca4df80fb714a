"""Helpers shared by the CLI commands: settings, database, and German error output."""

from __future__ import annotations

from rathaus.core.config import Settings, load_settings
from rathaus.core.db import Database
from rathaus.core.errors import DatabaseUnavailableError
from rathaus.core.migrate import current_revision, head_revision


def settings() -> Settings:
    return load_settings()


def database(s: Settings | None = None, *, require_migrated: bool = True) -> Database:
    """The configured database; reachable (and migrated, unless told otherwise) or a German error."""
    db = Database.from_settings(s or settings())
    db.ping()
    if require_migrated and current_revision(db) != head_revision():
        raise DatabaseUnavailableError(
            "Das Datenbankschema ist nicht aktuell. Bitte zuerst `rathaus db upgrade` ausführen."
        )
    return db
