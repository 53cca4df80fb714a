"""The ``rathaus`` command line: thin Typer commands over the modules' service functions."""

from __future__ import annotations

import sys

import typer

from rathaus.cli import (
    apikeys_cmd,
    audit_cmd,
    backup_cmd,
    config_cmd,
    datenschutz_cmd,
    db_cmd,
    demo_cmd,
    eval_cmd,
    governance_cmd,
    inbox_cmd,
    knowledge_cmd,
    lage_cmd,
    register_cmd,
    serve_cmd,
    tenants_cmd,
    text_cmd,
    users_cmd,
)

app = typer.Typer(
    name="rathaus",
    help="Rathaus – souveräne KI-Werkbank für Kommunalverwaltungen.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve_cmd.serve)
app.add_typer(db_cmd.app, name="db")
app.command("demo")(demo_cmd.demo)
app.add_typer(users_cmd.app, name="users")
app.add_typer(config_cmd.app, name="config")
app.add_typer(eval_cmd.app, name="eval")
app.add_typer(apikeys_cmd.app, name="apikeys")
app.add_typer(inbox_cmd.app, name="inbox")
app.add_typer(knowledge_cmd.app, name="wissen")
app.add_typer(text_cmd.app, name="text")
app.add_typer(lage_cmd.app, name="lage")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(register_cmd.app, name="register")
app.add_typer(datenschutz_cmd.app, name="datenschutz")
app.add_typer(governance_cmd.app, name="governance")
app.command("backup")(backup_cmd.backup)
app.command("backup-pruefen")(backup_cmd.check)
app.command("restore")(backup_cmd.restore)
app.command("migrate-to-postgres")(backup_cmd.migrate_to_postgres)
app.add_typer(tenants_cmd.app, name="mandanten")


def _mount_optional() -> None:
    # Sub-apps whose modules live beside this one; imported here so `--help` lists them.
    from rathaus.cli import models, worker

    app.command("worker")(worker.worker)
    app.add_typer(models.app, name="models")


_mount_optional()


def main() -> None:
    """Entry point: a :class:`RathausError` becomes one German line on stderr and its exit code."""
    from rathaus.core.errors import RathausError

    try:
        app()
    except RathausError as exc:
        typer.secho(f"Fehler: {exc.message}", err=True, fg=typer.colors.RED)
        sys.exit(exc.exit_code)
