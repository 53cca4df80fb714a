"""``/readyz``: 200 only when this process can serve now; 503 with a German reason otherwise."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.web.app import create_app
from tests.factories import free_port


def _ready(db: Database, tmp_path: Path, **overrides: Any) -> tuple[int, dict[str, Any]]:
    settings: dict[str, Any] = {
        "mode": "demo",
        "data_dir": tmp_path,
        "queue": {"backend": "memory"},
        "llm": {"backend": "none"},
    }
    settings.update(overrides)
    app = create_app(load_settings(**settings), database=db)
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, response.json()


def test_ready_on_a_migrated_database(db: Database, tmp_path: Path) -> None:
    status, body = _ready(db, tmp_path)
    assert status == 200, body
    assert body["ready"] is True and body["status"] == "bereit" and "reason" not in body
    assert all(check["ok"] for check in body["checks"].values())


def test_not_ready_on_an_empty_database_file(tmp_path: Path) -> None:
    empty = Database(f"sqlite:///{tmp_path / 'neu.db'}")
    try:
        status, body = _ready(empty, tmp_path)
    finally:
        empty.dispose()
    assert status == 503
    assert body["ready"] is False and body["status"] == "nicht bereit"
    assert "Datenbankschema ist veraltet (Stand leer" in body["reason"]
    assert "rathaus db upgrade" in body["reason"]
    assert body["checks"]["queue"]["ok"] is True


def test_not_ready_on_an_older_schema(sqlite_db: Database, tmp_path: Path) -> None:
    from rathaus.core.migrate import downgrade

    downgrade(sqlite_db, "-1")
    status, body = _ready(sqlite_db, tmp_path)
    assert status == 503 and "Datenbankschema ist veraltet" in body["reason"]


def test_still_ready_when_a_newer_release_migrated_already(
    sqlite_db: Database, tmp_path: Path
) -> None:
    with sqlite_db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_naechste_version'"))
    status, body = _ready(sqlite_db, tmp_path)
    assert status == 200, body
    assert "neuer als dieser Programmstand" in body["checks"]["database"]["detail"]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_not_ready_when_the_database_is_unreachable(kind: str, tmp_path: Path) -> None:
    if kind == "sqlite":  # a path SQLite cannot open (a directory where the file should be)
        (tmp_path / "rathaus.db").mkdir()
        url = f"sqlite:///{tmp_path / 'rathaus.db'}"
    else:  # a PostgreSQL server that does not listen
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/rathaus"
    unreachable = Database(url)
    try:
        status, body = _ready(unreachable, tmp_path)
    finally:
        unreachable.dispose()
    assert status == 503
    assert "nicht erreichbar" in body["reason"]
    assert body["checks"]["database"]["ok"] is False


def test_not_ready_when_the_queue_is_unreachable(db: Database, tmp_path: Path) -> None:
    queue = {
        "backend": "redis",
        "redis_url": f"redis://127.0.0.1:{free_port()}/0",
        "embedded_worker": False,
    }
    status, body = _ready(db, tmp_path, queue=queue)
    assert status == 503
    assert "Warteschlange" in body["reason"] and "nicht erreichbar" in body["reason"]
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.redis
def test_ready_with_the_redis_queue(db: Database, tmp_path: Path) -> None:
    queue = {"backend": "redis", "embedded_worker": False, "name": "readyz-test"}
    status, body = _ready(db, tmp_path, queue=queue)
    assert status == 200, body


def test_not_ready_when_the_local_model_file_is_missing(db: Database, tmp_path: Path) -> None:
    status, body = _ready(db, tmp_path, llm={"backend": "local"}, models_dir=tmp_path / "leer")
    assert status == 503
    assert "rathaus models assemble" in body["reason"]
    assert body["checks"]["models"]["ok"] is False


def test_a_model_server_that_is_down_does_not_make_the_process_unready(
    db: Database, tmp_path: Path
) -> None:
    # Answers fall back to extractive mode; /healthz reports the server, /readyz stays 200.
    llm = {"backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1"}
    status, body = _ready(db, tmp_path, llm=llm)
    assert status == 200, body


def test_answer_is_cached_for_two_seconds_only(sqlite_db: Database, tmp_path: Path) -> None:
    settings = load_settings(
        mode="demo", data_dir=tmp_path, queue={"backend": "memory"}, llm={"backend": "none"}
    )
    app = create_app(settings, database=sqlite_db)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        with sqlite_db.engine.begin() as conn:
            conn.execute(text("DELETE FROM alembic_version"))
        assert client.get("/readyz").status_code == 200  # the cached answer
        stamp, body = app.state.ready_cache
        app.state.ready_cache = (stamp - 2.5, body)  # as if 2.5 s had passed
        assert time.monotonic() - app.state.ready_cache[0] > 2
        again = client.get("/readyz")
    assert again.status_code == 503 and "Stand leer" in again.json()["reason"]
