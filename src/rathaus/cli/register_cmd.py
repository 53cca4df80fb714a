"""``rathaus register``: KI-Register: Übersicht aller KI-Funktionen exportieren (JSON, PDF)."""

from __future__ import annotations

import typer

app = typer.Typer(help="KI-Register: Übersicht aller KI-Funktionen exportieren (JSON, PDF).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """KI-Register: Übersicht aller KI-Funktionen exportieren (JSON, PDF)."""
