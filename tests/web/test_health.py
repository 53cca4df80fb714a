"""``/healthz`` reports database, queue and model backends; ``/docs`` is served without a CDN."""

from __future__ import annotations

from fastapi.testclient import TestClient

from rathaus.core.config import load_settings
from rathaus.web.app import create_app
from tests.factories import free_port


def test_healthz_reports_every_part(client, worlds):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] is True and body["database"]["migrated"] is True
    assert body["queue"]["backend"] == "memory"
    assert body["queue"]["ok"] is True
    assert set(body["models"]) == {"llm", "embeddings"}
    assert body["models"]["embeddings"]["ok"] is True


def test_healthz_names_what_is_down(db, tmp_path):
    port = free_port()
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        models_dir=tmp_path / "keine-modelle",
        queue={
            "backend": "redis",
            "redis_url": f"redis://127.0.0.1:{port}/0",
            "embedded_worker": False,
        },
        embeddings={"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1"},
    )
    with TestClient(create_app(settings, database=db)) as client:
        body = client.get("/healthz").json()
    assert body["status"] == "eingeschränkt"
    assert body["queue"]["ok"] is False and "nicht erreichbar" in body["queue"]["detail"]
    assert body["models"]["llm"]["ok"] is False
    assert "rathaus models assemble" in body["models"]["llm"]["detail"]
    assert body["models"]["embeddings"]["ok"] is False
    assert body["database"]["ok"] is True


def test_openapi_docs_are_local(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static/vendor/swagger-ui/{asset}" in page.text
        assert client.get(f"/static/vendor/swagger-ui/{asset}").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/v1/cases" in spec["paths"] and "/healthz" in spec["paths"]
