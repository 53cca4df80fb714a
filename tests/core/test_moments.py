"""Moments are stored and compared as the same instant on SQLite and PostgreSQL, whatever
offset the value carries (core.models.Moment)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from rathaus.core.models import Tenant

PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def test_an_offset_is_kept_as_the_same_instant_and_compared_as_such(db):
    created = dt.datetime(2026, 6, 1, 12, 0, tzinfo=PLUS_TWO)  # 10:00 UTC
    with db.session() as session:
        session.add(Tenant(slug="zeit", name="Zeitstadt", created_at=created))
    with db.session() as session:
        stored = session.scalar(select(Tenant.created_at).where(Tenant.slug == "zeit"))
        assert _utc(stored) == created
        # 11:30 in +02:00 is 09:30 UTC: before the moment; 11:00 UTC is after it.
        after = dt.datetime(2026, 6, 1, 11, 30, tzinfo=PLUS_TWO)
        before = dt.datetime(2026, 6, 1, 11, 0, tzinfo=dt.UTC)
        found = session.scalars(
            select(Tenant.slug).where(Tenant.created_at > after, Tenant.created_at < before)
        ).all()
        assert found == ["zeit"]


def test_naive_values_are_taken_as_utc_as_before(db):
    with db.session() as session:
        session.add(Tenant(slug="naiv", name="Naivstadt", created_at=dt.datetime(2026, 6, 1, 10)))
    with db.session() as session:
        stored = session.scalar(select(Tenant.created_at).where(Tenant.slug == "naiv"))
        assert _utc(stored) == dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)
