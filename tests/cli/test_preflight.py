"""Start-up checks: `rathaus serve` and `rathaus worker` start completely or not at all."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from rathaus.core.db import Database
from tests.factories import build_tenant, free_port
from tests.test_cli import run


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def migrated(tmp_path: Path, migrated_sqlite_template: Path) -> Path:
    """A data directory with a migrated, empty SQLite database."""
    path = tmp_path / "data" / "rathaus.db"
    path.parent.mkdir(parents=True)
    shutil.copy(migrated_sqlite_template, path)
    return path


def _with_tenant(database: Path, slug: str) -> None:
    db = Database(f"sqlite:///{database}")
    with db.session() as session:
        build_tenant(session, slug)
    db.dispose()


@pytest.mark.postgres
def test_serve_refuses_an_unreachable_database_before_binding_its_port(tmp_path):
    port = free_port()
    result = run(
        ["serve", "--port", str(port)],
        tmp_path,
        RATHAUS_DATABASE_URL="postgresql://postgres@127.0.0.1:1/nix",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Der Webserver startet nicht" in result.stderr
    assert "ist nicht erreichbar" in result.stderr and "RATHAUS_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr and "läuft auf" not in result.stdout
    assert _port_is_free(port)


def test_serve_refuses_an_unmigrated_database(tmp_path):
    result = run(["serve", "--port", str(free_port())], tmp_path)
    assert result.returncode == 2
    assert "Datenbankschema: Das Datenbankschema ist nicht aktuell" in result.stderr
    assert "rathaus db upgrade" in result.stderr


def test_serve_refuses_a_default_tenant_that_does_not_exist(tmp_path, migrated):
    _with_tenant(migrated, "musterstadt")
    result = run(
        ["serve", "--port", str(free_port())], tmp_path, RATHAUS_DEFAULT_TENANT="nirgendwo"
    )
    assert result.returncode == 2
    assert (
        "Standard-Kommune: RATHAUS_DEFAULT_TENANT: Die Kommune „nirgendwo“ gibt es" in result.stderr
    )
    assert "Vorhanden: musterstadt." in result.stderr


def test_serve_names_every_failed_check_at_once(tmp_path, migrated):
    # No municipality at all and a Redis that refuses connections: both are reported.
    result = run(
        ["serve", "--port", str(free_port())],
        tmp_path,
        RATHAUS_QUEUE__BACKEND="redis",
        RATHAUS_QUEUE__REDIS_URL="redis://127.0.0.1:1/0",
    )
    assert result.returncode == 2
    assert "Es gibt noch keine Kommune" in result.stderr
    assert "Warteschlange:" in result.stderr and "127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_refuses_a_redis_that_refuses_connections(tmp_path, migrated):
    result = run(
        ["worker"],
        tmp_path,
        RATHAUS_QUEUE__BACKEND="redis",
        RATHAUS_QUEUE__REDIS_URL="redis://127.0.0.1:1/0",
    )
    assert result.returncode == 2
    assert "Der Worker startet nicht" in result.stderr and "Warteschlange:" in result.stderr
    assert "Rathaus-Worker startet" not in result.stdout
    assert "Traceback" not in result.stderr


def test_worker_refuses_an_unmigrated_database(tmp_path):
    result = run(["worker"], tmp_path, RATHAUS_QUEUE__BACKEND="sqlite")
    assert result.returncode == 2
    assert "Der Worker startet nicht" in result.stderr and "rathaus db upgrade" in result.stderr


def test_memory_queue_is_refused_outside_demo(tmp_path, migrated):
    _with_tenant(migrated, "musterstadt")
    result = run(
        ["config", "pruefen"], tmp_path, RATHAUS_MODE="production", RATHAUS_SECRET_KEY="k" * 40
    )
    assert result.returncode == 1
    assert (
        "FEHLER   Warteschlange: RATHAUS_QUEUE__BACKEND=memory ist nur für Tests" in result.stdout
    )


def test_config_check_lists_every_check(tmp_path, migrated):
    _with_tenant(migrated, "musterstadt")
    result = run(["config", "pruefen"], tmp_path, RATHAUS_QUEUE__BACKEND="sqlite")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("Datenverzeichnis", "Datenbank", "Datenbankschema", "Standard-Kommune"):
        assert f"ok       {name}:" in result.stdout
    assert "ok       Warteschlange:" in result.stdout


def test_several_web_workers_on_sqlite_get_a_warning_not_a_refusal(tmp_path, migrated):
    _with_tenant(migrated, "musterstadt")
    result = run(
        ["config", "pruefen"], tmp_path, RATHAUS_QUEUE__BACKEND="sqlite", RATHAUS_WEB_WORKERS="3"
    )
    assert result.returncode == 0
    assert "Hinweis  Betriebsart: 3 Webprozesse mit einer SQLite-Datenbank" in result.stdout


@pytest.mark.redis
def test_worker_check_passes_with_redis(tmp_path, migrated):
    result = run(
        ["config", "pruefen", "--rolle", "worker"],
        tmp_path,
        RATHAUS_QUEUE__BACKEND="redis",
        RATHAUS_QUEUE__REDIS_URL="redis://127.0.0.1:6379/0",
        RATHAUS_QUEUE__NAME="preflight-test",
    )
    assert result.returncode == 0, result.stdout
    assert (
        "ok       Warteschlange: Redis" in result.stdout
        or "ok       Warteschlange:" in result.stdout
    )
    assert "Standard-Kommune" not in result.stdout  # the worker needs no default municipality


def test_a_newer_schema_is_a_hint_during_a_rolling_update(tmp_path, migrated):
    # A newer release migrated already: this older process may still start (expand-only updates).
    _with_tenant(migrated, "musterstadt")
    db = Database(f"sqlite:///{migrated}")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_aus_der_zukunft'")
    db.dispose()
    result = run(["config", "pruefen"], tmp_path, RATHAUS_QUEUE__BACKEND="sqlite")
    assert result.returncode == 0, result.stdout
    assert (
        "Hinweis  Datenbankschema: Das Datenbankschema (Stand 9999_aus_der_zukunft) ist neuer"
        in (result.stdout)
    )
    assert "ok       Standard-Kommune:" in result.stdout
