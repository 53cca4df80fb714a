"""Structured logs: JSON lines with request id and tenant, the logging configuration of web and
worker processes, and the request id travelling from a web request into a real job worker."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rathaus import jobs
from rathaus.core import apikeys
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.logging import (
    REQUEST_ID_KWARG,
    JsonFormatter,
    LogContext,
    TextFormatter,
    bind,
    clean_request_id,
    current_context,
    current_request_id,
    unbind,
)
from rathaus.core.models import Case
from rathaus.web.app import create_app
from tests.factories import build_tenant
from tests.ops_processes import WORKER_RUNNER, Process, environment, wait_until


@pytest.fixture(autouse=True)
def _fresh_queue() -> Iterator[None]:
    jobs.reset()
    yield
    jobs.reset()


def _record(message: str = "Vorgang %s gespeichert", *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.getLogger("rathaus.test").makeRecord(
        "rathaus.test", logging.INFO, __file__, 1, message, args or ("A-1",), None, extra=extra
    )
    return record


def test_json_line_has_the_fields_and_the_context() -> None:
    token = bind(LogContext(request_id="anfrage-1", tenant_resolver=lambda: 7))
    try:
        line = JsonFormatter().format(_record(route="/vorgaenge/{case_id}", status=200))
    finally:
        unbind(token)
    data = json.loads(line)
    assert "\n" not in line
    assert data["message"] == "Vorgang A-1 gespeichert"
    assert data["level"] == "INFO" and data["logger"] == "rathaus.test"
    assert data["ts"].endswith("Z") and data["ts"][:4].isdigit()
    assert data["request_id"] == "anfrage-1" and data["tenant"] == 7
    assert data["route"] == "/vorgaenge/{case_id}" and data["status"] == 200
    assert isinstance(data["pid"], int)
    assert "exception" not in data


def test_json_line_without_context_and_with_an_exception() -> None:
    try:
        raise ValueError("kaputt")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "Fehler", (), sys.exc_info()
        )
    data = json.loads(JsonFormatter().format(record))
    assert "request_id" not in data and "tenant" not in data
    assert data["exception"].startswith("Traceback") and "ValueError: kaputt" in data["exception"]


def test_tenant_resolver_failure_does_not_break_the_line() -> None:
    def broken() -> int:
        raise RuntimeError("Sitzung weg")

    token = bind(LogContext(request_id="r-2", tenant_resolver=broken))
    try:
        data = json.loads(JsonFormatter().format(_record()))
    finally:
        unbind(token)
    assert data["request_id"] == "r-2" and "tenant" not in data


def test_text_line_names_the_request() -> None:
    token = bind(LogContext(request_id="r-3", tenant_resolver=lambda: 2))
    try:
        line = TextFormatter().format(_record())
    finally:
        unbind(token)
    assert line.endswith("INFO rathaus.test [request_id=r-3 tenant=2]: Vorgang A-1 gespeichert")
    assert TextFormatter().format(_record()).endswith("rathaus.test: Vorgang A-1 gespeichert")


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("6f1c2d3e-aaaa-4bbb-8ccc-123456789abc", True),
        ("lb-4711:abc.def_ghi", True),
        ("Root=1-67891233-abcdef012345678912345678", True),
        ("zwei worte", False),
        ("zeile\nFAKE-LOG", False),
        ("ümlaut", False),
        ("-beginnt-mit-strich", False),
        ("x" * 129, False),
        ("", False),
        (None, False),
    ],
)
def test_incoming_request_ids_are_taken_only_when_sane(value: str | None, kept: bool) -> None:
    assert clean_request_id(value) == (value if kept else None)


# --- Configuration of a process -----------------------------------------------------------------

SCRIPT = """
import logging, sys
from rathaus.core.config import load_settings
from rathaus.core.logging import LogContext, bind, configure_logging
configure_logging(load_settings(mode="demo", log_format=sys.argv[1], log_level="INFO"))
logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /suche?name=Erika HTTP/1.1" 200')
logging.getLogger("rathaus.debug").debug("nicht sichtbar")
bind(LogContext(request_id="prozess-1"))
logging.getLogger("huey").info("Job erledigt")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("rathaus.web.app").exception("Unerwarteter Fehler")
"""


def _run(log_format: str, tmp_path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, log_format],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=environment(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    return result.stderr


def test_configured_process_writes_one_json_object_per_line(tmp_path: Path) -> None:
    lines = _run("json", tmp_path).splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert [r["logger"] for r in records] == ["huey", "rathaus.web.app"]
    assert all(r["request_id"] == "prozess-1" for r in records)
    assert "ZeroDivisionError" in records[1]["exception"]
    assert records[1]["level"] == "ERROR"


def test_configured_process_in_text_format(tmp_path: Path) -> None:
    text = _run("text", tmp_path)
    assert "INFO huey [request_id=prozess-1]: Job erledigt" in text
    assert "Erika" not in text  # uvicorn's access line (path with query string) is off
    assert "nicht sichtbar" not in text
    assert "Traceback" in text and not text.lstrip().startswith("{")


# --- Jobs ---------------------------------------------------------------------------------------


def test_job_sees_the_request_id_of_the_request_that_enqueued_it(tmp_path: Path) -> None:
    seen: list[tuple[str | None, str | None, dict[str, Any]]] = []
    attempts: list[int] = []

    def _log_job(value: int, **kwargs: Any) -> None:
        context = current_context()
        seen.append((current_request_id(), context.job if context else None, kwargs))
        attempts.append(value)
        if len(attempts) == 1:
            raise RuntimeError("erster Versuch scheitert")

    declared = jobs.job(retries=1)(_log_job)
    try:
        jobs.get_huey(load_settings(mode="demo", data_dir=tmp_path, queue={"backend": "memory"}))
        token = bind(LogContext(request_id="anfrage-99"))
        try:
            declared.enqueue(5)
        finally:
            unbind(token)
        declared.enqueue(6)  # outside a request: a fresh id per run
    finally:
        jobs._REGISTRY.pop(declared.name, None)
    assert attempts == [5, 5, 6]  # the first run failed and was retried
    name = f"{__name__}._log_job"
    assert seen[0] == ("anfrage-99", name, {}) and seen[1] == ("anfrage-99", name, {})
    assert seen[2][0] not in (None, "anfrage-99") and seen[2][2] == {}
    assert current_request_id() is None  # nothing left bound after the jobs


def test_request_id_follows_the_job_into_a_worker_process(
    db: Database, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with db.session() as session:
        tenant = build_tenant(session, "alpha").tenant
        key, _ = apikeys.create(session, tenant=tenant, channel="api", name="Fachverfahren")
    data = tmp_path / "data"
    overrides: dict[str, Any] = {
        "mode": "demo",
        "data_dir": str(data),
        "database_url": db.url,
        "default_tenant": "alpha",
        "llm": {"backend": "none"},
        "queue": {"backend": "sqlite", "embedded_worker": False, "periodic": False},
    }
    app = create_app(load_settings(**overrides), database=db)
    with TestClient(app) as client:
        response = client.post(
            "/api/v1/inbox/items",
            json={"text": "Die Straßenlaterne vor Hausnummer 12 ist seit einer Woche dunkel."},
            headers={"Authorization": f"Bearer {key}", "X-Request-ID": "eingang-4711"},
        )
    assert response.status_code in (200, 201, 202), response.text
    assert response.headers["x-request-id"] == "eingang-4711"
    pending = jobs.get_huey().pending()
    assert [t.kwargs.get(REQUEST_ID_KWARG) for t in pending] == ["eingang-4711"]

    env = environment(
        mode="demo",
        data_dir=str(data),
        database_url=db.url,
        default_tenant="alpha",
        llm__backend="none",
        queue__backend="sqlite",
        queue__periodic="false",
        log_format="json",
    )
    worker = Process(WORKER_RUNNER, [], env, tmp_path_factory.mktemp("worker") / "worker.log")
    job = "rathaus.inbox.jobs.triage_job"

    def done() -> bool:
        return any(
            x.get("job") == job and "executed in" in x.get("message", "")
            for x in worker.json_lines()
        )

    try:
        wait_until(done, 120, "Vorprüfung im Worker nicht beendet", worker)
    finally:
        worker.stop()
    lines = [x for x in worker.json_lines() if x.get("job") == job]
    assert lines and all(x["request_id"] == "eingang-4711" for x in lines)
    assert all(x.get("level") != "ERROR" for x in worker.json_lines()), worker.output
    with db.session() as session:
        newest = select(Case).where(Case.tenant_id == tenant.id).order_by(Case.id.desc())
        case = session.scalars(newest).first()
        assert case is not None and case.triaged_at is not None
