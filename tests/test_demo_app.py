"""What `make run` does, as real processes: migrate, load Musterstadt, serve, log in as a demo user."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from rathaus.core.demo import demo_credentials


def _env(tmp_path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATHAUS_")}
    env.update(
        RATHAUS_MODE="demo",
        RATHAUS_DATA_DIR=str(tmp_path / "data"),
        RATHAUS_PORT=str(port),
        RATHAUS_LOG_LEVEL="WARNING",
    )
    return env


def _cli(args, env, tmp_path, timeout: float = 120):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "rathaus", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_demo_installation_serves_and_logs_in(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(tmp_path, port)
    assert _cli(["db", "upgrade"], env, tmp_path).returncode == 0
    # As in `make run`: load, train the routing model on the history, triage the 60 items.
    first = _cli(["demo", "--if-empty"], env, tmp_path, timeout=900)
    assert first.returncode == 0 and "Musterstadt geladen" in first.stdout, first.stderr
    assert "Prüfung bestanden" in first.stdout
    assert "60 Eingänge vorgeprüft" in first.stdout
    again = _cli(["demo", "--if-empty"], env, tmp_path)
    assert again.returncode == 0 and "bereits geladen" in again.stdout
    server = subprocess.Popen(
        [sys.executable, "-m", "rathaus", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(base + "/healthz", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.2)
        body = health.json()
        assert health.status_code == 200
        assert "server" not in health.headers  # no product banner (ASVS 14.3.3)
        assert (
            body["database"]["ok"] and body["queue"]["ok"] and body["queue"]["backend"] == "sqlite"
        )
        with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as client:
            login_page = client.get("/login")
            assert "Demo-Zugänge" in login_page.text
            admin = next(c for c in demo_credentials() if c["username"] == "admin")
            assert admin["password"] in login_page.text
            token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text).group(1)
            start = client.post(
                "/login",
                data={
                    "username": admin["username"],
                    "password": admin["password"],
                    "csrf_token": token,
                    "kommune": "musterstadt",
                },
            )
            assert start.status_code == 200 and "Stadt Musterstadt" in start.text
            cases = client.get("/api/v1/cases?limit=500").json()
            assert len(cases) >= 60
            assert client.get("/system").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
