"""``rathaus lage``: the Lagebild (decision support) on the command line, one file per function."""

from __future__ import annotations

import typer

from rathaus.cli import (
    eval_cmd,
    lage_bookings,
    lage_dashboard,
    lage_forecast,
    lage_process,
    lage_winter,
)

app = typer.Typer(
    help="Lagebild: Kennzahlen, Prognosen, Prozessanalyse, Buchungsprüfung, Winterdienst.",
    no_args_is_help=True,
)
for _module in (lage_dashboard, lage_forecast, lage_process, lage_bookings, lage_winter):
    _module.register(app, eval_cmd.app)
