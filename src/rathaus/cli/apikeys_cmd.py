"""``rathaus apikeys``: keys for the input channels (JSON API, Open311)."""

from __future__ import annotations

import typer

from rathaus.cli.common import database, settings
from rathaus.core import apikeys
from rathaus.core.repo import tenant_by_slug

app = typer.Typer(help="API-Schlüssel der Eingangskanäle verwalten.", no_args_is_help=True)
TenantOpt = typer.Option(
    None, "--kommune", help="Kommune (Kürzel); Standard: RATHAUS_DEFAULT_TENANT."
)


@app.command("create")
def create(
    channel: str = typer.Option(..., "--channel", help="Kanal: " + ", ".join(apikeys.CHANNELS)),
    name: str = typer.Option(
        ..., "--name", help="Wofür der Schlüssel ist, z. B. „Mängelmelder-App“."
    ),
    kommune: str | None = TenantOpt,
) -> None:
    """Schlüssel anlegen; er wird nur dieses eine Mal angezeigt."""
    with database().session() as session:
        tenant = tenant_by_slug(session, kommune or settings().default_tenant)
        key, row = apikeys.create(session, tenant=tenant, channel=channel, name=name)
    typer.echo(f"Schlüssel für {row.channel} ({row.name}): {key}")
    typer.echo("Bitte jetzt sicher ablegen – er wird nicht noch einmal angezeigt.")


@app.command("list")
def list_(kommune: str | None = TenantOpt) -> None:
    """Schlüssel der Kommune (nur Anfang, Kanal, Zustand)."""
    with database().session() as session:
        tenant = tenant_by_slug(session, kommune or settings().default_tenant)
        for row in apikeys.list_keys(session, tenant=tenant):
            state = "aktiv" if row.is_active else "widerrufen"
            typer.echo(f"{row.prefix}…  {row.channel:<8} {state:<10} {row.name}")


@app.command("revoke")
def revoke(
    prefix: str = typer.Argument(..., help="Anfang des Schlüssels (aus `list`)."),
    kommune: str | None = TenantOpt,
) -> None:
    """Schlüssel widerrufen."""
    with database().session() as session:
        tenant = tenant_by_slug(session, kommune or settings().default_tenant)
        apikeys.revoke(session, tenant=tenant, prefix=prefix)
    typer.echo(f"Widerrufen: {prefix}…")
