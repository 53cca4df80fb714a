"""Real Rathaus installations for the server benchmarks (bench_load.py, bench_workers.py).

An installation is a data directory plus either a PostgreSQL database of its own on the
server at ``--pg-url`` and a Redis queue of its own (server mode), or a SQLite file and the
SQLite queue (embedded mode). It is set up with the real commands (`rathaus db upgrade`,
`rathaus demo`, `rathaus apikeys create`) and runs `rathaus serve` / `rathaus worker`
subprocesses; everything is removed afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

RATHAUS = [sys.executable, "-m", "rathaus"]
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise SystemExit(f"{what} (nach {timeout:g} s)")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Installation:
    """One Rathaus installation under ``data_dir``; ``mode`` is ``server`` or ``embedded``."""

    mode: str
    data_dir: Path
    env: dict[str, str]
    database_url: str
    pg_admin_url: str | None = None
    pg_database: str | None = None
    processes: list[Process] = field(default_factory=list)
    api_key: str = ""

    @classmethod
    def create(
        cls,
        mode: str,
        *,
        pg_url: str,
        redis_url: str,
        settings: dict[str, str] | None = None,
    ) -> Installation:
        data_dir = Path(tempfile.mkdtemp(prefix=f"rathaus-bench-{mode}-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("RATHAUS_")}
        env.update(RATHAUS_MODE="demo", RATHAUS_DATA_DIR=str(data_dir), RATHAUS_LLM__BACKEND="none")
        env.update({f"RATHAUS_{k.upper()}": v for k, v in (settings or {}).items()})
        if mode == "server":
            name = f"rathaus_bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = f"{pg_url.rsplit('/', 1)[0]}/{name}"
            env.update(
                RATHAUS_DATABASE_URL=url,
                RATHAUS_QUEUE__BACKEND="redis",
                RATHAUS_QUEUE__REDIS_URL=redis_url,
                RATHAUS_QUEUE__NAME=f"bench_{uuid.uuid4().hex[:10]}",
            )
            return cls(mode, data_dir, env, url, pg_admin_url=pg_url, pg_database=name)
        env.update(RATHAUS_QUEUE__BACKEND="sqlite", RATHAUS_QUEUE__EMBEDDED_WORKER="true")
        return cls(mode, data_dir, env, f"sqlite:///{data_dir / 'rathaus.db'}")

    def run(self, *args: str, timeout: float = 1800) -> str:
        """A `rathaus …` command to its end; its output, or exit with it on failure."""
        done = subprocess.run(
            [*RATHAUS, *args],
            env=self.env,
            cwd=self.data_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"rathaus {' '.join(args)} scheiterte:\n{done.stdout}{done.stderr}")
        return done.stdout

    def set_up(self, *, demo: bool = True) -> None:
        """Schema, the demo municipality (trained routing model, knowledge base), an API key."""
        self.run("db", "upgrade")
        if demo:
            self.run("demo")
        out = self.run("apikeys", "create", "--channel", "api", "--name", "Lasttest")
        found = re.search(r"(rh_\S+)", out)
        if not found:
            raise SystemExit(f"Kein API-Schlüssel in der Ausgabe:\n{out}")
        self.api_key = found.group(1)

    def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> Process:
        log = self.data_dir / f"{name}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [*RATHAUS, *args],
                env={**self.env, **(extra_env or {})},
                cwd=self.data_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, proc, log)
        self.processes.append(process)
        return process

    def serve(self, port: int, workers: int) -> Process:
        web = self.start(
            "web", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)
        )
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if web.proc.poll() is not None:
                raise SystemExit(f"Web-App beendet:\n{web.output[-4000:]}")
            try:
                return httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 180, f"Web-App nicht bereit:\n{web.output[-4000:]}", step=0.5)
        return web

    def huey(self) -> Any:
        from rathaus import jobs
        from rathaus.core.config import load_settings

        jobs.reset()
        return jobs.get_huey(
            load_settings(
                mode="demo",
                data_dir=self.data_dir,
                queue={
                    "backend": self.env["RATHAUS_QUEUE__BACKEND"],
                    "redis_url": self.env.get("RATHAUS_QUEUE__REDIS_URL", ""),
                    "name": self.env.get("RATHAUS_QUEUE__NAME", "rathaus"),
                },
            )
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def keep_logs(self) -> Path:
        """Copy the processes' logs out of the data directory (removed afterwards)."""
        target = Path(tempfile.mkdtemp(prefix=f"rathaus-bench-logs-{self.mode}-"))
        for log in self.data_dir.glob("*.log"):
            shutil.copy(log, target / log.name)
        return target

    def remove(self) -> None:
        self.stop()
        if self.mode == "server":
            try:
                self.huey().flush()  # this queue's keys only
            except Exception as exc:  # noqa: BLE001 - cleaning up; report and go on
                print(f"Warteschlange nicht geleert: {exc}", file=sys.stderr)
            assert self.pg_admin_url is not None
            admin = create_engine(self.pg_admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
