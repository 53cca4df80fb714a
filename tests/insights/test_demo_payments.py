"""Musterstadt's invented payment list: it imports like a real export and every planted
irregularity reaches the review queue (and little else does)."""

from __future__ import annotations

import datetime as dt

from rathaus.core.db import Database
from rathaus.core.demo import payments
from rathaus.core.storage import OriginalStore
from rathaus.insights import bookings
from tests.factories import build_tenant


def test_demo_payments_import_and_show_each_planted_irregularity(
    sqlite_db: Database, tmp_path
) -> None:
    data = payments.generate(dt.date(2026, 11, 21))
    assert data.decode("cp1252").startswith("Buchungsdatum;Kreditor;Betrag;")
    with sqlite_db.session() as session:
        tenant = build_tenant(session, "alpha").tenant
        dataset = bookings.import_payments(
            session,
            tenant=tenant,
            data=data,
            filename=payments.FILENAME,
            actor="test",
            store=OriginalStore(tmp_path),
            name=payments.NAME,
        )
        report = bookings.run_checks(
            session,
            tenant=tenant,
            dataset=dataset,
            config=bookings.config_for(tenant),
            actor="test",
        )
    assert dataset.rows == 464
    counts = report.counts
    for kind in ("duplikat", "aehnlich", "splitting", "ausreisser", "datum", "neu"):
        assert counts.get(kind, 0) >= 1, kind
    assert sum(counts.values()) <= 15  # a demo queue a person can work through
    assert payments.generate(dt.date(2026, 11, 21)) == data  # reproducible
