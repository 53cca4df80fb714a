"""``rathaus serve``: start the web app (uvicorn)."""

from __future__ import annotations

import typer

from rathaus.cli.common import settings
from rathaus.cli.preflight import require_ready
from rathaus.core.logging import uvicorn_log_config
from rathaus.core.metrics import prepare_metrics_dir


def serve(
    host: str = typer.Option(None, help="Adresse (Standard: RATHAUS_HOST)."),
    port: int = typer.Option(None, help="Port (Standard: RATHAUS_PORT)."),
    workers: int = typer.Option(None, help="Anzahl Webprozesse (Standard: RATHAUS_WEB_WORKERS)."),
) -> None:
    """Web-App starten."""
    import uvicorn

    s = settings()
    host = host or s.host
    port = port or s.port
    workers = workers or s.web_workers
    # All or nothing: a German message and no bound port when the database, the schema, the
    # default municipality or the queue is not usable.
    require_ready(s, "web", web_workers=workers, echo=typer.echo)
    # Metrics of all uvicorn processes are summed through one directory; logs as configured
    # (text or JSON lines with request ids), the access log comes from our own middleware.
    prepare_metrics_dir(s, "web")
    typer.echo(f"Rathaus läuft auf http://{host}:{port} ({'Demo' if s.is_demo else 'Produktion'})")
    uvicorn.run(
        "rathaus.web.main:app",
        host=host,
        port=port,
        workers=workers,
        factory=False,
        log_level=s.log_level.lower(),
        log_config=uvicorn_log_config(s),
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )
