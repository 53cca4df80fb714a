"""Process-mining speed: directly-follows graph + waiting times on 1,000,000 events, against
pm4py in the same run (issue 6: target ≤ 5 s and at least 2× faster than pm4py).

    .venv/bin/python benchmarks/bench_process.py
    .venv/bin/python benchmarks/bench_process.py --events 1000000 --repeat 3 --json

The receipt log (``../shared/data/eventlogs/receipt.csv``, 8,577 events) is replicated to
``--events`` events, every copy with new case ids (``case-10011-r0``, ``-r1`` …), so the result
has the same 99 edges with 117× the counts. Timed for Rathaus, from plain columns (case id and
activity strings, microsecond timestamps, file positions) – encoding the strings, sorting by
case/time/position and :func:`rathaus.insights.process.directly_follows` (edge counts, median,
p90, mean, sum, max of the waiting time); the whole :func:`~rathaus.insights.process.analyse`
(variants, rework, handovers, throughput, …) is timed as well, for information. The same
core with waiting times in business hours (``hours=WorkingHours()``: Mon–Fri 08:00–16:00, public
holidays of Baden-Württemberg, Europe/Berlin) is timed too; its figures differ from pm4py's by
design and are not compared.

pm4py is AGPL-3.0 and never a dependency of Rathaus: it runs in its own virtualenv
(``benchmarks/pm4py_venv.sh`` creates ``var/bench-pm4py``) as a separate process
(``benchmarks/pm4py_peer.py``), timing ``pm4py.discover_dfg`` + ``discover_performance_dfg`` on
an already formatted pandas data frame (loading not timed), and its single pass
``get_dfg_graph(measure="both")``. Without that virtualenv the script says how to create it and
reports Rathaus's time alone. No assertion: the script prints seconds and ratios with the load
average (other processes on the two cores distort every figure).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rathaus.insights.eventlog import parse_event_log  # noqa: E402
from rathaus.insights.eventlog_store import to_us  # noqa: E402
from rathaus.insights.process import analyse, directly_follows, from_columns  # noqa: E402
from rathaus.insights.process_hours import WorkingHours  # noqa: E402

RECEIPT = ROOT.parent / "shared" / "data" / "eventlogs" / "receipt.csv"
PM4PY_PYTHON = ROOT / "var" / "bench-pm4py" / "bin" / "python"


def replicate(path: Path, target: int) -> tuple[list[str], list[str], list[int], list[int]]:
    log = parse_event_log(path.read_bytes(), path.name)
    cases = [e.case_key for e in log.events]
    acts = [e.activity for e in log.events]
    stamps = [to_us(e.timestamp) for e in log.events]
    copies = -(-target // len(cases))
    big_cases: list[str] = []
    big_acts: list[str] = []
    big_times: list[int] = []
    for i in range(copies):
        suffix = f"-r{i}"
        big_cases += [c + suffix for c in cases]
        big_acts += acts
        big_times += stamps
    return big_cases[:target], big_acts[:target], big_times[:target], list(range(target))


def time_rathaus(columns, repeat: int) -> dict:  # type: ignore[no-untyped-def]
    runs, full, office = [], [], []
    hours = WorkingHours()
    dfg = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        arrays = from_columns(*columns[:3], positions=columns[3])
        dfg = directly_follows(arrays)
        runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        analyse(arrays)
        full.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        office_dfg = directly_follows(from_columns(*columns[:3], positions=columns[3]), hours)
        office.append(time.perf_counter() - t0)
        assert office_dfg.edges.keys.size == dfg.edges.keys.size
    assert dfg is not None
    return {
        "seconds": min(runs),
        "median_seconds": statistics.median(runs),
        "runs": runs,
        "analyse_seconds": min(full),
        "business_hours_seconds": min(office),
        "edges": int(dfg.edges.keys.size),
        "pairs": int(dfg.edges.count.sum()),
    }


def time_pm4py(events: int) -> dict | None:
    if not PM4PY_PYTHON.exists():
        return None
    out = subprocess.run(
        [
            str(PM4PY_PYTHON),
            str(ROOT / "benchmarks" / "pm4py_peer.py"),
            "bench",
            str(RECEIPT),
            str(events),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not RECEIPT.is_file():
        sys.exit(f"{RECEIPT} fehlt (gemeinsame Daten neben dem Repository).")
    columns = replicate(RECEIPT, args.events)
    ours = time_rathaus(columns, args.repeat)
    peer = time_pm4py(args.events)
    result: dict = {
        "events": args.events,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "rathaus": ours,
        "pm4py": peer,
    }
    if peer:
        result["speedup"] = peer["seconds"] / ours["seconds"]
        result["speedup_single_pass"] = peer["seconds_single_pass"] / ours["seconds"]
        result["same_edges"] = (peer["edges"], peer["pairs"]) == (ours["edges"], ours["pairs"])
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.events:,} Ereignisse (receipt.csv repliziert), Last {result['load_average']}")
    print(
        f"Rathaus  DFG + Wartezeiten: {ours['seconds']:.2f} s (Median {ours['median_seconds']:.2f} s),"
        f" {ours['edges']} Kanten, {ours['pairs']:,} Paare; ganze Analyse {ours['analyse_seconds']:.2f} s"
    )
    print(
        f"Rathaus  DFG + Wartezeiten in Arbeitszeit (Mo–Fr 08–16, Feiertage BW): "
        f"{ours['business_hours_seconds']:.2f} s"
    )
    if not peer:
        print(
            "pm4py: nicht gemessen – die Vergleichsumgebung fehlt. Anlegen mit "
            "`benchmarks/pm4py_venv.sh` (var/bench-pm4py, nur für den Benchmark)."
        )
        print(f"Ziel ≤ 5 s: {'erreicht' if ours['seconds'] <= 5 else 'verfehlt'}")
        return
    print(
        f"pm4py {peer['pm4py']} discover_dfg + discover_performance_dfg: {peer['seconds']:.2f} s; "
        f"ein Durchlauf get_dfg_graph(both): {peer['seconds_single_pass']:.2f} s; "
        f"{peer['edges']} Kanten, {peer['pairs']:,} Paare"
    )
    print(
        f"Rathaus ist {result['speedup']:.1f}× so schnell wie pm4py "
        f"({result['speedup_single_pass']:.1f}× gegen den Einzeldurchlauf); gleiche Kanten: "
        f"{result['same_edges']}"
    )
    print(
        f"Ziele: ≤ 5 s {'erreicht' if ours['seconds'] <= 5 else 'verfehlt'}, ≥ 2× pm4py "
        f"{'erreicht' if result['speedup'] >= 2 else 'verfehlt'}"
    )


if __name__ == "__main__":
    main()
