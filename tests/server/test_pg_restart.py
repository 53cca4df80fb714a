"""PostgreSQL restarts during ingestion: clear German 503s while it is down, no item lost.

A private PostgreSQL cluster (the shared server on 5432 is never stopped), the real web app
(`rathaus serve`, uvicorn) and a real `rathaus worker` on Redis. A client delivers items through
the API at about 10 per second and retries what is refused; meanwhile the cluster is stopped
for a few seconds and started again. Neither Rathaus process is restarted."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from rathaus import jobs
from rathaus.core import apikeys
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.models import Case, Tenant
from rathaus.web.db_outage import MESSAGE
from tests.factories import free_port
from tests.server.stack import (
    REDIS_URL,
    PrivatePostgres,
    Process,
    assert_triaged_exactly_once,
    build_town,
    item_texts,
    server_env,
    wait_until,
)

ITEMS = 60
OUTAGE_AFTER = 15  # items accepted before the database goes down
OUTAGE_S = 4.0

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    reason = PrivatePostgres.unavailable()
    if reason:
        pytest.skip(f"Kein eigener PostgreSQL-Cluster möglich: {reason}")
    pg = PrivatePostgres(free_port())
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.close()


@dataclass
class Client:
    """Delivers items one after the other and retries each until it is accepted."""

    base: str
    key: str
    accepted: dict[int, int] = field(default_factory=dict)  # item number → case id
    refused: list[httpx.Response] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def deliver(self, number: int, body: str) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        for _attempt in range(200):
            try:
                response = httpx.post(
                    f"{self.base}/api/v1/inbox/items",
                    json={"text": body, "subject": f"Eingang {number}"},
                    headers=headers,
                    timeout=30,
                )
            except httpx.HTTPError as exc:  # a hang or a dropped connection is a failure
                self.unexpected.append(f"{number}: {type(exc).__name__} {exc}")
                return
            if response.status_code == 201:
                (receipt,) = response.json()
                self.accepted[number] = receipt["case_id"]
                return
            if response.status_code != 503:
                self.unexpected.append(f"{number}: {response.status_code} {response.text}")
                return
            self.refused.append(response)
            time.sleep(0.5)
        self.unexpected.append(f"{number}: nach 200 Versuchen nicht angenommen")


@pytest.mark.timeout(400)
def test_postgres_restart_during_ingestion(cluster: PrivatePostgres, tmp_path: Path) -> None:
    url = cluster.create_database("rathaus")
    db = Database(url)
    town = build_town(db)
    with db.session() as session:
        tenant = session.get(Tenant, town.tenant_id)
        key, _row = apikeys.create(session, tenant=tenant, channel="api", name="Fachverfahren")

    queue_name = f"pgrestart_{uuid.uuid4().hex[:10]}"
    data_dir = tmp_path / "data"
    env = server_env(
        data_dir=data_dir,
        database_url=url,
        queue_name=queue_name,
        tenant_slug=town.slug,
        QUEUE__RECONCILE_EVERY_MIN="1",
        QUEUE__RECONCILE_AFTER_S="20",
    )
    port = free_port()
    web = Process("web", ["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path)
    worker = Process("worker", ["worker"], env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    huey = jobs.get_huey(
        load_settings(
            mode="demo",
            data_dir=data_dir,
            queue={"backend": "redis", "redis_url": REDIS_URL, "name": queue_name},
        )
    )
    client = Client(base, key)
    outage: dict[str, float] = {}
    try:
        wait_until(lambda: _up(base), 90, f"Web-App startet nicht:\n{web.output}", step=0.2)

        def restart_database() -> None:
            wait_until(lambda: len(client.accepted) >= OUTAGE_AFTER, 120, "keine Eingänge")
            outage["down"] = time.monotonic()
            cluster.stop()
            time.sleep(OUTAGE_S)
            cluster.start()
            outage["up"] = time.monotonic()

        restarter = threading.Thread(target=restart_database)
        restarter.start()
        for number, body in enumerate(item_texts(ITEMS, seed=23), start=1):
            started = time.monotonic()
            client.deliver(number, body)
            time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))  # about 10 per second
        restarter.join(60)
        assert "up" in outage, "Der Datenbankserver wurde nicht neu gestartet"

        assert client.unexpected == [], client.unexpected
        assert len(client.accepted) == ITEMS
        # While it was down: 503 with one German sentence and when to try again, never a 500.
        assert client.refused, "Während des Ausfalls wurde keine Anfrage abgewiesen"
        for response in client.refused:
            assert response.json() == {"detail": MESSAGE}
            assert response.headers["Retry-After"] == "5"
        case_ids = list(client.accepted.values())
        assert len(set(case_ids)) == ITEMS  # no item stored twice, none merged into another

        # The same worker process goes on by itself and triages everything, exactly once.
        wait_until(
            lambda: _untriaged(db, case_ids) == 0,
            240,
            f"Nicht alle Eingänge vorgeprüft:\n{worker.output[-4000:]}",
            step=0.5,
        )
        wait_until(lambda: huey.pending_count() == 0, 60, "Warteschlange läuft nicht leer")
        assert web.alive and worker.alive
    finally:
        web.terminate()
        worker.terminate()
        huey.flush()
        jobs.reset()

    assert_triaged_exactly_once(db, case_ids, town.tenant_id)
    with db.session() as session:  # nothing stored from the refused attempts
        stored = session.scalar(select(func.count()).where(Case.channel == "api"))
    assert stored == ITEMS
    assert "Unerwarteter Fehler" not in web.output, web.output[-4000:]
    assert "Datenbank nicht erreichbar" in web.output  # the outage is in the log, as a warning
    db.dispose()


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def _untriaged(db: Database, ids: list[int]) -> int:
    with db.session() as session:
        return int(
            session.scalar(select(func.count()).where(Case.id.in_(ids), Case.triaged_at.is_(None)))
            or 0
        )
