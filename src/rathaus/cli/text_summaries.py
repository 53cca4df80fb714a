"""`rathaus text zusammenfassen` und `rathaus eval summaries`."""

from __future__ import annotations

import typer


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this file's commands to ``rathaus text`` (and its measurements to ``rathaus eval``)."""
