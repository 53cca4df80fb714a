"""``rathaus lage``: Prognose des Eingangsvolumens."""

from __future__ import annotations

import typer


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this function's commands to ``rathaus lage`` and its measurement to ``rathaus eval``."""
