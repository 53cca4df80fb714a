"""Prometheus metrics: summed over real uvicorn worker processes and a real job worker; route
templates as labels; who may read ``/metrics``; queue depth from SQLite and Redis; model calls
through a real OpenAI-compatible server; request ids on the way."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from rathaus import jobs
from rathaus.ai.calls import ListRecorder, RecordingLanguageModel, metered
from rathaus.ai.llm import ChatMessage, ModelUnavailableError, OpenAICompatibleModel
from rathaus.ai.registry import get_language_model
from rathaus.core import metrics
from rathaus.core.config import Settings, load_settings
from rathaus.core.db import Database
from rathaus.core.logging import JsonFormatter
from rathaus.jobs import ping_job, read_pings
from rathaus.web.app import create_app
from tests.factories import free_port
from tests.governance.recording_server import RecordingServer
from tests.ops_processes import (
    WEB_RUNNER,
    WORKER_RUNNER,
    Process,
    environment,
    sample,
    total,
    wait_for_http,
    wait_until,
)

TOKEN = "metriken-token-fuer-tests-0815"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _fresh_queue() -> Iterator[None]:
    jobs.reset()
    yield
    jobs.reset()


# --- Real processes: 2 uvicorn workers and a job worker -----------------------------------------


class Installation:
    def __init__(self, root: Path, template: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.data.mkdir()
        shutil.copy(template, root / "rathaus.db")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = environment(
            mode="demo",
            data_dir=str(self.data),
            database_url=f"sqlite:///{root / 'rathaus.db'}",
            queue__backend="sqlite",
            queue__embedded_worker="false",
            queue__periodic="false",
            llm__backend="none",
            log_format="json",
            metrics__token=TOKEN,
        )
        self.settings = load_settings(
            mode="demo",
            data_dir=self.data,
            queue={"backend": "sqlite", "embedded_worker": False, "periodic": False},
        )
        self.web = Process(WEB_RUNNER, [str(self.port), "2"], self.env, root / "web.log")

    def scrape(self, **headers: str) -> httpx.Response:
        return httpx.get(self.base + "/metrics", headers=headers, timeout=10)

    def access_lines(self, route: str) -> list[dict[str, Any]]:
        return [
            line
            for line in self.web.json_lines()
            if line.get("logger") == "rathaus.access" and line.get("route") == route
        ]


@pytest.fixture(scope="module")
def installation(
    tmp_path_factory: pytest.TempPathFactory, migrated_sqlite_template: Path
) -> Iterator[Installation]:
    inst = Installation(tmp_path_factory.mktemp("betrieb"), migrated_sqlite_template)
    try:
        wait_for_http(inst.base + "/readyz", inst.web)
        yield inst
    finally:
        inst.web.stop()


def _get(url: str, headers: dict[str, str] | None = None) -> int:
    # A new connection per request, so the kernel hands them to both worker processes.
    with httpx.Client(timeout=10) as client:
        return client.get(url, headers=headers or {}).status_code


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_requests_of_both_web_processes_are_summed(installation: Installation) -> None:
    inst = installation
    sent = 0
    pids: Counter[int] = Counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(10):  # until both processes have answered (usually the first round)
            list(pool.map(_get, [inst.base + "/login"] * 40))
            sent += 40
            wait_until(
                lambda: len(inst.access_lines("/login")) >= sent,
                20,
                "Zugriffszeilen fehlen",
                inst.web,
            )
            pids = Counter(line["pid"] for line in inst.access_lines("/login"))
            if len(pids) >= 2:
                break
    assert len(pids) == 2, f"nur ein Prozess hat geantwortet: {pids}"
    assert sum(pids.values()) == sent
    scraped = inst.scrape()
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    counted = total(scraped.text, "rathaus_http_requests_total", method="GET", route="/login")
    assert counted == sent
    histogram = total(
        scraped.text, "rathaus_http_request_duration_seconds_count", method="GET", route="/login"
    )
    assert histogram == sent


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_request_id_round_trip_and_json_access_line(installation: Installation) -> None:
    inst = installation
    response = httpx.get(
        inst.base + "/login?next=/suche%3Fname%3DErika-Mustermann",
        headers={"X-Request-ID": "rundreise-4711"},
        timeout=10,
    )
    assert response.headers["x-request-id"] == "rundreise-4711"

    def line() -> dict[str, Any] | None:
        return next(
            (x for x in inst.access_lines("/login") if x.get("request_id") == "rundreise-4711"),
            None,
        )

    wait_until(lambda: line() is not None, 20, "keine JSON-Zeile mit der Request-ID", inst.web)
    found = line()
    assert found is not None
    assert found["level"] == "INFO" and found["ts"].endswith("Z")
    assert found["method"] == "GET" and found["status"] == response.status_code
    assert found["message"] == f"GET /login {response.status_code}"
    assert isinstance(found["pid"], int) and found["duration_ms"] >= 0
    assert "Erika" not in inst.web.output and "suche" not in inst.web.output

    replaced = httpx.get(inst.base + "/login", headers={"X-Request-ID": "zwei worte"}, timeout=10)
    generated = replaced.headers["x-request-id"]
    assert generated != "zwei worte" and len(generated) == 32
    int(generated, 16)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_metrics_through_a_proxy_need_the_token(installation: Installation) -> None:
    inst = installation
    # uvicorn takes the client address from X-Forwarded-For when the peer is 127.0.0.1.
    for forwarded in ("203.0.113.7", "127.0.0.1"):
        denied = inst.scrape(**{"X-Forwarded-For": forwarded})
        assert denied.status_code == 401
        assert "RATHAUS_METRICS__TOKEN" in denied.json()["detail"]
        assert "rathaus_http_requests_total" not in denied.text
    assert inst.scrape(**{"X-Forwarded-For": "203.0.113.7", **BEARER}).status_code == 200
    wrong = {"Authorization": "Bearer falsches-token-0000000"}
    assert inst.scrape(**{"X-Forwarded-For": "203.0.113.7", **wrong}).status_code == 401


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_jobs_of_a_worker_process_and_queue_depth_show_in_web_metrics(
    installation: Installation,
) -> None:
    inst = installation
    jobs.get_huey(inst.settings)
    tokens = [f"metrik-{i}" for i in range(3)]
    for token in tokens:
        ping_job.enqueue(token)
    before = inst.scrape().text
    labels = {"backend": "sqlite", "queue": "rathaus"}
    assert sample(before, "rathaus_queue_up", **labels) == 1.0
    assert sample(before, "rathaus_queue_jobs", **labels, state="pending") == 3.0
    job = "rathaus.jobs.ping_job"
    worker = Process(WORKER_RUNNER, [], inst.env, inst.root / "worker.log")
    try:
        wait_until(
            lambda: sorted(read_pings(inst.settings)) == tokens, 60, "Jobs nicht gelaufen", worker
        )
        # Counted right after the job function returned (huey's post-execute hook).
        wait_until(
            lambda: sample(inst.scrape().text, "rathaus_jobs_total", job=job, outcome="ok") == 3,
            20,
            "Jobs nicht gezählt",
            worker,
        )
        after = inst.scrape().text
    finally:
        worker.stop()
    assert sample(after, "rathaus_job_duration_seconds_count", job=job) == 3.0
    assert sample(after, "rathaus_queue_jobs", **labels, state="pending") == 0.0
    # The worker logged each job as JSON, with its job name and a request id of its own.
    logged = [x for x in worker.json_lines() if x.get("job") == job]
    assert logged and all(len(x["request_id"]) == 32 for x in logged)


# --- In this process: labels, access rules, errors ------------------------------------------


def _app(db: Database, tmp_path: Path, **overrides: Any):  # type: ignore[no-untyped-def]
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        database_url=db.url,
        queue={"backend": "memory"},
        llm={"backend": "none"},
        **overrides,
    )
    return create_app(settings, database=db)


def _scrape(app: Any) -> str:
    with TestClient(app, client=("127.0.0.1", 40000)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return response.text


def test_routes_are_labelled_by_template_never_by_path(sqlite_db: Database, tmp_path: Path):
    app = _app(sqlite_db, tmp_path)
    before = _scrape(app)
    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/vorgaenge/987654321").status_code == 303  # to the login page
        assert client.get("/gibt-es-nicht-13579?name=Erika").status_code == 404
    after = _scrape(app)
    route = {"method": "GET", "route": "/vorgaenge/{case_id}", "status": "303"}
    name = "rathaus_http_requests_total"
    assert (sample(after, name, **route) or 0) - (sample(before, name, **route) or 0) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert (sample(after, name, **unmatched) or 0) - (sample(before, name, **unmatched) or 0) == 1
    for raw in ("987654321", "gibt-es-nicht", "Erika"):
        assert raw not in after


@pytest.mark.parametrize(
    ("client_host", "headers", "networks", "status"),
    [
        ("127.0.0.1", {}, None, 200),
        ("::1", {}, None, 200),
        ("::ffff:127.0.0.1", {}, None, 200),
        ("10.1.2.3", {}, None, 401),
        ("10.1.2.3", {}, ["10.0.0.0/8"], 200),
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}, None, 401),
        ("127.0.0.1", {"X-Real-IP": "198.51.100.1"}, None, 401),
        ("198.51.100.1", BEARER, None, 200),
        ("198.51.100.1", {"Authorization": "Bearer " + "x" * 30}, None, 401),
        ("testclient", {}, None, 401),
    ],
)
def test_who_may_read_metrics(
    sqlite_db: Database,
    tmp_path: Path,
    client_host: str,
    headers: dict[str, str],
    networks: list[str] | None,
    status: int,
) -> None:
    config: dict[str, Any] = {"token": TOKEN}
    if networks is not None:
        config["allowed_networks"] = networks
    app = _app(sqlite_db, tmp_path, metrics=config)
    with TestClient(app, client=(client_host, 40000)) as client:
        response = client.get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "Metriken" in response.json()["detail"]
    else:
        assert "# TYPE rathaus_http_requests_total counter" in response.text


def test_metrics_can_be_switched_off(sqlite_db: Database, tmp_path: Path) -> None:
    app = _app(sqlite_db, tmp_path, metrics={"enabled": False})
    with TestClient(app, client=("127.0.0.1", 40000)) as client:
        assert client.get("/metrics").status_code == 404


def test_bad_metrics_settings_are_refused_in_german(tmp_path: Path) -> None:
    from rathaus.core.errors import ConfigError

    with pytest.raises(ConfigError, match="RATHAUS_METRICS__ALLOWED_NETWORKS.*keine IP-Adresse"):
        load_settings(mode="demo", data_dir=tmp_path, metrics={"allowed_networks": ["intern"]})
    with pytest.raises(ConfigError, match="RATHAUS_METRICS__TOKEN.*mindestens 16 Zeichen"):
        load_settings(mode="demo", data_dir=tmp_path, metrics={"token": "kurz"})


def test_unexpected_error_is_counted_and_carries_the_request_id(
    sqlite_db: Database, tmp_path: Path
) -> None:
    app = _app(sqlite_db, tmp_path)

    def kaputt() -> None:
        raise RuntimeError("Absicht")

    app.add_api_route("/kaputt", kaputt)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(JsonFormatter().format(record))

    handler = Collect()
    logging.getLogger("rathaus.web.app").addHandler(handler)
    try:
        before = _scrape(app)
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/kaputt", headers={"X-Request-ID": "fehler-0815"})
        after = _scrape(app)
    finally:
        logging.getLogger("rathaus.web.app").removeHandler(handler)
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "fehler-0815"
    assert "Fehlerkennung fehler-0815" in response.text
    assert any('"request_id": "fehler-0815"' in x and "RuntimeError: Absicht" in x for x in lines)
    name, labels = "rathaus_http_exceptions_total", {"method": "GET", "route": "/kaputt"}
    assert (sample(after, name, **labels, exception="RuntimeError") or 0) - (
        sample(before, name, **labels, exception="RuntimeError") or 0
    ) == 1
    status = {"method": "GET", "route": "/kaputt", "status": "500"}
    # Other tests add a /kaputt route too, and the counters live as long as the process.
    assert (sample(after, "rathaus_http_requests_total", **status) or 0) - (
        sample(before, "rathaus_http_requests_total", **status) or 0
    ) == 1


# --- Queue depth -------------------------------------------------------------------------------


def _queue_settings(tmp_path: Path, **queue: Any) -> Settings:
    return load_settings(
        mode="demo",
        data_dir=tmp_path,
        queue={"embedded_worker": False, "periodic": False, **queue},
        llm={"backend": "none"},
    )


def test_queue_depth_of_the_sqlite_queue(sqlite_db: Database, tmp_path: Path) -> None:
    settings = _queue_settings(tmp_path, backend="sqlite")
    jobs.get_huey(settings)
    for token in ("a", "b", "c"):
        ping_job.enqueue(token)
    text = _scrape(create_app(settings, database=sqlite_db))
    labels = {"backend": "sqlite", "queue": "rathaus"}
    assert sample(text, "rathaus_queue_jobs", **labels, state="pending") == 3.0
    # A scheduled job waits in the queue until a consumer moves it to the schedule.
    assert sample(text, "rathaus_queue_jobs", **labels, state="scheduled") == 0.0


@pytest.mark.redis
def test_queue_depth_of_the_redis_queue(sqlite_db: Database, tmp_path: Path) -> None:
    name = f"metriken-{uuid.uuid4().hex[:8]}"
    settings = _queue_settings(tmp_path, backend="redis", name=name)
    huey = jobs.get_huey(settings)
    try:
        for token in ("a", "b"):
            ping_job.enqueue(token)
        text = _scrape(create_app(settings, database=sqlite_db))
    finally:
        huey.flush()
    labels = {"backend": "redis", "queue": name}
    assert sample(text, "rathaus_queue_up", **labels) == 1.0
    assert sample(text, "rathaus_queue_jobs", **labels, state="pending") == 2.0


def test_unreachable_queue_is_reported_not_an_error(sqlite_db: Database, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings = _queue_settings(tmp_path, backend="redis", redis_url=url)
    text = _scrape(create_app(settings, database=sqlite_db))
    assert sample(text, "rathaus_queue_up", backend="redis", queue="rathaus") == 0.0
    assert "rathaus_queue_jobs" not in text.replace("# HELP rathaus_queue_jobs", "")


# --- Model calls through a real OpenAI-compatible server -------------------------------------


def _model_settings(tmp_path: Path, base_url: str) -> Settings:
    return load_settings(
        mode="demo",
        data_dir=tmp_path,
        llm={
            "backend": "openai",
            "base_url": base_url,
            "model": "aufzeichnung",
            "location": "eigener_server",
            "max_retries": 0,
            "timeout_s": 5,
        },
    )


def _model_numbers(function: str, backend: str = "openai") -> dict[str, float]:
    body, _ = metrics.exposition()
    text = body.decode()
    labels = {"function": function, "backend": backend}

    def value(name: str, **more: str) -> float:
        return sample(text, name, **labels, **more) or 0

    return {
        "ok": value("rathaus_model_calls_total", status="ok"),
        "error": value("rathaus_model_calls_total", status="error"),
        "prompt": value("rathaus_model_tokens_total", kind="prompt"),
        "completion": value("rathaus_model_tokens_total", kind="completion"),
        "timed": value("rathaus_model_call_duration_seconds_count"),
    }


@pytest.fixture
def model_server() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


MESSAGES = [ChatMessage("user", "Wann hat das Bürgeramt geöffnet?")]


def test_model_calls_latency_and_tokens_are_counted(
    tmp_path: Path, model_server: RecordingServer
) -> None:
    function = f"test.antwort-{uuid.uuid4().hex[:6]}"
    recorder = ListRecorder()
    model = RecordingLanguageModel(
        get_language_model(_model_settings(tmp_path, model_server.url)),
        recorder,
        function=function,
    )
    model.complete(MESSAGES)
    assert "".join(model.stream(MESSAGES))
    numbers = _model_numbers(function)
    assert numbers == {"ok": 2, "error": 0, "prompt": 10, "completion": 10, "timed": 2}
    assert model_server.paths().count("/v1/chat/completions") == 2
    assert [r.ok for r in recorder.records] == [True, True]

    down = RecordingLanguageModel(
        get_language_model(_model_settings(tmp_path, f"http://127.0.0.1:{free_port()}/v1")),
        ListRecorder(),
        function=function,
    )
    with pytest.raises(ModelUnavailableError):
        down.complete(MESSAGES)
    assert _model_numbers(function)["error"] == 1


def test_nested_wrappers_count_a_call_once_under_the_outer_function(
    tmp_path: Path, model_server: RecordingServer
) -> None:
    inner_name = f"test.registry-{uuid.uuid4().hex[:6]}"
    outer_name = f"test.funktion-{uuid.uuid4().hex[:6]}"
    counted = metered(get_language_model(_model_settings(tmp_path, model_server.url)),
                      function=inner_name)  # fmt: skip
    recorded = RecordingLanguageModel(counted, ListRecorder(), function=outer_name)
    recorded.complete(MESSAGES)
    assert "".join(recorded.stream(MESSAGES))
    assert _model_numbers(outer_name)["ok"] == 2
    assert _model_numbers(inner_name)["ok"] == 0
    counted.complete(MESSAGES)  # alone, the metered model counts under its own name
    assert _model_numbers(inner_name)["ok"] == 1
    assert _model_numbers(outer_name)["ok"] == 2


# --- The metrics directory of `rathaus serve` / `rathaus worker` --------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_serve_start_empties_its_directory_and_drops_gone_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, "vorher")  # restored after the test
    settings = load_settings(mode="demo", data_dir=tmp_path, metrics={"directory": tmp_path / "m"})
    base = tmp_path / "m"
    for name in ("web", f"worker-{_dead_pid()}", f"worker-{os.getpid()}"):
        (base / name).mkdir(parents=True)
        (base / name / "counter_1.db").write_bytes(b"alt")
    web = metrics.prepare_metrics_dir(settings, "web")
    assert web == base / "web" and os.environ[metrics.MULTIPROC_ENV] == str(web)
    assert sorted(p.name for p in base.iterdir()) == ["web", f"worker-{os.getpid()}"]
    assert list(web.iterdir()) == []
    assert (base / f"worker-{os.getpid()}" / "counter_1.db").exists()  # a running worker's
    worker = metrics.prepare_metrics_dir(settings, "worker")
    assert worker == base / f"worker-{os.getpid()}" and list(worker.iterdir()) == []


def test_default_directory_is_per_machine_below_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(mode="demo", data_dir=tmp_path)
    assert metrics.metrics_base_dir(settings) == (tmp_path / "metrics" / socket.gethostname())


def test_unwritable_metrics_directory_is_a_german_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rathaus.core.errors import ConfigError

    monkeypatch.setenv(metrics.MULTIPROC_ENV, "vorher")
    (tmp_path / "datei").write_text("kein Ordner")
    settings = load_settings(
        mode="demo", data_dir=tmp_path, metrics={"directory": tmp_path / "datei"}
    )
    with pytest.raises(ConfigError, match="Ordner für die Metriken .* kann nicht angelegt"):
        metrics.prepare_metrics_dir(settings, "web")


FILE_BACKED = """
import sys
import prometheus_client  # imported before the directory is set, as a library might
from rathaus.core import metrics
from rathaus.core.config import load_settings

settings = load_settings(mode="demo", data_dir=sys.argv[1])
directory = metrics.prepare_metrics_dir(settings, "worker")
metrics.observe_http(method="GET", route="/probe", status=200, seconds=0.01)
files = metrics.metric_files(directory)
body, _ = metrics.exposition()
print(len(files), b'route="/probe"' in body)
"""


def test_metrics_are_file_backed_even_if_prometheus_client_was_imported_first(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", FILE_BACKED, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(),
    )
    assert result.returncode == 0, result.stderr
    count, found = result.stdout.split()
    assert int(count) >= 1 and found == "True"


def test_importing_cli_web_and_jobs_leaves_prometheus_client_unloaded() -> None:
    code = (
        "import sys, rathaus.cli, rathaus.web.app, rathaus.jobs, rathaus.ai.calls\n"
        "print('prometheus_client' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# --- The access line ----------------------------------------------------------------------------


def test_access_line_names_route_status_and_the_logged_in_tenant(client, worlds) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import login

    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:  # formatted now, in the request
            lines.append(json.loads(JsonFormatter().format(record)))

    access = logging.getLogger("rathaus.access")
    handler, level = Collect(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        assert login(client, "sb").status_code == 303
        case_id = worlds["a"].cases["BA"].id
        page = client.get(f"/vorgaenge/{case_id}?suche=Erika", headers={"X-Request-ID": "akte-1"})
        client.get("/readyz")  # a probe: DEBUG only
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert page.status_code == 200
    line = next(x for x in lines if x["request_id"] == "akte-1")
    assert line["route"] == "/vorgaenge/{case_id}" and line["status"] == 200
    assert line["tenant"] == worlds["a"].tenant.id
    assert line["message"] == "GET /vorgaenge/{case_id} 200"
    assert not any(x["route"] == "/readyz" for x in lines)
    assert all(
        "Erika" not in json.dumps(x) and f"/vorgaenge/{case_id}" not in json.dumps(x) for x in lines
    )


def test_every_model_the_registry_hands_out_is_counted(
    tmp_path: Path, model_server: RecordingServer
) -> None:
    """Also calls no feature records itself (assistant answers, drafts, summaries …) count, under
    the function the call site asked the registry for; the model still looks like itself."""
    model = get_language_model(_model_settings(tmp_path, model_server.url), "zusammenfassung")
    assert isinstance(model, OpenAICompatibleModel)
    before = _model_numbers("zusammenfassung")
    model.complete(MESSAGES)
    after = _model_numbers("zusammenfassung")
    assert (after["ok"] - before["ok"], after["timed"] - before["timed"]) == (1, 1)
    # The recording server reports 10 prompt and 10 completion tokens per completion.
    assert (after["prompt"] - before["prompt"], after["completion"] - before["completion"]) == (
        10,
        10,
    )
