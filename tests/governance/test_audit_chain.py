"""The audit log is append-only in the database, and a chain check names the first entry an
attacker with database rights changed, deleted, reordered or forged (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DatabaseError

from rathaus.core import audit
from rathaus.core.db import Database
from rathaus.core.models import AuditEvent
from rathaus.governance import audit_log
from tests.factories import build_tenant

APPEND_ONLY = "nur Anhängen ist erlaubt"


def _chain(db: Database, n: int = 6, slug: str = "alpha") -> tuple[int, list[int]]:
    with db.session() as session:
        world = build_tenant(session, slug)
        ids = [
            audit.record(
                session,
                audit.Event(
                    kind="test",
                    actor="admin",
                    tenant_id=world.tenant.id,
                    subject=f"vorgang:{i}",
                    data={"n": i, "text": "Prüfung äöü", "x": 0.1 + i},
                    at=dt.datetime(2026, 11, 21, 10, 0, i, 123456, tzinfo=dt.UTC),
                ),
            ).id
            for i in range(n)
        ]
        return world.tenant.id, ids


@contextlib.contextmanager
def attacker(db: Database) -> Iterator[None]:
    """Drop the append-only triggers as someone with full database rights could, and put them
    back afterwards (the PostgreSQL database is shared by the test session)."""
    pg = db.engine.dialect.name == "postgresql"
    with db.engine.begin() as conn:
        if pg:
            conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
    try:
        yield
    finally:
        with db.engine.begin() as conn:
            if pg:
                conn.execute(
                    text(
                        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON "
                        "audit_events FOR EACH ROW EXECUTE FUNCTION rathaus_audit_append_only()"
                    )
                )
            else:
                for action in ("UPDATE", "DELETE"):
                    conn.execute(
                        text(
                            f"CREATE TRIGGER audit_events_no_{action.lower()} BEFORE {action} "
                            "ON audit_events BEGIN SELECT RAISE(ABORT, 'x'); END"
                        )
                    )


def test_fresh_chain_verifies_in_batches(db: Database) -> None:
    tenant_id, ids = _chain(db, 7)
    with db.session() as session:
        result = audit.verify(session, tenant_id, batch=3)  # three pages, one partial
        assert result.ok and result.checked == 7
        assert result.last_hash == session.get(AuditEvent, ids[-1]).hash
        assert audit.verify_chain(session, tenant_id) is None
        assert audit.verify(session, None).checked == 0  # the system chain is separate


@pytest.mark.parametrize("statement", ["update", "delete"])
def test_database_refuses_update_and_delete(db: Database, statement: str) -> None:
    tenant_id, ids = _chain(db, 2)
    with pytest.raises(DatabaseError, match=APPEND_ONLY), db.session() as session:
        if statement == "update":
            session.execute(
                update(AuditEvent).where(AuditEvent.id == ids[0]).values(actor="niemand")
            )
        else:
            session.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": ids[0]})
    with db.session() as session:
        assert session.get(AuditEvent, ids[0]).actor == "admin"
        assert audit.verify(session, tenant_id).checked == 2


def test_changed_content_names_exactly_that_entry(db: Database) -> None:
    tenant_id, ids = _chain(db)
    with attacker(db), db.engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.id == ids[3]).values(data={"n": 99}))
    with db.session() as session:
        result = audit.verify(session, tenant_id)
        broken = result.broken
        assert broken is not None
        assert (broken.id, broken.position, broken.content_ok, broken.link_ok) == (
            ids[3],
            4,
            False,
            True,
        )
        assert audit.verify_chain(session, tenant_id).id == ids[3]
        message = audit_log.describe_break(broken)
    assert f"Nr. {ids[3]}" in message and "Inhalt verändert" in message
    assert "„test“" in message and "„admin“" in message and "2026-11-21T10:00:03" in message


def test_changed_time_or_actor_is_found(db: Database) -> None:
    tenant_id, ids = _chain(db)
    with attacker(db), db.engine.begin() as conn:
        conn.execute(
            update(AuditEvent)
            .where(AuditEvent.id == ids[1])
            .values(created_at=dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC))
        )
    with db.session() as session:
        assert audit.verify(session, tenant_id).broken.id == ids[1]


def test_deleted_entry_in_the_middle_breaks_the_link_of_the_next(db: Database) -> None:
    tenant_id, ids = _chain(db)
    with attacker(db), db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": ids[2]})
    with db.session() as session:
        broken = audit.verify(session, tenant_id).broken
    assert broken is not None and broken.id == ids[3]
    assert broken.content_ok and not broken.link_ok and broken.previous_id == ids[1]
    assert "Verkettung unterbrochen" in audit_log.describe_break(broken)


def test_recomputed_hash_of_a_forged_entry_is_found_at_its_successor(db: Database) -> None:
    """An attacker who changes a row and recomputes its hash (the format is public) cannot
    fix the next row without rewriting the whole rest of the chain."""
    tenant_id, ids = _chain(db)
    with db.session() as session:
        row = session.get(AuditEvent, ids[2])
        forged = audit.Event(
            kind=row.kind,
            actor="jemand-anderes",
            tenant_id=row.tenant_id,
            subject=row.subject,
            data=row.data,
            at=row.created_at,
        )
        new_hash = hashlib.sha256(audit.canonical(forged, row.prev_hash)).hexdigest()
    with attacker(db), db.engine.begin() as conn:
        conn.execute(
            update(AuditEvent)
            .where(AuditEvent.id == ids[2])
            .values(actor="jemand-anderes", hash=new_hash)
        )
    with db.session() as session:
        broken = audit.verify(session, tenant_id).broken
    assert (broken.id, broken.content_ok, broken.link_ok) == (ids[3], True, False)


def test_made_up_hash_is_found(db: Database) -> None:
    tenant_id, ids = _chain(db)
    with attacker(db), db.engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.id == ids[5]).values(hash="f" * 64))
    with db.session() as session:
        broken = audit.verify(session, tenant_id).broken
    assert (broken.id, broken.content_ok, broken.link_ok) == (ids[5], False, True)


def test_swapped_order_is_found(db: Database) -> None:
    """Entries 2 and 3 trade places completely, hashes included: each is intact on its own,
    but the order is part of the chain."""
    tenant_id, ids = _chain(db)
    columns = ("kind", "actor", "subject", "data", "created_at", "prev_hash", "hash")
    with db.session() as session:
        rows = {
            r.id: {c: getattr(r, c) for c in columns}
            for r in session.scalars(select(AuditEvent).where(AuditEvent.id.in_(ids[1:3])))
        }
    with attacker(db), db.engine.begin() as conn:
        # the hash column is unique: park one value first
        conn.execute(update(AuditEvent).where(AuditEvent.id == ids[1]).values(hash="p" * 64))
        conn.execute(update(AuditEvent).where(AuditEvent.id == ids[2]).values(**rows[ids[1]]))
        conn.execute(update(AuditEvent).where(AuditEvent.id == ids[1]).values(**rows[ids[2]]))
    with db.session() as session:
        broken = audit.verify(session, tenant_id).broken
    assert (broken.id, broken.content_ok, broken.link_ok) == (ids[1], True, False)


def test_tenants_have_separate_chains(db: Database) -> None:
    alpha, alpha_ids = _chain(db, 3, "alpha")
    beta, _ = _chain(db, 3, "beta")
    with attacker(db), db.engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.id == alpha_ids[0]).values(actor="x"))
    with db.session() as session:
        reports = audit_log.verify_all(session)
    by_chain = {r.slug: r for r in reports}
    assert not by_chain["alpha"].ok and by_chain["alpha"].result.broken.id == alpha_ids[0]
    assert by_chain["beta"].ok and by_chain["beta"].result.checked == 3
    assert by_chain[None].ok and by_chain[None].label == "Systemkette (ohne Mandant)"
