"""The access log: who opened which case, filtered, exported, purged after its period."""

from __future__ import annotations

import datetime as dt

import pytest

from rathaus.core.errors import RathausError
from rathaus.governance import access_log
from rathaus.insights.export import to_csv
from tests.factories import build_tenant


def test_record_filter_export_and_purge(db):
    with db.session() as session:
        a = build_tenant(session, "alpha")
        b = build_tenant(session, "beta")
        first = access_log.record_access(session, case=a.cases["BA"], user=a.users["sb"])
        first.created_at = dt.datetime(2026, 1, 10, 9, tzinfo=dt.UTC)
        access_log.record_access(
            session, case=a.cases["BA"], user=a.users["leitung"], action="original"
        )
        access_log.record_access(
            session, case=a.cases["OA-GW"], user=None, username="cli", channel="cli"
        )
        access_log.record_access(session, case=b.cases["BA"], user=b.users["sb"], channel="api")
        with pytest.raises(ValueError):
            access_log.record_access(session, case=a.cases["BA"], user=None, action="gelöscht")
        session.flush()
        tenant_id, reference = a.tenant.id, a.cases["BA"].reference

        everything = access_log.entries(session, tenant_id=tenant_id)
        assert len(everything) == 3  # beta's entry is not alpha's business
        by_case = access_log.entries(session, tenant_id=tenant_id, reference=reference.lower())
        assert {e.username for e in by_case} == {"sb", "leitung"}
        assert [
            e.case_reference
            for e in access_log.entries(session, tenant_id=tenant_id, username="CLI")
        ] == [a.cases["OA-GW"].reference]
        january = access_log.entries(
            session, tenant_id=tenant_id, since="2026-01-01", until="2026-01-31"
        )
        assert [e.username for e in january] == ["sb"]
        with pytest.raises(RathausError, match="kein gültiges Datum"):
            access_log.entries(session, tenant_id=tenant_id, since="10.01.2026")

        rows = access_log.rows(by_case)
        assert rows[0][3] == "Original heruntergeladen" and rows[1][0] == "2026-01-10 09:00:00"
        csv = to_csv(access_log.CSV_HEADERS, rows).decode("utf-8-sig")
        assert csv.splitlines()[0] == "Zeitpunkt (UTC);Aktenzeichen;Benutzer;Aktion;Kanal"

        purged = access_log.purge(session, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), days=100)
        assert purged == 1
        assert len(access_log.entries(session, tenant_id=tenant_id)) == 2
