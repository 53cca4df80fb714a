"""``rathaus datenschutz``: Datenschutz: Aufbewahrungsregeln, Auskunft (Art. 15), Löschung (Art. 17), Zugriffsprotokoll."""

from __future__ import annotations

import typer

app = typer.Typer(help="Datenschutz: Aufbewahrungsregeln, Auskunft (Art. 15), Löschung (Art. 17), Zugriffsprotokoll.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Datenschutz: Aufbewahrungsregeln, Auskunft (Art. 15), Löschung (Art. 17), Zugriffsprotokoll."""
