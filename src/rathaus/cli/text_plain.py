"""`rathaus text leichte-sprache …` und `rathaus eval plain-language`."""

from __future__ import annotations

import typer


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this file's commands to ``rathaus text`` (and its measurements to ``rathaus eval``)."""
