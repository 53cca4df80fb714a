"""Aktenzeichen: the highest of the tenant's prefix and year plus one; parallel receivers wait
for each other (lock_references), so they get consecutive numbers and no unique constraint has
to refuse one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rathaus.core.cases import next_reference
from rathaus.core.db import Database
from rathaus.core.models import Case, CaseStatus, Document, Tenant
from rathaus.core.storage import OriginalStore
from rathaus.inbox.channels.poll import TAKE_ATTEMPTS
from rathaus.inbox.service import IncomingItem, receive
from tests.concurrency import in_parallel, refused_statements
from tests.factories import build_tenant
from tests.inbox.test_pipeline import text_item


def _case(tenant_id: int, reference: str) -> Case:
    return Case(tenant_id=tenant_id, reference=reference, status=CaseStatus.NEU, fields={})


def test_next_reference_is_the_highest_of_prefix_and_year_plus_one(db: Database) -> None:
    with db.session() as session:
        alpha = build_tenant(session, "alpha").tenant
        beta = build_tenant(session, "beta").tenant
        session.query(Case).delete()
        assert next_reference(session, tenant_id=alpha.id, prefix="MS", year=2026) == (
            "MS-2026-000001"
        )
        session.add_all(
            [
                _case(alpha.id, "MS-2026-000007"),
                _case(alpha.id, "MS-2026-000012"),  # a gap stays a gap
                _case(alpha.id, "MS-2027-000040"),
                _case(alpha.id, "RH-2026-000099"),  # an older prefix
                _case(beta.id, "MS-2026-000500"),  # another tenant
            ]
        )
        session.flush()
        assert next_reference(session, tenant_id=alpha.id, prefix="MS", year=2026) == (
            "MS-2026-000013"
        )
        assert next_reference(session, tenant_id=alpha.id, prefix="MS", year=2025) == (
            "MS-2025-000001"
        )
        assert next_reference(session, tenant_id=alpha.id, prefix="RH", year=2026) == (
            "RH-2026-000100"
        )
        assert next_reference(session, tenant_id=beta.id, prefix="MS", year=2026) == (
            "MS-2026-000501"
        )


@pytest.fixture
def refused(db: Database) -> Iterator[list[str]]:
    with refused_statements(db.engine) as seen:
        yield seen


def _receive_as_a_channel(
    db: Database, tenant_id: int, item: IncomingItem, store: OriginalStore
) -> None:
    """One item in its own transaction, retried like rathaus.inbox.channels.poll.take_item."""
    for attempt in range(TAKE_ATTEMPTS):
        try:
            with db.session() as session:
                tenant = session.get(Tenant, tenant_id)
                assert tenant is not None
                receive(session, tenant=tenant, item=item, store=store)
            return
        except IntegrityError:
            if attempt == TAKE_ATTEMPTS - 1:
                raise


def _references(db: Database, tenant_id: int) -> list[str]:
    with db.session() as session:
        return sorted(
            session.scalars(
                select(Case.reference).where(
                    Case.tenant_id == tenant_id, Case.id.in_(select(Document.case_id))
                )
            )
        )


@pytest.mark.slow
@pytest.mark.parametrize("workers", [4, 8])
def test_parallel_receivers_get_consecutive_references_without_retries(
    db: Database, tmp_path: Path, refused: list[str], workers: int
) -> None:
    # Before lock_references: 544 (4 threads) and 2,512 (8 threads) refused numbers on SQLite,
    # 554 and 2,498 on PostgreSQL, for 50 items each (see docs/triage.md, "Geschwindigkeit").
    store = OriginalStore(tmp_path / "originals")
    with db.session() as session:
        tenant_id = build_tenant(session, "alpha").tenant.id
    per_worker = 50

    def work(worker: int) -> None:
        for n in range(per_worker):
            item = text_item(f"Meldung {worker}-{n}: Laterne Nr. {n} ist dunkel")
            _receive_as_a_channel(db, tenant_id, item, store)

    in_parallel(work, workers)
    references = _references(db, tenant_id)
    count = workers * per_worker
    assert len(references) == len(set(references)) == count
    prefix = references[0].rsplit("-", 1)[0]
    assert references == [f"{prefix}-{n:06d}" for n in range(1, count + 1)]
    assert refused == []


def test_parallel_receipts_of_the_same_bytes_are_one_case_without_retries(
    db: Database, tmp_path: Path, refused: list[str]
) -> None:
    store = OriginalStore(tmp_path / "originals")
    with db.session() as session:
        tenant_id = build_tenant(session, "alpha").tenant.id
    items = [text_item(f"Dieselbe Meldung Nr. {n}, mehrfach eingereicht") for n in range(5)]
    in_parallel(lambda _worker: [_receive_as_a_channel(db, tenant_id, i, store) for i in items], 4)
    references = _references(db, tenant_id)
    assert len(references) == len(items)
    prefix = references[0].rsplit("-", 1)[0]
    assert references == [f"{prefix}-{n:06d}" for n in range(1, len(items) + 1)]
    assert refused == []


def test_a_second_transaction_numbers_only_after_the_first_ended(db: Database) -> None:
    with db.session() as session:
        tenant_id = build_tenant(session, "alpha").tenant.id
    taken: list[str] = []
    first = db.sessionmaker()
    try:
        reference = next_reference(first, tenant_id=tenant_id, prefix="MS", year=2026)
        first.add(_case(tenant_id, reference))
        first.flush()  # written, not committed

        def second() -> None:
            with db.session() as session:
                taken.append(next_reference(session, tenant_id=tenant_id, prefix="MS", year=2026))

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)  # room for the second to read (it must not: it waits for the first)
        assert taken == []
        first.commit()
    finally:
        first.close()
    thread.join(timeout=30)
    assert (reference, taken) == ("MS-2026-000001", ["MS-2026-000002"])
