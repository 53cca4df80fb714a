"""`rathaus text transkribieren`: speech-to-text of a recording on the command line."""

from __future__ import annotations

import typer


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add this file's commands to ``rathaus text``."""
