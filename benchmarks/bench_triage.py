"""Triage throughput: the whole pipeline against the raw embedding of the same texts.

    .venv/bin/python benchmarks/bench_triage.py --items 2000 \
        --data ../shared/data/inbox/konstanz_maengelmelder_2020-2022.csv

Both are measured in the same run on the same texts (real citizen reports from the Konstanz
Mängelmelder, in file order), alternating batch by batch: the embedding model alone
(``embed_passages`` on 32 texts, what any triage needs at least), then the pipeline on the same 32: store each original and create the case
(``receive``), then ``triage_many`` (text, language, PII, instructions to the AI, fields, request
type and urgency, similar cases, routing with the trained demo model, reply draft), committed in
batches of 32 to a fresh SQLite database. No OCR. Prints JSON; the target is an overhead of at
most 25 % (``pipeline_seconds / embedding_seconds <= 1.25``).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from rathaus.ai.registry import get_embedder
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.demo.loader import load_demo
from rathaus.core.migrate import upgrade
from rathaus.core.models import Case, Tenant
from rathaus.inbox.demo_eval import train_demo
from rathaus.inbox.pipeline import TriageKit, triage_many
from rathaus.inbox.service import IncomingItem, receive

BATCH = 32


def read_texts(path: Path, n: int) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        texts = [r["Text"].strip() for r in csv.DictReader(handle) if r.get("Text", "").strip()]
    unique = list(dict.fromkeys(texts))
    if len(unique) < n:
        sys.exit(f"Nur {len(unique)} verschiedene Texte in {path}, {n} verlangt.")
    return unique[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data/inbox/konstanz_maengelmelder_2020-2022.csv"),
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="cProfile of the pipeline part only (pstats file), to see what it spends beyond "
        "the embedding",
    )
    args = parser.parse_args()
    profiler = cProfile.Profile() if args.profile else None
    texts = read_texts(args.data, args.items)

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(mode="demo", data_dir=Path(tmp))
        db = Database.from_settings(settings)
        upgrade(db)
        load_demo(db, password_hasher=lambda p: "-")
        embedder = get_embedder(settings)
        embedder.embed_passages(["Aufwärmen"])  # load the model outside both timings
        kit = TriageKit.from_settings(settings, embedder=embedder, language_model=None)
        version = train_demo(db, settings, embedder, trigger="benchmark")
        tenant_id = version.tenant_id

        # One-time work of a worker process (loading the routing model, embedding the
        # descriptions of units and services, fitting the screening classifier, which only
        # reads sentences of 12 characters or more) is done once before the timing, with one
        # item.
        warm_text = "Warmlaufen: Die Straßenlaterne vor dem Rathaus ist seit gestern dunkel."
        with db.session() as session:
            tenant = session.get(Tenant, tenant_id)
            assert tenant is not None
            warm = receive(
                session,
                tenant=tenant,
                item=IncomingItem(
                    "warmup", warm_text.encode("utf-8"), "warm.txt", "text/plain", body=warm_text
                ),
                store=kit.store,
            ).case
            triage_many(session, [warm], kit)

        # Raw embedding and pipeline alternate batch by batch, so that anything else running on
        # the machine slows both alike.
        embedding_s = pipeline_s = embedding_cpu = pipeline_cpu = 0.0
        load_before = os.getloadavg()
        for start in range(0, len(texts), BATCH):
            batch = texts[start : start + BATCH]
            started, cpu = time.perf_counter(), time.process_time()
            embedder.embed_passages(batch)
            embedding_s += time.perf_counter() - started
            embedding_cpu += time.process_time() - cpu

            started, cpu = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            with db.session() as session:
                tenant = session.get(Tenant, tenant_id)
                assert tenant is not None
                cases = [
                    receive(
                        session,
                        tenant=tenant,
                        item=IncomingItem(
                            channel="api",
                            original=text.encode("utf-8"),
                            filename="meldung.txt",
                            media_type="text/plain",
                            body=text,
                        ),
                        store=kit.store,
                    ).case
                    for text in batch
                ]
                triage_many(session, cases, kit, batch=BATCH)
            if profiler is not None:
                profiler.disable()
            pipeline_s += time.perf_counter() - started
            pipeline_cpu += time.process_time() - cpu

        with db.session() as session:
            triaged = session.scalars(
                select(Case).where(Case.triaged_at.is_not(None), Case.channel == "api")
            ).all()
            flagged = sum(1 for c in triaged if c.needs_review_reason)
            reasons = collections.Counter(
                line.split(" (")[0].split("„")[0][:60]
                for c in triaged
                for line in (c.needs_review_reason or "").splitlines()
            )
            failed = sum(1 for c in triaged if "fehlgeschlagen" in (c.needs_review_reason or ""))
    load_after = os.getloadavg()
    if profiler is not None:
        profiler.dump_stats(args.profile)

    result = {
        "items": len(texts),
        "embedding_seconds": round(embedding_s, 2),
        "embedding_items_per_s": round(len(texts) / embedding_s, 2),
        "pipeline_seconds": round(pipeline_s, 2),
        "pipeline_items_per_s": round(len(texts) / pipeline_s, 2),
        "pipeline_over_embedding": round(pipeline_s / embedding_s, 3),
        "overhead_percent": round(100 * (pipeline_s / embedding_s - 1), 1),
        "target_overhead_percent": 25,
        # The same in CPU time of this process: less dependent on what else runs on the
        # machine (but blind to waiting for the disk, e.g. fsync).
        "embedding_cpu_seconds": round(embedding_cpu, 2),
        "pipeline_cpu_seconds": round(pipeline_cpu, 2),
        "cpu_overhead_percent": round(100 * (pipeline_cpu / embedding_cpu - 1), 1),
        "triaged": len(triaged),
        "flagged_for_review": flagged,
        "failed_steps": failed,
        "review_reasons": dict(reasons.most_common(5)),
        "load_average_1min": [round(load_before[0], 1), round(load_after[0], 1)],
        "routing_model": f"v{version.version} ({version.n_train} Vorgänge)",
        "embedder": embedder.version,
        "data": str(args.data),
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
