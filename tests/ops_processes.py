"""Real Rathaus processes for the operations tests: a multi-worker web server and a job worker,
started exactly as ``rathaus serve`` / ``rathaus worker`` start them (metrics directory, logging
configuration), with their stderr in a file to read the log lines from."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

# What `rathaus serve` does after its start-up checks.
WEB_RUNNER = """
import sys
import uvicorn
from rathaus.core.config import load_settings
from rathaus.core.logging import uvicorn_log_config
from rathaus.core.metrics import prepare_metrics_dir

settings = load_settings()
prepare_metrics_dir(settings, "web")
uvicorn.run(
    "rathaus.web.main:app",
    host="127.0.0.1",
    port=int(sys.argv[1]),
    workers=int(sys.argv[2]),
    log_config=uvicorn_log_config(settings),
    access_log=False,
    proxy_headers=True,
)
"""

# What `rathaus worker` does after its start-up checks.
WORKER_RUNNER = """
from rathaus.core.config import load_settings
from rathaus.core.logging import configure_logging
from rathaus.core.metrics import prepare_metrics_dir
from rathaus.jobs import run_worker

settings = load_settings()
prepare_metrics_dir(settings, "worker")
configure_logging(settings)
run_worker(settings, workers=1, echo=lambda line: None)
"""


def environment(**settings: str) -> dict[str, str]:
    """This process's environment without any ``RATHAUS_*``/Prometheus variable, plus
    ``settings`` as ``RATHAUS_<NAME>`` variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RATHAUS_") and k.upper() != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update({f"RATHAUS_{k.upper()}": v for k, v in settings.items()})
    return env


class Process:
    """A Python subprocess running ``code``; stdout and stderr go to ``log``."""

    def __init__(self, code: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, *args],
                env=env,
                cwd=log.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        """Every line of the output that is a JSON object."""
        found = []
        for line in self.output.splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, process: Process) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{what} (nach {timeout} s); Ausgabe:\n{process.output[-4000:]}")


def wait_for_http(url: str, process: Process, timeout: float = 60) -> None:
    def up() -> bool:
        try:
            httpx.get(url, timeout=2)
        except httpx.HTTPError:
            return False
        return True

    wait_until(up, timeout, f"{url} antwortet nicht", process)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with exactly these ``labels`` in a Prometheus text
    exposition (summed when several processes reported it separately), or None."""
    from prometheus_client.parser import text_string_to_metric_families

    total = None
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                total = (total or 0.0) + s.value
    return total


def total(text: str, name: str, **labels: str) -> float:
    """The sum of every sample ``name`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    found = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                found += s.value
    return found
