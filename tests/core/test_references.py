"""Aktenzeichen: the highest of the tenant's prefix and year plus one, unique also when several
workers receive at the same time (one retries after the unique constraint refuses a number)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rathaus.core.cases import next_reference
from rathaus.core.db import Database
from rathaus.core.models import Case, CaseStatus, Tenant
from rathaus.core.storage import OriginalStore
from rathaus.inbox.service import receive
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


@pytest.mark.slow
def test_workers_receiving_at_once_get_unique_references(db: Database, tmp_path: Path) -> None:
    store = OriginalStore(tmp_path / "originals")
    with db.session() as session:
        tenant_id = build_tenant(session, "alpha").tenant.id
    workers, per_worker = 4, 8
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(worker: int) -> None:
        try:
            start.wait()
            for n in range(per_worker):
                for attempt in range(100):
                    try:
                        with db.session() as session:
                            tenant = session.get(Tenant, tenant_id)
                            assert tenant is not None
                            item = text_item(f"Meldung {worker}-{n}: Laterne Nr. {n} ist dunkel")
                            receive(session, tenant=tenant, item=item, store=store)
                        break
                    except IntegrityError:
                        # another worker took the number: try again, as the channels do
                        time.sleep(random.uniform(0, 0.002 * attempt))
                else:
                    raise AssertionError("no free Aktenzeichen after 100 attempts")
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with db.session() as session:
        references = session.scalars(
            select(Case.reference).where(Case.tenant_id == tenant_id, Case.channel == "email")
        ).all()
    assert len(references) == workers * per_worker == len(set(references))
