"""Audit chain at scale: verify and signed export of a chain with hundreds of thousands of rows
(issue 7, "rathaus audit verify ... must cope with 100,000s of rows").

    .venv/bin/python benchmarks/bench_audit.py --rows 300000
    .venv/bin/python benchmarks/bench_audit.py --rows 300000 --database-url postgresql+psycopg://…

Builds a throw-away migrated database (SQLite file, or a fresh PostgreSQL database named
``rathaus_bench_audit_*`` on the given server, dropped afterwards), appends ``--rows`` events
to one tenant's chain with realistic payloads (hashes computed exactly like
:func:`rathaus.core.audit.record`, inserted in bulk because ``record`` reads the previous hash
row by row), then measures :func:`rathaus.core.audit.verify` (keyset pages of 5,000 rows) and
:func:`rathaus.governance.audit_log.export_to_file` (JSON Lines and CSV) plus
:func:`check_export`, and the peak Python memory of the verify (tracemalloc) against a baseline
of loading every row at once as ORM objects, which is what the chain check did before.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text

from rathaus.core import audit
from rathaus.core.db import Database
from rathaus.core.migrate import upgrade
from rathaus.core.models import AuditEvent, Tenant
from rathaus.governance import audit_log

SECRET = "benchmark-secret-key-not-for-production"


def _fill(db: Database, rows: int) -> int:
    with db.session() as session:
        tenant = Tenant(slug="bench", name="Benchmarkstadt")
        session.add(tenant)
        session.flush()
        tenant_id = tenant.id
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    prev = audit.GENESIS
    batch: list[dict] = []
    with db.engine.begin() as conn:
        for i in range(rows):
            event = audit.Event(
                kind=("ki_entscheidung", "login", "case_status")[i % 3],
                actor=f"user{i % 40}",
                tenant_id=tenant_id,
                subject=f"ai_suggestion:{i}",
                data={
                    "function": "routing",
                    "decision": "angenommen",
                    "changed_lines": i % 7,
                    "case_id": i,
                    "model_version": "v12",
                },  # fmt: skip
                at=start + dt.timedelta(seconds=i),
            )
            digest = hashlib.sha256(audit.canonical(event, prev)).hexdigest()
            batch.append(
                {
                    "tenant_id": tenant_id,
                    "kind": event.kind,
                    "actor": event.actor,
                    "subject": event.subject,
                    "data": event.data,
                    "created_at": event.at,
                    "prev_hash": prev,
                    "hash": digest,
                }  # fmt: skip
            )
            prev = digest
            if len(batch) == 10_000:
                conn.execute(insert(AuditEvent), batch)
                batch = []
        if batch:
            conn.execute(insert(AuditEvent), batch)
    return tenant_id


def _measure(db: Database, tenant_id: int, rows: int, folder: Path) -> dict:
    out: dict = {"rows": rows, "dialect": db.engine.dialect.name}
    with db.session() as session:
        started = time.perf_counter()
        result = audit.verify(session, tenant_id)
        out["verify_s"] = round(time.perf_counter() - started, 2)
        assert result.ok and result.checked == rows, result
    # Memory apart from time: tracemalloc slows Python down several times.
    with db.session() as session:
        tracemalloc.start()
        audit.verify(session, tenant_id)
        out["verify_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
        tracemalloc.stop()
    with db.session() as session:
        tracemalloc.start()
        loaded = list(session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)))
        out["baseline_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
        tracemalloc.stop()
        del loaded
    for fmt in audit_log.FORMATS:
        path = folder / f"bench.{fmt}"
        with db.session() as session:
            tenant = session.get(Tenant, tenant_id)
            started = time.perf_counter()
            audit_log.export_to_file(session, path, fmt=fmt, tenant=tenant, secret_key=SECRET)
            out[f"export_{fmt}_s"] = round(time.perf_counter() - started, 2)
        out[f"export_{fmt}_mb"] = round(path.stat().st_size / 1e6, 1)
        started = time.perf_counter()
        assert audit_log.check_export(path, secret_key=SECRET).rows == rows
        out[f"check_{fmt}_s"] = round(time.perf_counter() - started, 2)
    out["verify_rows_per_s"] = int(rows / out["verify_s"])
    out["memory_ratio_baseline_vs_verify"] = round(
        out["baseline_peak_mb"] / max(out["verify_peak_mb"], 0.1), 1
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--database-url", default="", help="PostgreSQL server (optional)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        admin = None
        if args.database_url:
            name = f"rathaus_bench_audit_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = f"{args.database_url.rsplit('/', 1)[0]}/{name}"
        else:
            url = f"sqlite:///{folder / 'bench.db'}"
        db = Database(url)
        try:
            upgrade(db)
            started = time.perf_counter()
            tenant_id = _fill(db, args.rows)
            fill_s = round(time.perf_counter() - started, 1)
            result = _measure(db, tenant_id, args.rows, folder) | {"fill_s": fill_s}
        finally:
            db.dispose()
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                admin.dispose()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
