"""``rathaus serve``: start the web app (uvicorn)."""

from __future__ import annotations

import typer

from rathaus.cli.common import database, settings


def serve(
    host: str = typer.Option(None, help="Adresse (Standard: RATHAUS_HOST)."),
    port: int = typer.Option(None, help="Port (Standard: RATHAUS_PORT)."),
    workers: int = typer.Option(None, help="Anzahl Webprozesse (Standard: RATHAUS_WEB_WORKERS)."),
) -> None:
    """Web-App starten."""
    import uvicorn

    s = settings()
    database(s).dispose()  # fail fast with a German message before binding the port
    host = host or s.host
    port = port or s.port
    workers = workers or s.web_workers
    typer.echo(f"Rathaus läuft auf http://{host}:{port} ({'Demo' if s.is_demo else 'Produktion'})")
    uvicorn.run(
        "rathaus.web.main:app",
        host=host,
        port=port,
        workers=workers,
        factory=False,
        log_level=s.log_level.lower(),
        proxy_headers=True,
    )
