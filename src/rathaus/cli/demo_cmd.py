"""``rathaus demo``: load the demo municipality Musterstadt."""

from __future__ import annotations

import typer

from rathaus.cli.common import database, settings


def demo(
    if_empty: bool = typer.Option(
        False, "--if-empty", help="Nichts tun, wenn Musterstadt schon geladen ist."
    ),
) -> None:
    """Demo-Kommune „Musterstadt“ laden (Ämter, Leistungen, Personen, Vorgänge)."""
    from rathaus.core.demo.loader import load_demo
    from rathaus.core.security import hash_password

    db = database(settings())
    summary = load_demo(db, if_empty=if_empty, password_hasher=hash_password)
    typer.echo(str(summary))
