"""Scale: triage throughput with 1 and with 2 `rathaus worker` processes on the same backlog.

    .venv/bin/python benchmarks/bench_workers.py                  # 300 items per round
    .venv/bin/python benchmarks/bench_workers.py --items 100 --json

One server installation (PostgreSQL database and Redis queue of its own, `rathaus db upgrade`,
`rathaus demo` with its trained routing model). Each round starts ``k`` worker processes
(``--threads`` job threads each, default 1, periodic jobs off; ``--omp-threads`` sets
``OMP_NUM_THREADS``, the embedding model's compute threads, default: one per core), warms them up (models loaded,
descriptions of units and services embedded: every worker has run a triage), then stores
``--items`` real citizen reports (Konstanz Mängelmelder, ``--data``) as new cases, puts their
triage into the queue at once and measures the time until the last one is triaged. Rounds run
in the order 1, 2, 2, 1 workers (so a change in what else runs on the machine hits both alike),
each on new items; reported: items/s per round, the mean per worker count and the ratio
2 ÷ 1 (ideal on two free cores: 2.0). Every item must be triaged exactly once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench_load import read_reports
from server_stack import Installation, load_average, wait_until
from sqlalchemy import func, select

from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.models import Case, CaseEvent, Tenant
from rathaus.core.storage import OriginalStore
from rathaus.inbox.jobs import triage_job
from rathaus.inbox.service import IncomingItem, receive

ROUNDS = (1, 2, 2, 1)


def store(db: Database, data_dir: Path, texts: list[str]) -> list[int]:
    """Store the reports as new cases (as the API does), not yet queued; their ids."""
    originals = OriginalStore(load_settings(mode="demo", data_dir=data_dir).originals_dir)
    with db.session() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "musterstadt"))
        assert tenant is not None
        ids = []
        for body in texts:
            item = IncomingItem(
                channel="api",
                original=body.encode("utf-8"),
                filename="text.txt",
                media_type="text/plain",
                subject="Mängelmeldung",
                body=body,
            )
            ids.append(receive(session, tenant=tenant, item=item, store=originals).case.id)
    return ids


def untriaged(db: Database, ids: list[int]) -> int:
    with db.session() as session:
        return int(
            session.scalar(select(func.count()).where(Case.id.in_(ids), Case.triaged_at.is_(None)))
            or 0
        )


def run_round(
    inst: Installation, db: Database, workers: int, texts: list[str], warm: list[str], threads: int
) -> dict[str, Any]:
    processes = [
        inst.start(f"worker-{workers}-{n}", "worker", "--workers", str(threads))
        for n in range(workers)
    ]
    try:
        # Warm up until every process has triaged at least one item.
        warm_ids = store(db, inst.data_dir, warm)
        for case_id in warm_ids:
            triage_job.enqueue(case_id)
        wait_until(
            lambda: (
                untriaged(db, warm_ids) == 0
                and all("Executing rathaus.inbox.jobs.triage_job" in p.output for p in processes)
            ),
            600,
            "Aufwärmen: nicht jeder Worker hat vorgeprüft",
            step=0.5,
        )
        ids = store(db, inst.data_dir, texts)
        load_before = load_average()
        started = time.perf_counter()
        for case_id in ids:
            triage_job.enqueue(case_id)
        wait_until(lambda: untriaged(db, ids) == 0, 3600, "Rückstand nicht abgearbeitet", 0.2)
        seconds = time.perf_counter() - started
    finally:
        for process in processes:
            process.stop()
        inst.processes.clear()
    with db.session() as session:
        twice = session.scalar(
            select(func.count()).select_from(
                select(CaseEvent.case_id)
                .where(CaseEvent.case_id.in_(ids), CaseEvent.kind == "triaged")
                .group_by(CaseEvent.case_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
    return {
        "workers": workers,
        "items": len(ids),
        "seconds": round(seconds, 2),
        "items_per_s": round(len(ids) / seconds, 2),
        "triaged_twice": int(twice or 0),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=300, help="Eingänge je Runde")
    parser.add_argument("--threads", type=int, default=1, help="Job-Threads je Worker-Prozess")
    parser.add_argument(
        "--omp-threads",
        type=int,
        help="OMP_NUM_THREADS der Worker (Rechenthreads der Einbettung; Standard: alle Kerne)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data/inbox/konstanz_maengelmelder_2020-2022.csv"),
    )
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"Daten nicht gefunden: {args.data} (Ordner ../shared/data).")
    per_round = args.items + 8
    texts = read_reports(args.data, per_round * len(ROUNDS))

    inst = Installation.create(
        "server",
        pg_url=args.pg_url,
        redis_url=args.redis_url,
        settings={"QUEUE__PERIODIC": "false"},
    )
    if args.omp_threads:
        inst.env["OMP_NUM_THREADS"] = str(args.omp_threads)
    rounds = []
    try:
        print("Einrichten (Schema, Demo-Kommune, Training) …", file=sys.stderr)
        inst.set_up()
        inst.huey()  # this process enqueues into the installation's queue
        db = Database(inst.database_url)
        for n, workers in enumerate(ROUNDS):
            chunk = texts[n * per_round : (n + 1) * per_round]
            print(f"Runde {n + 1}: {workers} Worker, {args.items} Eingänge …", file=sys.stderr)
            rounds.append(run_round(inst, db, workers, chunk[8:], chunk[:8], args.threads))
        db.dispose()
    finally:
        inst.remove()

    mean = {
        k: round(statistics.mean(r["items_per_s"] for r in rounds if r["workers"] == k), 2)
        for k in sorted(set(ROUNDS))
    }
    result = {
        "threads_per_worker": args.threads,
        "omp_threads": args.omp_threads,
        "rounds": rounds,
        "items_per_s": {f"{k}_worker": v for k, v in mean.items()},
        "ratio_2_to_1": round(mean[2] / mean[1], 2),
        "triaged_twice": sum(r["triaged_twice"] for r in rounds),
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        for r in rounds:
            print(
                f"{r['workers']} Worker: {r['items']} Eingänge in {r['seconds']} s = "
                f"{r['items_per_s']} /s (Last {r['load_average_before']} → "
                f"{r['load_average_after']})"
            )
        print(
            f"Mittel: 1 Worker {mean[1]} /s, 2 Worker {mean[2]} /s, "
            f"Verhältnis {result['ratio_2_to_1']} (ideal 2,0)"
        )
    sys.exit(1 if result["triaged_twice"] else 0)


if __name__ == "__main__":
    main()
