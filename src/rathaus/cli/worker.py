"""``rathaus worker``: run the job queue's workers in the foreground."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from rathaus.cli.preflight import require_ready
from rathaus.core.config import load_settings
from rathaus.core.errors import RathausError
from rathaus.core.logging import configure_logging
from rathaus.core.metrics import prepare_metrics_dir
from rathaus.jobs import DEFAULT_SHUTDOWN_TIMEOUT_S, run_worker


class WorkerType(enum.StrEnum):
    THREAD = "thread"
    PROCESS = "process"


def worker(
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            max=64,
            help="Anzahl gleichzeitiger Jobs (Standard: RATHAUS_QUEUE__WORKERS).",
        ),
    ] = None,
    worker_type: Annotated[
        WorkerType,
        typer.Option(
            "--worker-type",
            help="thread (Standard) oder process (eigener Prozess je Worker, z. B. für OCR).",
        ),
    ] = WorkerType.THREAD,
    shutdown_timeout: Annotated[
        float,
        typer.Option(
            "--shutdown-timeout",
            min=0,
            help="Sekunden, die laufende Jobs bei SIGTERM zum Abschließen bekommen.",
        ),
    ] = DEFAULT_SHUTDOWN_TIMEOUT_S,
) -> None:
    """Arbeitet die Warteschlange ab (SQLite-Datei oder Redis, je nach RATHAUS_QUEUE__BACKEND)."""
    try:
        settings = load_settings()
        require_ready(settings, "worker", echo=typer.echo)
        prepare_metrics_dir(settings, "worker")
        configure_logging(settings)
        run_worker(
            settings,
            workers=workers,
            worker_type=str(worker_type),
            shutdown_timeout=shutdown_timeout,
            echo=typer.echo,
        )
    except RathausError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(code=exc.exit_code) from None
