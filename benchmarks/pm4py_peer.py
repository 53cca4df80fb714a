"""The pm4py side of the process-mining comparison. Runs ONLY inside the separate pm4py virtualenv
(benchmarks/pm4py_venv.sh); Rathaus never imports pm4py (AGPL-3.0).

    var/bench-pm4py/bin/python benchmarks/pm4py_peer.py figures ../shared/data/eventlogs/receipt.csv
    var/bench-pm4py/bin/python benchmarks/pm4py_peer.py bench ../shared/data/eventlogs/receipt.csv 1000000

``figures`` prints activity counts, DFG edge counts, median/p90 waiting times (seconds), start and
end activities as JSON. ``bench`` replicates the log to N events (new case ids per copy), then times
``discover_dfg`` + ``discover_performance_dfg`` on the formatted data frame (and pm4py's single
pass ``get_dfg_graph(measure="both")``) and prints JSON; loading and formatting are not timed.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
import pm4py

CASE, ACT, TS = "case:concept:name", "concept:name", "time:timestamp"


def load(path: str) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={CASE: str})
    return pm4py.format_dataframe(df, case_id=CASE, activity_key=ACT, timestamp_key=TS)


def figures(path: str) -> dict:
    df = load(path)
    dfg, start, end = pm4py.discover_dfg(df)
    perf, _, _ = pm4py.discover_performance_dfg(df)
    acts = pm4py.get_event_attribute_values(df, ACT)
    return {
        "pm4py": pm4py.__version__,
        "events": len(df),
        "cases": int(df[CASE].nunique()),
        "activities": {k: int(v) for k, v in sorted(acts.items())},
        "start": {k: int(v) for k, v in sorted(start.items())},
        "end": {k: int(v) for k, v in sorted(end.items())},
        "edges": [
            [a, b, int(c), float(perf[(a, b)]["median"]), float(perf[(a, b)]["mean"])]
            for (a, b), c in sorted(dfg.items())
        ],
    }


def replicate(df: pd.DataFrame, target: int) -> pd.DataFrame:
    copies = -(-target // len(df))
    parts = []
    for i in range(copies):
        part = df[[CASE, ACT, TS]].copy()
        part[CASE] = part[CASE] + f"-r{i}"
        parts.append(part)
    big = pd.concat(parts, ignore_index=True).iloc[:target]
    return pm4py.format_dataframe(big, case_id=CASE, activity_key=ACT, timestamp_key=TS)


def bench(path: str, target: int, repeat: int = 3) -> dict:
    """Time the public API (``discover_dfg`` + ``discover_performance_dfg``: frequencies and
    waiting times) and, as pm4py's fastest path, one ``get_dfg_graph(measure="both")`` pass."""
    from pm4py.algo.discovery.dfg.adapters.pandas.df_statistics import get_dfg_graph

    big = replicate(load(path), target)
    public, single = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        dfg, _, _ = pm4py.discover_dfg(big)
        perf, _, _ = pm4py.discover_performance_dfg(big, perf_aggregation_key="all")
        public.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        get_dfg_graph(big, measure="both", perf_aggregation_key="median")
        single.append(time.perf_counter() - t0)
    return {
        "pm4py": pm4py.__version__,
        "events": len(big),
        "edges": len(dfg),
        "pairs": int(sum(dfg.values())),
        "seconds": min(public),
        "runs": public,
        "seconds_single_pass": min(single),
        "median_first_edge": float(perf[sorted(perf)[0]]["median"]),
    }


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "figures":
        print(json.dumps(figures(path), ensure_ascii=False))
    else:
        print(json.dumps(bench(path, int(sys.argv[3]))))
