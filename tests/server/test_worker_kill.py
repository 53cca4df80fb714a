"""kill -9 of a job worker in the middle of a triage job, 50 times: every item triaged once.

Real `rathaus worker` processes on Redis and a PostgreSQL database of this test. "In the
middle" is observed, not arranged: a worker's triage holds the row lock of its case from the
claim to the commit, and PostgreSQL shows which transaction holds it (the row's ``xmax`` is
the ``backend_xid`` of that worker's session, named by ``application_name``). The test kills
the worker then, checks that the case's triage was rolled back, starts a new worker and goes
on. huey loses the killed job (it has no acknowledgement); the reconcile job brings the case
back. At the end every item is triaged exactly once, and none is lost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from rathaus import jobs
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.models import Case
from rathaus.inbox.jobs import triage_job
from tests.server.stack import (
    REDIS_URL,
    Process,
    Town,
    assert_triaged_exactly_once,
    build_town,
    item_texts,
    own_pg_database,
    server_env,
    store_items,
    wait_until,
    with_application_name,
)

KILLS = 50
ITEMS = 160
WORKERS = 2

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

# The case whose triage a worker is running now: the row it locked, by worker name.
IN_PROGRESS = text(
    "SELECT a.application_name, c.id FROM pg_stat_activity a JOIN cases c "
    "ON c.xmax = a.backend_xid WHERE a.datname = current_database() "
    "AND a.application_name LIKE 'kill-worker-%'"
)
SESSIONS_OF = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = :name"
)


@pytest.fixture
def database_url() -> Iterator[str]:
    with own_pg_database() as url:
        yield url


class Pool:
    """Worker processes by name; a killed one is replaced by a fresh process of the same name."""

    def __init__(self, env: dict[str, str], url: str, log_dir: Path) -> None:
        self.env, self.url, self.log_dir = env, url, log_dir
        self.workers: dict[str, Process] = {}
        self.killed: list[Process] = []

    def start(self, name: str) -> None:
        env = {**self.env, "RATHAUS_DATABASE_URL": with_application_name(self.url, name)}
        self.workers[name] = Process(name, ["worker", "--workers", "2"], env, self.log_dir)

    def kill(self, name: str) -> None:
        worker = self.workers.pop(name)
        worker.kill()
        self.killed.append(worker)

    def close(self) -> None:
        for worker in self.workers.values():
            worker.terminate()

    def logs(self) -> str:
        return "\n".join(
            f"--- {w.name} ---\n{w.output[-3000:]}"
            for w in [*self.killed[-3:], *self.workers.values()]
        )


@pytest.mark.timeout(600)
def test_kill_9_in_the_middle_of_triage_50_times(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    town: Town = build_town(db)
    data_dir = tmp_path / "data"
    settings = load_settings(
        mode="demo",
        data_dir=data_dir,
        database_url=database_url,
        queue={
            "backend": "redis",
            "redis_url": REDIS_URL,
            "name": f"kill_{uuid.uuid4().hex[:10]}",
        },
    )
    ids = store_items(db, town, settings.originals_dir, item_texts(ITEMS))
    jobs.reset()
    huey = jobs.get_huey(settings)
    for case_id in ids:
        triage_job.enqueue(case_id)
    for case_id in ids[::3]:
        triage_job.enqueue(case_id)  # delivered twice: the second run must change nothing

    env = server_env(
        data_dir=data_dir,
        database_url=database_url,
        queue_name=settings.queue.name,
        tenant_slug=town.slug,
        # The safety net runs at every worker start and each minute, for items whose triage
        # started more than 3 s ago and is not done: the jobs lost with a killed worker.
        QUEUE__RECONCILE_EVERY_MIN="1",
        QUEUE__RECONCILE_AFTER_S="3",
    )
    pool = Pool(env, database_url, tmp_path)
    interrupted: list[int] = []
    try:
        for n in range(WORKERS):
            pool.start(f"kill-worker-{n}")
        kills = 0
        while len(interrupted) < KILLS:
            kills += 1
            assert kills <= 3 * KILLS, f"Zu selten mitten in einer Vorprüfung:\n{pool.logs()}"
            found: list[tuple[str, int]] = []

            def busy(found: list[tuple[str, int]] = found) -> bool:
                with db.engine.connect() as conn:
                    found[:] = [tuple(r) for r in conn.execute(IN_PROGRESS)]
                return bool(found)

            wait_until(busy, 120, f"Kein Worker bei der Vorprüfung:\n{pool.logs()}", step=0.01)
            name = found[0][0]
            cases = [cid for worker, cid in found if worker == name]
            pool.kill(name)
            # PostgreSQL notices the closed connections and rolls their transactions back.
            wait_until(
                lambda name=name: _sessions(db, name) == 0, 30, "Sitzung des Workers blieb offen"
            )
            with db.session() as session:
                rolled_back = [
                    cid
                    for cid in cases
                    if session.get(Case, cid).triaged_at is None  # type: ignore[union-attr]
                ]
            # Only a kill before the commit counts; one that came a moment too late does not.
            interrupted += rolled_back
            pool.start(name)

        # Every item triaged: the queue's jobs, and the lost ones by the reconcile job.
        wait_until(
            lambda: _untriaged(db, ids) == 0,
            240,
            f"Nicht alle Eingänge vorgeprüft:\n{pool.logs()}",
            step=0.5,
        )
        wait_until(
            lambda: huey.pending_count() == 0, 120, "Warteschlange läuft nicht leer", step=0.5
        )
        # Running jobs finish on SIGTERM; afterwards nothing can change any more.
        pool.close()
    finally:
        pool.close()
        for worker in pool.killed:
            worker.kill()
        huey.flush()
        jobs.reset()

    assert len(interrupted) >= KILLS
    automatic = assert_triaged_exactly_once(db, ids, town.tenant_id)
    assert automatic > 0  # the automatic assignments were among what ran (and was audited once)
    outputs = "\n".join(p.output for p in [*pool.killed, *pool.workers.values()])
    assert "Traceback" not in outputs.replace("Schritt", ""), outputs[-5000:]
    db.dispose()


def _sessions(db: Database, name: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(SESSIONS_OF, {"name": name}).scalar_one())


def _untriaged(db: Database, ids: list[int]) -> int:
    with db.session() as session:
        return int(
            session.scalar(select(func.count()).where(Case.id.in_(ids), Case.triaged_at.is_(None)))
            or 0
        )
