"""Real server-mode processes for the fault tests: `rathaus worker` and `rathaus serve`
subprocesses, a PostgreSQL database of the test's own on the shared server, and a private
PostgreSQL cluster that a test may stop and start without disturbing anyone else."""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, select, text, update

from rathaus.core import audit
from rathaus.core.db import Database
from rathaus.core.migrate import upgrade
from rathaus.core.models import (
    AiSuggestion,
    AuditEvent,
    Case,
    CaseEvent,
    Message,
    RoutingRule,
    Tenant,
    utcnow,
)
from rathaus.core.storage import OriginalStore
from rathaus.inbox.service import IncomingItem, receive
from tests.conftest import fresh_pg_database
from tests.inbox.history import NAMES, STREETS, TEMPLATES, build_history_world

RATHAUS = [sys.executable, "-m", "rathaus"]
REDIS_URL = os.environ.get("RATHAUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, step: float = 0.05
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"{what} (nach {timeout:g} s)")


# --- Processes -----------------------------------------------------------------------------


class Process:
    """A `rathaus …` subprocess; stdout and stderr go to a log file that tests can read."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [*RATHAUS, *args], env=env, cwd=log_dir, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no handler runs, the process is gone at once."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 20) -> int | None:
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


def server_env(
    *,
    data_dir: Path,
    database_url: str,
    queue_name: str,
    tenant_slug: str,
    **settings: str,
) -> dict[str, str]:
    """The environment of a server-mode process: PostgreSQL, Redis, no language model.

    ``settings`` are further RATHAUS_* variables, e.g. ``QUEUE__RECONCILE_AFTER_S="2"``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATHAUS_")}
    env.update(
        RATHAUS_MODE="demo",
        RATHAUS_DATA_DIR=str(data_dir),
        RATHAUS_DATABASE_URL=database_url,
        RATHAUS_DEFAULT_TENANT=tenant_slug,
        RATHAUS_QUEUE__BACKEND="redis",
        RATHAUS_QUEUE__REDIS_URL=REDIS_URL,
        RATHAUS_QUEUE__NAME=queue_name,
        RATHAUS_LLM__BACKEND="none",
    )
    env.update({f"RATHAUS_{k.upper()}": v for k, v in settings.items()})
    return env


def with_application_name(url: str, name: str) -> str:
    """The URL with ``application_name`` set, so ``pg_stat_activity`` tells processes apart."""
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


# --- PostgreSQL ----------------------------------------------------------------------------


@contextmanager
def own_pg_database() -> Iterator[str]:
    """A fresh database on the shared server, dropped afterwards (connections are cut)."""
    with fresh_pg_database("rathaus_fault") as url:
        yield url


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A PostgreSQL cluster of one test (``initdb`` + ``pg_ctl`` in a temporary directory on a
    free port), so that the test may stop and start it: the shared server on 5432 is never
    touched. As root the programs run as the ``postgres`` OS user (PostgreSQL refuses root)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bin = _pg_bin()
        assert self.bin is not None
        self.as_postgres = os.geteuid() == 0
        # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
        self.dir = Path(tempfile.mkdtemp(prefix="rathaus-pg-"))
        self.data = self.dir / "data"
        self.logfile = self.dir / "postgres.log"
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self.running = False

    @staticmethod
    def unavailable() -> str | None:
        """Why no private cluster can be made here, or ``None``."""
        if _pg_bin() is None:
            return "initdb/pg_ctl nicht gefunden (PostgreSQL-Serverpakete fehlen)"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "als root fehlt runuser, um PostgreSQL als Benutzer postgres zu starten"
        if os.geteuid() == 0:
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                return "als root fehlt der Betriebssystembenutzer postgres"
        return None

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} scheiterte: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
            "-c fsync=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", options, "-w", "start"
        )
        self.running = True

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: open sessions are cut and their transactions rolled back."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url(name)

    def close(self) -> None:
        if self.running:
            with suppress(RuntimeError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


# --- The municipality and its items --------------------------------------------------------


@dataclass
class Town:
    slug: str
    tenant_id: int


def build_town(db: Database, slug: str = "faultstadt") -> Town:
    """A migrated database with a tenant, services, decided history and one automatic rule:
    noise complaints go to the Ordnungsamt without a person, so that triage also writes the
    automatic assignment (case event ``routed``, audit event ``zuordnung_automatisch``)."""
    upgrade(db)
    with db.session() as session:
        world = build_history_world(session, slug, per_service=4)
        ordnung = world.units["OA"]
        ordnung.auto_route_enabled = True
        ordnung.auto_route_threshold = 0.9
        session.add(
            RoutingRule(
                tenant_id=world.tenant.id,
                name="Lärm",
                keywords="Lärm, Ruhestörung, laut*",
                org_unit_id=ordnung.id,
            )
        )
        return Town(slug=slug, tenant_id=world.tenant.id)


def item_texts(count: int, seed: int = 11) -> list[str]:
    """``count`` different German citizen letters (noise complaints among them)."""
    rng = random.Random(seed)
    kinds = sorted(TEMPLATES)
    texts = []
    for i in range(count):
        template = rng.choice(TEMPLATES[kinds[i % len(kinds)]])
        body = template.format(
            d=f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.2026",
            s=f"{rng.choice(STREETS)} {rng.randint(1, 60)}",
            n=rng.choice(NAMES),
        )
        texts.append(f"{body} (Schreiben Nr. {i + 1})")
    return texts


def store_items(db: Database, town: Town, originals: Path, texts: list[str]) -> list[int]:
    """Store the items as the channels do (original + case, not triaged); their case ids."""
    store = OriginalStore(originals)
    ids = []
    with db.session() as session:
        tenant = session.get(Tenant, town.tenant_id)
        assert tenant is not None
        for body in texts:
            item = IncomingItem(
                channel="email",
                original=body.encode("utf-8"),
                filename="nachricht.txt",
                media_type="text/plain",
                body=body,
            )
            ids.append(receive(session, tenant=tenant, item=item, store=store).case.id)
    return ids


def backdate(db: Database, case_ids: list[int], seconds: float) -> None:
    """Make the cases look stored ``seconds`` ago (for the reconcile job's age limit)."""
    at = utcnow() - dt.timedelta(seconds=seconds)
    with db.session() as session:
        session.execute(update(Case).where(Case.id.in_(case_ids)).values(created_at=at))


# --- Exactly once --------------------------------------------------------------------------


def triage_traces(db: Database, case_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per case, everything a triage run leaves behind, counted: if a case was triaged twice,
    one of these shows 2 (or the routing decision and its audit trail disagree)."""

    def per_case(query) -> dict[int, int]:  # type: ignore[no-untyped-def]
        return {cid: n for cid, n in db_rows(query)}

    def db_rows(query):  # type: ignore[no-untyped-def]
        with db.session() as session:
            return session.execute(query).all()

    ids = list(case_ids)
    triaged_events = per_case(
        select(CaseEvent.case_id, func.count())
        .where(CaseEvent.case_id.in_(ids), CaseEvent.kind == "triaged")
        .group_by(CaseEvent.case_id)
    )
    routed_events = per_case(
        select(CaseEvent.case_id, func.count())
        .where(CaseEvent.case_id.in_(ids), CaseEvent.kind == "routed")
        .group_by(CaseEvent.case_id)
    )
    suggestions: dict[str, dict[int, int]] = {}
    for function in ("routing", "reply"):
        suggestions[function] = per_case(
            select(AiSuggestion.case_id, func.count())
            .where(AiSuggestion.case_id.in_(ids), AiSuggestion.function == function)
            .group_by(AiSuggestion.case_id)
        )
    automatic = per_case(
        select(AiSuggestion.case_id, func.count())
        .where(
            AiSuggestion.case_id.in_(ids),
            AiSuggestion.function == "routing",
            AiSuggestion.decision == "automatisch",
        )
        .group_by(AiSuggestion.case_id)
    )
    drafts = per_case(
        select(Message.case_id, func.count())
        .where(Message.case_id.in_(ids), Message.direction == "out", Message.channel == "entwurf")
        .group_by(Message.case_id)
    )
    audited: dict[int, int] = {}
    for subject, n in db_rows(
        select(AuditEvent.subject, func.count())
        .where(AuditEvent.kind == "zuordnung_automatisch")
        .group_by(AuditEvent.subject)
    ):
        cid = int(subject.removeprefix("case:"))
        if cid in set(ids):
            audited[cid] = n
    triaged = dict(db_rows(select(Case.id, Case.triaged_at.is_not(None)).where(Case.id.in_(ids))))
    return {
        cid: {
            "stored": int(cid in triaged),
            "triaged": int(bool(triaged.get(cid))),
            "triaged_events": triaged_events.get(cid, 0),
            "routing_suggestions": suggestions["routing"].get(cid, 0),
            "reply_suggestions": suggestions["reply"].get(cid, 0),
            "reply_drafts": drafts.get(cid, 0),
            "automatic": automatic.get(cid, 0),
            "routed_events": routed_events.get(cid, 0),
            "audit_automatic": audited.get(cid, 0),
        }
        for cid in ids
    }


def assert_triaged_exactly_once(db: Database, case_ids: list[int], tenant_id: int) -> int:
    """Every case stored and triaged once: one triage event, one routing and one reply
    suggestion, one reply draft; an automatic assignment (if any) once in the case log and once
    in the audit chain, which still verifies. Returns how many were assigned automatically."""
    traces = triage_traces(db, case_ids)
    once = {
        "stored": 1,
        "triaged": 1,
        "triaged_events": 1,
        "routing_suggestions": 1,
        "reply_suggestions": 1,
        "reply_drafts": 1,
    }
    wrong = {
        cid: t
        for cid, t in traces.items()
        if any(t[k] != v for k, v in once.items())
        or t["automatic"] > 1
        or not t["routed_events"] == t["audit_automatic"] == t["automatic"]
    }
    assert not wrong, f"{len(wrong)} Vorgänge nicht genau einmal vorgeprüft: {wrong}"
    with db.session() as session:
        chain = audit.verify(session, tenant_id)
    assert chain.ok, f"Prüfprotokoll gebrochen: {chain.broken}"
    return sum(t["automatic"] for t in traces.values())
