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


@app.command("pruefen")
def check(
    rolle: str = typer.Option(
        "web", "--rolle", help="web (wie `rathaus serve`) oder worker (wie `rathaus worker`)."
    ),
) -> None:
    """Startprüfung ausführen: Datenbank, Schema, Standard-Kommune, Warteschlange, Verzeichnisse."""
    from rathaus.cli.preflight import run_checks

    if rolle not in ("web", "worker"):
        typer.echo(f"Unbekannte Rolle {rolle!r}; erlaubt sind web und worker.", err=True)
        raise typer.Exit(code=2)
    s = settings()
    checks = run_checks(s, rolle, web_workers=s.web_workers)  # type: ignore[arg-type]
    for c in checks:
        mark = "ok" if c.ok else ("FEHLER" if c.fatal else "Hinweis")
        typer.echo(f"{mark:<8} {c.name}: {c.message}")
    if any(not c.ok and c.fatal for c in checks):
        raise typer.Exit(code=1)
