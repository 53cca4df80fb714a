"""Load: citizen conversations plus inbox ingestion, server mode next to embedded mode.

    .venv/bin/python benchmarks/bench_load.py                 # 5 minutes per mode
    .venv/bin/python benchmarks/bench_load.py --duration 30   # a quick run
    .venv/bin/python benchmarks/bench_load.py --duration 30 --json

The same load runs twice in one invocation, against two fresh installations set up with the
real commands (`rathaus db upgrade`, `rathaus demo` – trained routing model, knowledge base –,
`rathaus apikeys create`):

- server: PostgreSQL (a database of its own on ``--pg-url``), a Redis queue of its own
  (``--redis-url``, database 7 by default), `rathaus serve --workers 2` and two `rathaus worker`
  processes;
- embedded: a SQLite file, the SQLite queue, one `rathaus serve` process whose worker threads
  do the triage.

The load, from this process (asyncio + httpx), for ``--duration`` seconds:

- ``--conversations`` (20) citizens talk to the assistant (`POST /api/v1/assistant/ask`), each a
  multi-turn conversation on a topic of the demo knowledge base (a question, then follow-ups
  in the same conversation), waiting ``--think`` seconds between turns, each from an address of
  its own (``X-Forwarded-For``; uvicorn trusts it from 127.0.0.1). The assistant's per-client
  limit is raised to 600 questions per minute because these citizens ask faster than people
  (and the per-key limit of the inbox API, ``limits.api_per_minute``, to 1,200);
- inbox ingestion at ``--rate`` (10) items per second, open loop (an item is sent on time even
  if earlier ones are still waiting for their answer), `POST /api/v1/inbox/items` with an API
  key, real citizen reports from the Konstanz Mängelmelder (``--data``; read from there, never
  copied, never printed).

Then it waits until every accepted item is triaged (at most ``--drain-timeout`` seconds) and
reports per mode: errors (every answer that is not 2xx, and every failed request), lost items
(accepted, i.e. 201 with a case number, but not stored or not triaged after the drain), items
triaged more than once, whether the audit chain still verifies, p50/p95/p99 latency of ask and
ingest, triage throughput (accepted items ÷ time from the first item stored to the last
triaged) and the delay from storing to triage. Server figures are printed next to the embedded
ones with their ratio (server ÷ embedded). Both modes share the machine with whatever else runs
on it (the load average is printed): compare the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from server_stack import Installation, free_port, load_average, percentile
from sqlalchemy import func, select

from rathaus.core import audit
from rathaus.core.db import Database
from rathaus.core.models import Case, CaseEvent, Tenant

# Conversations on the demo knowledge base (topics of src/rathaus/assistant/demo/): the first
# question names the matter, follow-ups rely on the conversation for context.
CONVERSATIONS = [
    ["Mein Personalausweis läuft ab. Wie beantrage ich einen neuen?", "Was kostet das?",
     "Welche Unterlagen muss ich mitbringen?", "Wie lange dauert es?"],
    ["Ich brauche einen Reisepass für eine Reise im Sommer.", "Gibt es einen Expresspass?",
     "Was kostet der?"],
    ["Ich bin umgezogen. Wie melde ich meinen Wohnsitz an?", "Bis wann muss ich das machen?",
     "Brauche ich die Bestätigung vom Vermieter?"],
    ["Wie bekomme ich einen Bewohnerparkausweis?", "Was kostet er im Jahr?",
     "Kann ich ihn online beantragen?"],
    ["Ich möchte ein Gewerbe anmelden.", "Welche Gebühr fällt an?", "Geht das auch online?"],
    ["Wir haben einen Hund bekommen. Muss ich Hundesteuer zahlen?", "Wie hoch ist sie?",
     "Wo melde ich den Hund an?"],
    ["Wie finde ich einen Kita-Platz für mein Kind?", "Ab welchem Alter geht das?",
     "Wann sollte ich mich anmelden?"],
    ["Wie kann ich Sperrmüll abholen lassen?", "Was kostet die Abholung?",
     "Welche Gegenstände gehören nicht dazu?"],
    ["Vor meinem Haus ist ein großes Schlagloch in der Straße.", "Wie kann ich das melden?",
     "Wie schnell wird das repariert?"],
    ["Kann ich Wohngeld bekommen?", "Welche Unterlagen brauche ich für den Antrag?",
     "Wie lange dauert die Bearbeitung?"],
    ["Ich will an meinem Haus anbauen. Brauche ich eine Baugenehmigung?",
     "Wer darf den Bauantrag einreichen?", "Wie lange dauert das Verfahren?"],
    ["Mein Aufenthaltstitel läuft bald ab. Was muss ich tun?", "Welche Unterlagen brauche ich?",
     "Wann sollte ich den Termin machen?"],
    ["Wann hat das Bürgerbüro geöffnet?", "Brauche ich einen Termin?",
     "Wo ist das Bürgerbüro?"],
]  # fmt: skip


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 5:
            self.examples.append(f"{kind}: {detail[:200]}")


def read_reports(path: Path, n: int) -> list[str]:
    """``n`` different report texts (repeated with a running number if the file has fewer)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        texts = [r["Text"].strip() for r in csv.DictReader(handle) if r.get("Text", "").strip()]
    unique = list(dict.fromkeys(texts))
    if not unique:
        raise SystemExit(f"Keine Meldungen in {path}.")
    random.Random(8).shuffle(unique)
    return [
        unique[i % len(unique)] + ("" if i < len(unique) else f"\n(Meldung {i})") for i in range(n)
    ]


async def converse(
    client: httpx.AsyncClient, number: int, stop_at: float, think: float, samples: Samples
) -> int:
    rng = random.Random(number)
    address = f"10.20.{number // 250}.{number % 250 + 1}"
    turns = 0
    while time.monotonic() < stop_at:
        conversation_id = None
        for question in rng.choice(CONVERSATIONS):
            if time.monotonic() >= stop_at:
                break
            body: dict[str, Any] = {"question": question}
            if conversation_id:
                body["conversation_id"] = conversation_id
            started = time.perf_counter()
            try:
                response = await client.post(
                    "/api/v1/assistant/ask", json=body, headers={"X-Forwarded-For": address}
                )
            except httpx.HTTPError as exc:
                samples.error(type(exc).__name__, str(exc))
            else:
                samples.latencies.append(time.perf_counter() - started)
                turns += 1
                if response.status_code == 200:
                    conversation_id = response.json()["conversation_id"]
                else:
                    samples.error(str(response.status_code), response.text)
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))
    return turns


async def ingest_one(
    client: httpx.AsyncClient, key: str, report: str, samples: Samples, accepted: list[int]
) -> None:
    started = time.perf_counter()
    try:
        response = await client.post(
            "/api/v1/inbox/items",
            json={"text": report, "subject": "Mängelmeldung"},
            headers={"Authorization": f"Bearer {key}"},
        )
    except httpx.HTTPError as exc:
        samples.error(type(exc).__name__, str(exc))
        return
    samples.latencies.append(time.perf_counter() - started)
    if response.status_code != 201:
        samples.error(str(response.status_code), response.text)
        return
    for receipt in response.json():
        if receipt.get("case_id") is not None and not receipt.get("duplicate"):
            accepted.append(receipt["case_id"])
        else:
            samples.error("nicht angenommen", json.dumps(receipt, ensure_ascii=False))


async def run_load(
    base: str, key: str, reports: list[str], args: argparse.Namespace
) -> tuple[Samples, Samples, list[int], float]:
    ask, ingest = Samples(), Samples()
    accepted: list[int] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    timeout = httpx.Timeout(120.0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:
        start = time.monotonic()
        stop_at = start + args.duration
        talkers = [
            asyncio.create_task(converse(client, n, stop_at, args.think, ask))
            for n in range(args.conversations)
        ]
        sends = []
        for i, report in enumerate(reports):
            due = start + i / args.rate
            if due >= stop_at:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            sends.append(asyncio.create_task(ingest_one(client, key, report, ingest, accepted)))
        await asyncio.gather(*talkers, *sends)
        return ask, ingest, accepted, time.monotonic() - start


async def warm_up(base: str, key: str, args: argparse.Namespace) -> None:
    """What every process does once (load models, build the knowledge index, embed the
    descriptions of units and services) happens before the timing: a few questions and items,
    until those items are triaged."""
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        asks = [
            client.post("/api/v1/assistant/ask", json={"question": CONVERSATIONS[i][0]})
            for i in range(2 * args.web_workers)
        ]
        items = [
            client.post(
                "/api/v1/inbox/items",
                json={"text": f"Aufwärmen {i}: Die Laterne in der Gartenstraße {i} ist defekt."},
                headers={"Authorization": f"Bearer {key}"},
            )
            for i in range(4 * args.job_workers)
        ]
        responses = await asyncio.gather(*asks, *items)
        if bad := [r for r in responses if r.status_code >= 300]:
            raise SystemExit(f"Aufwärmen scheiterte: {bad[0].status_code} {bad[0].text}")
        ids = [r.json()[0]["case_id"] for r in responses[len(asks) :]]
        status = [f"/api/v1/inbox/items/{i}" for i in ids]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            states = await asyncio.gather(
                *(client.get(u, headers={"Authorization": f"Bearer {key}"}) for u in status)
            )
            if all(s.status_code == 200 and s.json()["triaged"] for s in states):
                return
            await asyncio.sleep(1)
        raise SystemExit("Aufwärmen: Eingänge wurden nicht vorgeprüft.")


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def drain(db: Database, ids: list[int], timeout: float) -> tuple[bool, float, int]:
    """Wait until every accepted item is triaged; (complete, seconds, backlog at start)."""
    started = time.monotonic()
    backlog = None
    while True:
        with db.session() as session:
            left = session.scalar(
                select(func.count()).where(Case.id.in_(ids), Case.triaged_at.is_(None))
            )
        backlog = left if backlog is None else backlog
        if not left:
            return True, time.monotonic() - started, int(backlog or 0)
        if time.monotonic() - started > timeout:
            return False, time.monotonic() - started, int(backlog or 0)
        time.sleep(1)


def outcome(db: Database, ids: list[int]) -> dict[str, Any]:
    """What became of the accepted items: stored, triaged, triaged twice, timings."""
    with db.session() as session:
        rows = session.execute(
            select(Case.id, Case.created_at, Case.triaged_at).where(Case.id.in_(ids))
        ).all()
        twice = session.scalar(
            select(func.count()).select_from(
                select(CaseEvent.case_id)
                .where(CaseEvent.case_id.in_(ids), CaseEvent.kind == "triaged")
                .group_by(CaseEvent.case_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
        chains = [audit.verify(session, t) for t in session.scalars(select(Tenant.id))]
    triaged = [(r.created_at, r.triaged_at) for r in rows if r.triaged_at is not None]
    delays = [(_utc(t) - _utc(c)).total_seconds() for c, t in triaged]
    span = (
        (max(_utc(t) for _, t in triaged) - min(_utc(c) for c, _ in triaged)).total_seconds()
        if triaged
        else 0.0
    )
    return {
        "stored": len(rows),
        "triaged": len(triaged),
        "lost_items": len(set(ids)) - len(triaged),
        "triaged_twice": int(twice or 0),
        "audit_chain_ok": all(c.ok for c in chains),
        "triage_items_per_s": round(len(triaged) / span, 2) if span else None,
        "triage_delay_p50_s": _round(percentile(delays, 50)),
        "triage_delay_p95_s": _round(percentile(delays, 95)),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def measure(mode: str, reports: list[str], args: argparse.Namespace) -> dict[str, Any]:
    # The load comes from one machine: each citizen has an address of its own, but the whole
    # ingestion uses one API key (600 items a minute, over the default of 120 per key).
    settings = {"ASSISTANT__RATE_LIMIT_PER_MINUTE": "600", "LIMITS__API_PER_MINUTE": "1200"}
    inst = Installation.create(
        mode, pg_url=args.pg_url, redis_url=args.redis_url, settings=settings
    )
    try:
        print(
            f"[{mode}] Einrichten (Schema, Demo-Kommune, Training, Wissensbasis) …", file=sys.stderr
        )
        inst.set_up()
        port = free_port()
        if mode == "server":
            inst.serve(port, workers=args.web_workers)
            for n in range(args.job_workers):
                inst.start(f"worker-{n}", "worker")
        else:
            inst.serve(port, workers=1)
        print(f"[{mode}] Aufwärmen …", file=sys.stderr)
        asyncio.run(warm_up(f"http://127.0.0.1:{port}", inst.api_key, args))
        db = Database(inst.database_url)
        load_before = load_average()
        print(f"[{mode}] Last für {args.duration:g} s …", file=sys.stderr)
        ask, ingest, accepted, seconds = asyncio.run(
            run_load(f"http://127.0.0.1:{port}", inst.api_key, reports, args)
        )
        load_after = load_average()
        print(
            f"[{mode}] Warte, bis alle {len(accepted)} Eingänge vorgeprüft sind …", file=sys.stderr
        )
        complete, drain_s, backlog = drain(db, accepted, args.drain_timeout)
        result = outcome(db, accepted)
        db.dispose()
        crashed = [p.name for p in inst.processes if p.proc.poll() is not None]
        errors = sum(ask.errors.values()) + sum(ingest.errors.values())
        logs = str(inst.keep_logs()) if errors or crashed or result["lost_items"] else None
        return {
            "mode": mode,
            "processes": (
                f"{args.web_workers} Webprozesse + {args.job_workers} Worker, PostgreSQL + Redis"
                if mode == "server"
                else "1 Prozess (Web + Worker-Threads), SQLite"
            ),
            "duration_s": round(seconds, 1),
            "asks": len(ask.latencies),
            "ask_p50_s": _round(percentile(ask.latencies, 50)),
            "ask_p95_s": _round(percentile(ask.latencies, 95)),
            "ask_p99_s": _round(percentile(ask.latencies, 99)),
            "ingested": len(accepted),
            "ingest_rate_per_s": round(len(accepted) / seconds, 2) if seconds else None,
            "ingest_p50_s": _round(percentile(ingest.latencies, 50)),
            "ingest_p95_s": _round(percentile(ingest.latencies, 95)),
            "ingest_p99_s": _round(percentile(ingest.latencies, 99)),
            "errors": errors,
            "error_kinds": {"ask": dict(ask.errors), "ingest": dict(ingest.errors)},
            "error_examples": ask.examples + ingest.examples,
            "backlog_at_end_of_load": backlog,
            "drain_complete": complete,
            "drain_s": round(drain_s, 1),
            **result,
            "crashed_processes": crashed,
            "logs": logs,
            "load_average_before": load_before,
            "load_average_after": load_after,
        }
    finally:
        inst.remove()


COMPARED = [
    ("ask_p50_s", "Frage p50 (s)"),
    ("ask_p95_s", "Frage p95 (s)"),
    ("ask_p99_s", "Frage p99 (s)"),
    ("asks", "Fragen beantwortet"),
    ("ingest_p50_s", "Einlieferung p50 (s)"),
    ("ingest_p95_s", "Einlieferung p95 (s)"),
    ("ingest_p99_s", "Einlieferung p99 (s)"),
    ("ingested", "Eingänge angenommen"),
    ("triage_items_per_s", "Vorprüfung Eingänge/s"),
    ("triage_delay_p50_s", "Speichern→Vorprüfung p50 (s)"),
    ("triage_delay_p95_s", "Speichern→Vorprüfung p95 (s)"),
    ("backlog_at_end_of_load", "Rückstand bei Lastende"),
    ("drain_s", "Abarbeiten danach (s)"),
    ("errors", "Fehler"),
    ("lost_items", "Verlorene Eingänge"),
    ("triaged_twice", "Doppelt vorgeprüft"),
    ("audit_chain_ok", "Prüfprotokoll intakt"),
]


def ratio(a: Any, b: Any) -> str:
    if isinstance(a, bool) or not isinstance(a, int | float) or not isinstance(b, int | float):
        return ""
    return f"{a / b:.2f}" if b else ""


def print_table(server: dict[str, Any], embedded: dict[str, Any] | None) -> None:
    print(f"{'':32} {'Server':>12} {'Eingebettet':>12} {'Verhältnis':>10}")
    for key, label in COMPARED:
        emb = embedded.get(key) if embedded else None
        print(f"{label:32} {server.get(key)!s:>12} {emb!s:>12} {ratio(server.get(key), emb):>10}")
    for result in filter(None, [server, embedded]):
        print(f"{result['mode']}: {result['processes']}; Last {result['load_average_before']} → "
              f"{result['load_average_after']}")  # fmt: skip
        if result["error_examples"]:
            print("  Fehler:", *result["error_examples"], sep="\n    ")
        if result["crashed_processes"]:
            print("  Abgestürzt:", ", ".join(result["crashed_processes"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--duration", type=float, default=300.0, help="Sekunden Last je Betriebsart"
    )
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0, help="Eingänge je Sekunde")
    parser.add_argument("--think", type=float, default=2.0, help="Sekunden zwischen zwei Fragen")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--job-workers", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=1800.0)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data/inbox/konstanz_maengelmelder_2020-2022.csv"),
    )
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--only", choices=["server", "embedded"], help="nur eine Betriebsart")
    parser.add_argument("--json", action="store_true", help="Ergebnis als JSON ausgeben")
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"Daten nicht gefunden: {args.data} (Ordner ../shared/data).")
    reports = read_reports(args.data, int(args.duration * args.rate) + 1)

    results = {}
    for mode in ("server", "embedded"):
        if args.only in (None, mode):
            try:
                results[mode] = measure(mode, reports, args)
            except SystemExit as exc:  # a mode that could not run is reported, not hidden
                results[mode] = {"mode": mode, "failed": str(exc), "errors": 1}
                print(f"[{mode}] gescheitert: {exc}", file=sys.stderr)
            print(json.dumps(results[mode], ensure_ascii=False), file=sys.stderr)
    if args.json or any(r.get("failed") for r in results.values()):
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        first = results.get("server") or results["embedded"]
        print_table(first, results.get("embedded") if "server" in results else None)
    failed = any(
        r.get("failed") or r["errors"] or r["lost_items"] or r["triaged_twice"]
        for r in results.values()
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
