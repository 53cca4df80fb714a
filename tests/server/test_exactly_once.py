"""Exactly-once triage: the claim on the case row, concurrent runners, the reconcile job.

On SQLite and PostgreSQL (the ``db`` fixture), with the real pipeline and embedding model.
The worker processes under kill -9 are in test_worker_kill.py."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from rathaus import jobs
from rathaus.core import audit
from rathaus.core.config import Settings, load_settings
from rathaus.core.db import Database
from rathaus.core.models import Case, utcnow
from rathaus.inbox import jobs as inbox_jobs
from rathaus.inbox.jobs import reconcile_job, triage_job, triage_once
from rathaus.inbox.pipeline import TriageKit, claim_case
from tests.server.stack import (
    Town,
    assert_triaged_exactly_once,
    backdate,
    build_town,
    item_texts,
    store_items,
)


@pytest.fixture
def town(db: Database) -> Town:
    return build_town(db)


@pytest.fixture
def settings(db: Database, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a process that shares ``db``; jobs run on enqueue (memory queue)."""
    jobs.reset()
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path / "data",
        database_url=db.url,
        queue={"backend": "memory", "reconcile_after_s": 60},
    )
    jobs.get_huey(settings)
    yield settings
    jobs.reset()
    for key in [k for k in inbox_jobs._KITS if k[0] == str(settings.data_dir.resolve())]:
        inbox_jobs._KITS.pop(key)[0].dispose()  # type: ignore[index]


@pytest.fixture
def kit(settings: Settings) -> TriageKit:
    return TriageKit.from_settings(settings, language_model=None)


def test_claim_returns_the_case_until_it_is_triaged(
    db: Database, town: Town, settings: Settings
) -> None:
    (case_id,) = store_items(db, town, settings.originals_dir, item_texts(1))
    with db.session() as session:
        case = claim_case(session, case_id)
        assert case is not None and case.id == case_id
        case.triaged_at = utcnow()
    with db.session() as session:
        assert claim_case(session, case_id) is None
        assert claim_case(session, case_id + 1000) is None


def test_second_runner_waits_for_the_first_and_then_skips(
    db: Database, town: Town, settings: Settings
) -> None:
    """Two runners on one case: the second blocks on the claim until the first commits, then
    sees the case triaged. If the first dies instead (rolled back), the second takes it."""
    first_id, second_id = store_items(db, town, settings.originals_dir, item_texts(2))
    for commit, case_id in ((True, first_id), (False, second_id)):
        claimed = threading.Event()
        outcome: list[Case | None] = []
        with db.session() as first:
            assert claim_case(first, case_id) is not None

            def second_runner(case_id: int = case_id) -> None:
                with db.session() as session:
                    claimed.set()
                    outcome.append(claim_case(session, case_id))

            runner = threading.Thread(target=second_runner)
            runner.start()
            claimed.wait(5)
            runner.join(0.5)
            assert runner.is_alive() and outcome == []  # waits for the first runner's lock
            if commit:
                first.get(Case, case_id).triaged_at = utcnow()  # type: ignore[union-attr]
            else:
                first.rollback()  # what the database does for a killed worker
        runner.join(15)
        assert not runner.is_alive()
        if commit:
            assert outcome == [None]
        else:
            assert outcome[0] is not None and outcome[0].id == case_id


def test_triage_job_twice_and_in_parallel_triages_once(
    db: Database, town: Town, settings: Settings, kit: TriageKit
) -> None:
    ids = store_items(db, town, settings.originals_dir, item_texts(6))
    assert triage_once(db, kit, ids[0]) is True
    assert triage_once(db, kit, ids[0]) is False
    triage_job.enqueue(ids[1])  # memory queue: runs now, in this process
    triage_job.enqueue(ids[1])  # a duplicate delivery

    # Three threads race for the same four cases, in different orders.
    rest = ids[2:]
    results: list[bool] = []
    lock = threading.Lock()

    def runner(order: list[int]) -> None:
        for case_id in order:
            done = triage_once(db, kit, case_id)
            with lock:
                results.append(done)

    threads = [threading.Thread(target=runner, args=(o,)) for o in (rest, rest[::-1], rest[1:])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results.count(True) == len(rest)
    automatic = assert_triaged_exactly_once(db, ids, town.tenant_id)
    assert automatic >= 1  # the noise complaints were assigned by the rule, audited once


def test_reconcile_triages_only_cases_older_than_the_setting(
    db: Database, town: Town, settings: Settings
) -> None:
    old, fresh = store_items(db, town, settings.originals_dir, item_texts(2))
    backdate(db, [old], seconds=61)
    assert reconcile_job() == 1
    with db.session() as session:
        assert session.get(Case, old).triaged_at is not None  # type: ignore[union-attr]
        assert session.get(Case, fresh).triaged_at is None  # type: ignore[union-attr]
    assert reconcile_job() == 0
    backdate(db, [fresh], seconds=61)
    assert reconcile_job() == 1
    assert_triaged_exactly_once(db, [old, fresh], town.tenant_id)


@pytest.mark.parametrize(("every", "due", "not_due"), [(2, 4, 5), (1, 7, None), (60, 0, 30)])
def test_reconcile_schedule_follows_the_setting(
    tmp_path: Path, every: int, due: int, not_due: int | None
) -> None:
    settings = load_settings(
        mode="demo", data_dir=tmp_path, queue={"backend": "memory", "reconcile_every_min": every}
    )
    huey = jobs.make_huey(settings)
    task_class = reconcile_job.task(huey).task_class

    def runs_at(minute: int) -> bool:
        at = dt.datetime(2026, 5, 4, 10, minute)
        return any(isinstance(t, task_class) for t in huey.read_periodic(at))

    assert runs_at(due)
    if not_due is not None:
        assert not runs_at(not_due)


def test_concurrent_appends_keep_the_audit_chain_whole(db: Database, town: Town) -> None:
    """Several workers audit at the same time (automatic assignments): the chain never forks,
    on PostgreSQL (advisory lock) and on SQLite (reads before the write transaction begins)."""
    start = threading.Barrier(4)

    def append(worker: int) -> None:
        start.wait(10)
        for n in range(10):
            with db.session() as session:
                audit.record(
                    session,
                    audit.Event(
                        kind="test",
                        actor=f"worker-{worker}",
                        tenant_id=town.tenant_id,
                        data={"n": n},
                    ),
                )
                # keep the transaction open a little
                session.execute(text("SELECT 1" if db.is_sqlite else "SELECT pg_sleep(0.005)"))

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with db.session() as session:
        result = audit.verify(session, town.tenant_id)
    assert result.ok and result.checked == 40, result
