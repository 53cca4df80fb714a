"""ASGI entry point for uvicorn workers: ``rathaus.web.main:app`` built from the environment."""

from __future__ import annotations

from rathaus.web.app import create_app

app = create_app()
