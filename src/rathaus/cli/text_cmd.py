"""``rathaus text``: the Schreibassistenz on the command line (one file per function)."""

from __future__ import annotations

import typer

from rathaus.cli import (
    eval_cmd,
    text_letters,
    text_minutes,
    text_plain,
    text_speech,
    text_summaries,
)

app = typer.Typer(
    help="Schreibassistenz: zusammenfassen, Niederschriften, Leichte Sprache, Briefe und mehr.",
    no_args_is_help=True,
)
for _module in (text_summaries, text_minutes, text_speech, text_plain, text_letters):
    _module.register(app, eval_cmd.app)
