"""``rathaus audit``: Prüfprotokoll: Hash-Kette prüfen, exportieren, Export-Signatur prüfen."""

from __future__ import annotations

import typer

app = typer.Typer(help="Prüfprotokoll: Hash-Kette prüfen, exportieren, Export-Signatur prüfen.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Prüfprotokoll: Hash-Kette prüfen, exportieren, Export-Signatur prüfen."""
