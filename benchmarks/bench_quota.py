"""What the per-tenant checks cost each language-model call (issue 8, "per-tenant quotas").

    .venv/bin/python benchmarks/bench_quota.py                  # SQLite (counter file beside it)
    .venv/bin/python benchmarks/bench_quota.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

The gateway wraps an in-process model that answers at once (so only the gateway is measured,
not a model). Measured alternately in the same run, ``--calls`` times each:

- baseline: a call without a tenant (policy check only, as before tenants had quotas);
- tenant: a call of a tenant with a quota and its own policy for the level (tenant rules read,
  atomic admission upsert, tokens settled: two short transactions).

Prints mean and p95 per call and the ratio tenant/baseline. On PostgreSQL a throw-away database
is created and dropped. A real model call takes 0.1–10 s; the difference is what matters.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rathaus.ai.llm import ChatMessage, Completion  # noqa: E402
from rathaus.core import tenants  # noqa: E402
from rathaus.core.config import load_settings  # noqa: E402
from rathaus.core.db import Database  # noqa: E402
from rathaus.core.migrate import upgrade  # noqa: E402
from rathaus.governance import quota  # noqa: E402
from rathaus.governance.gateway import guard, model_context  # noqa: E402

MESSAGES = [ChatMessage("user", "Wann hat das Bürgeramt geöffnet?")]


class InstantModel:
    """A model in the process that answers at once."""

    name = "local"
    model = "sofort"
    version = "1"

    def complete(self, messages, *, max_tokens=512, temperature=0.0, json_mode=False):  # type: ignore[no-untyped-def]
        return Completion("Montag bis Freitag.", "sofort", prompt_tokens=12, completion_tokens=5)


def _p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def run(db: Database, calls: int) -> None:
    upgrade(db)
    with db.session() as session:
        tenant = tenants.create(session, slug="bench", name="Stadt Bench", template="leer")
        tenant_id = tenant.id
        tenants.set_quota(session, slug="bench", requests_per_minute=10**9, tokens_per_minute=10**9)
        tenants.set_policy(
            session, slug="bench", level="intern", locations=["lokal"], installation={}
        )
    model = guard(InstantModel(), load_settings(mode="demo"), "llm")
    times: dict[str, list[float]] = {"baseline": [], "tenant": []}
    for _ in range(calls):
        for label, tid in (("baseline", None), ("tenant", tenant_id)):
            with model_context(level="intern", tenant_id=tid, database=db):
                start = time.perf_counter()
                model.complete(MESSAGES)
                times[label].append(time.perf_counter() - start)
    counter = quota.counter_for(db.engine)
    assert counter is not None
    used = counter.since(tenant_id, 0)
    assert used.requests == calls, used
    base, ten = times["baseline"], times["tenant"]
    print(f"Datenbank: {db.engine.dialect.name}, {calls} Aufrufe je Variante")
    for label, values in times.items():
        print(
            f"  {label:<9} Mittel {statistics.mean(values) * 1e6:8.0f} µs   "
            f"p95 {_p95(values) * 1e6:8.0f} µs"
        )
    print(
        f"  Verhältnis Kommune/ohne: Mittel {statistics.mean(ten) / statistics.mean(base):.1f}, "
        f"p95 {_p95(ten) / _p95(base):.1f}; Mehraufwand je Aufruf "
        f"{(statistics.mean(ten) - statistics.mean(base)) * 1e3:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--postgres", help="Admin-URL eines PostgreSQL-Servers (optional)")
    args = parser.parse_args()
    if args.postgres:
        name = f"rathaus_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        db = Database(args.postgres.rsplit("/", 1)[0] + "/" + name)
        try:
            run(db, args.calls)
        finally:
            db.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}"'))
            admin.dispose()
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'rathaus.db'}")
        run(db, args.calls)
        db.dispose()


if __name__ == "__main__":
    main()
