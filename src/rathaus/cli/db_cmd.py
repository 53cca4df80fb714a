"""``rathaus db``: schema migrations."""

from __future__ import annotations

import typer

from rathaus.cli.common import database
from rathaus.core import migrate

app = typer.Typer(help="Datenbankschema verwalten (Alembic-Migrationen).", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    revision: str = typer.Argument("head", help="Zielrevision (Standard: neueste)."),
) -> None:
    """Datenbankschema auf den neuesten Stand bringen."""
    db = database(require_migrated=False)
    before = migrate.current_revision(db)
    migrate.upgrade(db, revision)
    after = migrate.current_revision(db)
    typer.echo(f"Datenbankschema: {before or 'leer'} → {after}")


@app.command("downgrade")
def downgrade(revision: str = typer.Argument(..., help="Zielrevision, z. B. 'base'.")) -> None:
    """Datenbankschema auf eine ältere Revision zurücksetzen."""
    db = database(require_migrated=False)
    migrate.downgrade(db, revision)
    typer.echo(f"Datenbankschema jetzt: {migrate.current_revision(db) or 'leer'}")


@app.command("current")
def current() -> None:
    """Aktuelle und neueste Revision anzeigen."""
    db = database(require_migrated=False)
    typer.echo(
        f"aktuell: {migrate.current_revision(db) or 'leer'}, neueste: {migrate.head_revision()}"
    )
