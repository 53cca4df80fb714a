"""Backup and restore at scale on SQLite: time and peak memory against SQLite's own online copy.

    .venv/bin/python benchmarks/bench_backup.py                    # 5,000 and 20,000 cases
    .venv/bin/python benchmarks/bench_backup.py --cases 2000 50000 --json

For each size a throw-away installation is built (migrated SQLite file; per case one message of
about 1 KB, four case events and a stored original of 8 KB on every tenth case; an audit chain
with one entry per ten cases). Every phase then runs in its own process, so its peak resident
memory (``ru_maxrss`` from ``wait4``) is its own:

- ``sqlite-copy``: ``sqlite3.Connection.backup`` of the database file plus a plain copy of the
  originals: the baseline, same run, same disk;
- ``backup``: :func:`rathaus.core.backup.write_archive` (logical, gzip, every member hashed);
- ``pruefen``: :func:`rathaus.core.backup.verify_archive`;
- ``restore``: :func:`rathaus.core.restore.restore_archive` into a fresh SQLite file
  (migrations, inserts, counts, audit chain).

Reported: seconds and the ratio to the baseline's seconds; peak RSS and peak Python heap
(tracemalloc) per phase. Memory that does not grow from the small to the large size is the
point of the streaming design; the times are expected to grow linearly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

PHASES = ("sqlite-copy", "backup", "pruefen", "restore")


def build(root: Path, cases: int) -> None:
    """A migrated SQLite installation with ``cases`` synthetic cases (see module docstring)."""
    from sqlalchemy import insert

    from rathaus.core import audit
    from rathaus.core.db import Database
    from rathaus.core.migrate import upgrade
    from rathaus.core.models import Case, CaseEvent, Document, Message, Tenant
    from rathaus.core.storage import OriginalStore

    db = Database(f"sqlite:///{root / 'daten' / 'rathaus.db'}")
    upgrade(db)
    store = OriginalStore(root / "daten" / "originals")
    rng = random.Random(8)
    words = [
        "Antrag",
        "Straße",
        "Gehweg",
        "Müll",
        "Parkplatz",
        "Ausweis",
        "Gebühr",
        "Frist",
        "Bescheid",
        "Widerspruch",
    ]
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    with db.session() as session:
        tenant = Tenant(slug="bench", name="Benchmarkstadt")
        session.add(tenant)
        session.flush()
        tenant_id = tenant.id
    with db.engine.begin() as conn:
        for first in range(1, cases + 1, 1000):
            ids = range(first, min(first + 1000, cases + 1))
            at = [start + dt.timedelta(minutes=7 * i) for i in ids]
            conn.execute(
                insert(Case),
                [
                    {
                        "id": i,
                        "tenant_id": tenant_id,
                        "reference": f"BS-2025-{i:06d}",
                        "subject": " ".join(rng.choices(words, k=6)),
                        "status": "neu",
                        "fields": {"betrag": f"{i % 997},{i % 100:02d} €", "n": i},
                        "received_at": at[k],
                    }
                    for k, i in enumerate(ids)
                ],
            )
            conn.execute(
                insert(Message),
                [
                    {
                        "tenant_id": tenant_id,
                        "case_id": i,
                        "direction": "in",
                        "channel": "email",
                        "subject": "Anliegen",
                        "body": " ".join(rng.choices(words, k=130)),
                        "created_at": at[k],
                    }
                    for k, i in enumerate(ids)
                ],
            )
            conn.execute(
                insert(CaseEvent),
                [
                    {
                        "tenant_id": tenant_id,
                        "case_id": i,
                        "kind": kind,
                        "activity": kind,
                        "data": {"schritt": n},
                        "created_at": at[k] + dt.timedelta(hours=n),
                    }
                    for k, i in enumerate(ids)
                    for n, kind in enumerate(("created", "routed", "status", "decision"))
                ],
            )
            documents = []
            for i in ids:
                if i % 10 == 0:
                    stored = store.put(tenant_id, rng.randbytes(8192))
                    documents.append(
                        {
                            "tenant_id": tenant_id,
                            "case_id": i,
                            "filename": f"brief-{i}.pdf",
                            "size": stored.size,
                            "sha256": stored.sha256,
                            "storage_path": stored.relative_path,
                        }
                    )
            if documents:
                conn.execute(insert(Document), documents)
    with db.session() as session:
        for i in range(max(1, cases // 10)):
            audit.record(
                session,
                audit.Event(kind="bench", actor="bench", tenant_id=tenant_id, data={"i": i}),
            )
    db.dispose()


def phase(name: str, root: Path) -> dict[str, float]:
    """One phase, in this (child) process; returns its seconds and Python heap peak."""
    from rathaus.core.archive import verify_archive
    from rathaus.core.backup import write_archive
    from rathaus.core.db import Database
    from rathaus.core.restore import restore_archive

    data = root / "daten"
    tracemalloc.start()
    began = time.perf_counter()
    if name == "sqlite-copy":
        source = sqlite3.connect(data / "rathaus.db")
        target = sqlite3.connect(root / "kopie.db")
        source.backup(target)
        source.close()
        target.close()
        shutil.copytree(data / "originals", root / "kopie-originals")
    elif name == "backup":
        db = Database(f"sqlite:///{data / 'rathaus.db'}")
        write_archive(db, data, root / "sicherung.tar.gz")
        db.dispose()
    elif name == "pruefen":
        verify_archive(root / "sicherung.tar.gz")
    elif name == "restore":
        db = Database(f"sqlite:///{root / 'ziel' / 'rathaus.db'}")
        restore_archive(root / "sicherung.tar.gz", db, root / "ziel")
        db.dispose()
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    return {"seconds": seconds, "python_peak_mb": peak / 1e6}


def run_phase(name: str, root: Path) -> dict[str, float]:
    out = root / f"{name}.json"
    child = subprocess.Popen(
        [sys.executable, __file__, "--phase", name, "--root", str(root), "--out", str(out)]
    )
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"Phase {name} ist fehlgeschlagen (Status {status}).")
    result = json.loads(out.read_text())
    result["rss_peak_mb"] = usage.ru_maxrss / 1024  # Linux: KiB
    result["cpu_s"] = usage.ru_utime + usage.ru_stime  # with start-up, without waiting for disk
    return result


def measure(cases: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="rathaus-bench-backup-") as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        build(root, cases)
        built = time.perf_counter() - began
        phases = {name: run_phase(name, root) for name in PHASES}
        baseline = phases["sqlite-copy"]["seconds"]
        for values in phases.values():
            values["ratio"] = values["seconds"] / baseline
        return {
            "cases": cases,
            "build_s": round(built, 1),
            "database_mb": (root / "daten" / "rathaus.db").stat().st_size / 1e6,
            "archive_mb": (root / "sicherung.tar.gz").stat().st_size / 1e6,
            "phases": phases,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        args.out.write_text(json.dumps(phase(args.phase, args.root)))
        return
    results = [measure(n) for n in args.cases]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, SQLite {sqlite3.sqlite_version}"
    )
    for r in results:
        print(
            f"\n{r['cases']:,} Vorgänge: Datenbank {r['database_mb']:.1f} MB, "
            f"Archiv {r['archive_mb']:.1f} MB (Aufbau {r['build_s']} s)"
        )
        print(
            f"  {'Phase':<12} {'s':>8} {'× Kopie':>8} {'CPU s':>7} {'RSS-Spitze MB':>14} "
            f"{'Python MB':>10}"
        )
        for name, v in r["phases"].items():  # type: ignore[union-attr]
            print(
                f"  {name:<12} {v['seconds']:>8.2f} {v['ratio']:>8.1f} {v['cpu_s']:>7.2f} "
                f"{v['rss_peak_mb']:>14.0f} {v['python_peak_mb']:>10.1f}"
            )


if __name__ == "__main__":
    main()
