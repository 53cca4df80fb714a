"""``rathaus governance``: Governance: Pseudonymisierungsschlüssel und Modellrichtlinien."""

from __future__ import annotations

import typer

app = typer.Typer(help="Governance: Pseudonymisierungsschlüssel und Modellrichtlinien.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Governance: Pseudonymisierungsschlüssel und Modellrichtlinien."""
