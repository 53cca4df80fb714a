"""The deployment files start exactly the processes this test starts, and those work together.

deploy/systemd/*.service and deploy/compose.yaml both run `rathaus db upgrade`, `rathaus serve`
and `rathaus worker` with the settings of deploy/rathaus.env.example. This module reads the
commands from the unit files, checks compose runs the same ones, and then starts them as real
processes on PostgreSQL and Redis: the schema is migrated, the web app answers, an item sent to
the API is triaged by the separate workers, and SIGTERM stops everything cleanly.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import BaseModel
from sqlalchemy import select

from rathaus.core import apikeys
from rathaus.core.config import Settings
from rathaus.core.db import Database
from rathaus.core.models import Case
from tests.conftest import fresh_pg_database
from tests.factories import build_tenant, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = DEPLOY / "systemd"
ENV_EXAMPLE = DEPLOY / "rathaus.env.example"
INSTALLED = "/opt/rathaus/.venv/bin/rathaus"
# unit file → compose service that must run the same command
SAME_PROCESS = {
    "rathaus-migrate.service": "migrate",
    "rathaus-web.service": "web",
    "rathaus-worker@.service": "worker",
    "rathaus-imap-idle.service": "imap-idle",
}


def unit_directives(unit: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            directives.setdefault(key, []).append(value)
    return directives


def exec_start(unit: str) -> list[str]:
    (command,) = unit_directives(unit)["ExecStart"]
    argv = shlex.split(command)
    assert argv[0] == INSTALLED, argv
    return ["rathaus", *argv[1:]]


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    return values


def test_compose_runs_the_commands_of_the_systemd_units():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    for unit, service in SAME_PROCESS.items():
        assert services[service]["command"] == exec_start(unit), (unit, service)
    # Every Rathaus process of compose reads the same settings file and shares the data volume.
    for service in SAME_PROCESS.values():
        assert services[service]["env_file"] == "rathaus.env"
        assert "rathaus-data:/var/lib/rathaus/data" in services[service]["volumes"]
        assert services[service]["environment"]["RATHAUS_QUEUE__BACKEND"] == "redis"
    assert services["worker"]["deploy"]["replicas"] == 2
    # One core per worker: two workers with default threading are slower than one.
    assert services["worker"]["environment"]["OMP_NUM_THREADS"] == "1"
    assert unit_directives("rathaus-worker@.service")["Environment"] == ["OMP_NUM_THREADS=1"]
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    # Redis keeps queued jobs across its own restart.
    assert "--appendonly" in services["redis"]["command"]


def test_units_share_settings_order_and_hardening():
    for unit in SAME_PROCESS:
        directives = unit_directives(unit)
        assert directives["EnvironmentFile"] == ["/etc/rathaus/rathaus.env"]
        assert directives["User"] == ["rathaus"]
    for unit in ("rathaus-web.service", "rathaus-worker@.service", "rathaus-imap-idle.service"):
        directives = unit_directives(unit)
        assert directives["Requires"] == ["rathaus-migrate.service"]
        assert "rathaus-migrate.service" in directives["After"][0]
        assert directives["ProtectSystem"] == ["strict"]
        assert directives["ReadWritePaths"] == ["/var/lib/rathaus"]
    target = unit_directives("rathaus.target")["Wants"][0].split()
    assert {"rathaus-web.service", "rathaus-worker@1.service", "rathaus-worker@2.service"} <= set(
        target
    )


def _field(model: type[BaseModel], path: list[str]) -> bool:
    name, rest = path[0], path[1:]
    field = model.model_fields.get(name)
    if field is None:
        return False
    if not rest:
        return True
    sub = field.annotation
    return isinstance(sub, type) and issubclass(sub, BaseModel) and _field(sub, rest)


def test_env_example_names_only_real_settings_and_no_secret():
    values = env_example()
    for key in values:
        assert key.startswith("RATHAUS_"), key
        path = key.removeprefix("RATHAUS_").lower().split("__")
        assert _field(Settings, path), f"{key} ist keine Einstellung"
    # Secrets are placeholders the operator must replace.
    assert values["RATHAUS_SECRET_KEY"].startswith("<")
    assert "<passwort>" in values["RATHAUS_DATABASE_URL"]
    assert values["RATHAUS_MODE"] == "production"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze fehlt")
def test_systemd_accepts_the_units(tmp_path):
    """`systemd-analyze verify` on the units, with the paths of this checkout."""
    rathaus = shutil.which("rathaus", path=str(Path(sys.executable).parent))
    assert rathaus is not None
    for unit in [*SAME_PROCESS, "rathaus.target"]:
        body = (UNITS / unit).read_text(encoding="utf-8").replace(INSTALLED, rathaus)
        body = re.sub(r"^(User|Group)=.*$", r"\1=root", body, flags=re.M)
        (tmp_path / unit).write_text(body, encoding="utf-8")
    (tmp_path / "rathaus-worker@1.service").symlink_to(tmp_path / "rathaus-worker@.service")
    names = [
        str(tmp_path / u)
        for u in [
            "rathaus-migrate.service",
            "rathaus-web.service",
            "rathaus-worker@1.service",
            "rathaus-imap-idle.service",
        ]
    ]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Missing dependencies of this machine (postgresql.service …) are not errors of our files.
    problems = [
        line
        for line in result.stderr.splitlines()
        if "rathaus" in line and "not found" not in line.lower() and "/etc/rathaus" not in line
    ]
    assert problems == [], result.stderr
    assert result.returncode == 0, result.stderr


# --- The processes of the deployment, really started ----------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_database("rathaus_deploy") as url:
        yield url


def _process_env(tmp_path: Path, pg_url: str, port: int, queue: str) -> dict[str, str]:
    """The example settings, placeholders replaced by this test's database, queue and paths."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATHAUS_")}
    env.update(env_example())
    env.update(
        RATHAUS_SECRET_KEY=uuid.uuid4().hex * 2,
        RATHAUS_DATA_DIR=str(tmp_path / "data"),
        RATHAUS_MODELS_DIR=str(Path("var/models").resolve()),
        RATHAUS_DATABASE_URL=pg_url,
        RATHAUS_QUEUE__NAME=queue,
        RATHAUS_DEFAULT_TENANT="deploystadt",
        RATHAUS_PORT=str(port),
        # No model server in this test: triage runs its non-LLM steps (and says so).
        RATHAUS_LLM__BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
    )
    return env


def _argv(command: list[str]) -> list[str]:
    return [sys.executable, "-m", "rathaus", *command[1:]]


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_deployed_processes_migrate_serve_and_triage(tmp_path, pg_url):
    port = free_port()
    queue = f"deploy_{uuid.uuid4().hex[:8]}"
    env = _process_env(tmp_path, pg_url, port, queue)
    migrate = subprocess.run(
        _argv(exec_start("rathaus-migrate.service")),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr

    db = Database(pg_url)
    with db.session() as session:
        world = build_tenant(session, "deploystadt")
        key, _ = apikeys.create(session, tenant=world.tenant, channel="api", name="Fachverfahren")

    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("web", "w1", "w2")}
    procs = {
        "web": subprocess.Popen(
            _argv(exec_start("rathaus-web.service")),
            env=env,
            cwd=tmp_path,
            stdout=logs["web"],
            stderr=subprocess.STDOUT,
        ),
        **{
            name: subprocess.Popen(
                _argv(exec_start("rathaus-worker@.service")),
                env=env,
                cwd=tmp_path,
                stdout=logs[name],
                stderr=subprocess.STDOUT,
            )
            for name in ("w1", "w2")
        },
    }

    def output(name: str) -> str:
        return (tmp_path / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            for name, proc in procs.items():
                assert proc.poll() is None, f"{name} beendet:\n{output(name)}"
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, output("web")
            time.sleep(0.3)
        health = httpx.get(base + "/healthz", timeout=5).json()
        assert health["database"] == {"kind": "postgresql", "ok": True, "migrated": True}
        assert health["queue"]["backend"] == "redis" and health["queue"]["ok"]

        response = httpx.post(
            base + "/api/v1/inbox/items",
            json={
                "text": "Sehr geehrte Damen und Herren, vor dem Haus Lindenstraße 4 ist seit "
                "drei Tagen die Straßenlaterne defekt. Bitte reparieren Sie sie. Mit "
                "freundlichen Grüßen, Erika Mustermann",
                "subject": "Laterne defekt",
            },
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        case_id = response.json()[0]["case_id"]
        # The web process only stores; a separate worker process triages.
        deadline = time.monotonic() + 120
        while True:
            with db.session() as session:
                triaged = session.scalar(select(Case.triaged_at).where(Case.id == case_id))
            if triaged is not None:
                break
            assert time.monotonic() < deadline, output("w1") + output("w2")
            time.sleep(0.5)
        assert "triage_job" in output("w1") + output("w2")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {name: proc.wait(timeout=60) for name, proc in procs.items()}
        for handle in logs.values():
            handle.close()
        db.dispose()
    assert codes == {"web": 0, "w1": 0, "w2": 0}, {n: output(n)[-2000:] for n in procs}
