"""A database that cannot be reached: every route answers 503 in German, never 500.

The database is a PostgreSQL address on a port where nothing listens (connections are refused
at once, as while a server restarts). The restart itself, with real processes, is in
test_pg_restart.py."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from rathaus.core.config import load_settings
from rathaus.web.app import create_app
from rathaus.web.db_outage import MESSAGE
from tests.factories import free_port


def _client(tmp_path: Path) -> TestClient:
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/rathaus",
        queue={"backend": "memory"},
    )
    return TestClient(create_app(settings), follow_redirects=False)


def test_api_gets_503_with_retry_after(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        response = client.post(
            "/api/v1/inbox/items",
            json={"text": "Die Straßenlaterne vor Haus 4 ist defekt."},
            headers={"Authorization": "Bearer rh_irgendein-schluessel"},
        )
        assert response.status_code == 503
        assert response.json() == {"detail": MESSAGE}
        assert response.headers["Retry-After"] == "5"
        asked = client.post("/api/v1/assistant/ask", json={"question": "Wann hat das Amt auf?"})
        assert (asked.status_code, asked.json()) == (503, {"detail": MESSAGE})


def test_pages_get_the_error_page_with_503(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        response = client.get("/login")
        assert response.status_code == 503
        assert "text/html" in response.headers["content-type"]
        assert "Die Datenbank ist gerade nicht erreichbar" in response.text
        assert "unerwarteter Fehler" not in response.text
