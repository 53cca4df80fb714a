"""``rathaus config``: show the effective settings with secrets masked."""

from __future__ import annotations

import json

import typer

from rathaus.cli.common import settings
from rathaus.core.config import masked_dump

app = typer.Typer(help="Konfiguration anzeigen.", no_args_is_help=True)


@app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="Als JSON ausgeben.")) -> None:
    """Wirksame Einstellungen anzeigen (Geheimnisse maskiert)."""
    data = masked_dump(settings())
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}{key}." if isinstance(sub, dict) else f"{prefix}{key}", sub)
        else:
            typer.echo(f"{prefix.rstrip('.')} = {value}")

    walk("", data)
