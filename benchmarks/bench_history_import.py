"""Benchmark: CSV import of historical cases (target: 10,000 rows well under 300 s on 2 cores).

Run::

    .venv/bin/python benchmarks/bench_history_import.py --rows 10000
    .venv/bin/python benchmarks/bench_history_import.py --rows 10000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

Generates realistic rows (German citizen requests over six years, eight departments, 85 % closed)
or, with ``--source konstanz``, repeats the Konstanz Mängelmelder export until ``--rows`` is
reached. Imports them into a fresh SQLite file (or a new tenant in the given database) and prints
JSON. As a baseline in the same run it imports a sample the straightforward way (ORM objects one
by one, ``next_reference`` per row) and reports the ratio.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

from rathaus.core.cases import STATUS_LABELS, next_reference, record_event
from rathaus.core.db import Database
from rathaus.core.migrate import upgrade
from rathaus.core.models import (
    Case,
    CaseStatus,
    Message,
    OrgUnit,
    OrgUnitKind,
    Tenant,
)
from rathaus.inbox import history_import

TARGET_S = 300.0
KONSTANZ = Path("../shared/data/inbox/konstanz_maengelmelder_2020-2022.csv")
UNITS = {
    "BA": ("Bürgeramt", ["Meldebescheinigung", "Personalausweis", "Wohnsitz ummelden"]),
    "OA": ("Ordnungsamt", ["Lärmbelästigung", "Falschparker", "Sondernutzung"]),
    "TBA": ("Tiefbauamt", ["Schlagloch", "Gehweg beschädigt", "Straßenlaterne defekt"]),
    "SA": ("Standesamt", ["Geburtsurkunde", "Eheschließung", "Sterbeurkunde"]),
    "KA": ("Kämmerei", ["Hundesteuer", "Grundsteuer", "Mahnung"]),
    "BAU": ("Bauamt", ["Bauantrag", "Bauvoranfrage", "Abstandsfläche"]),
    "GA": ("Grünflächenamt", ["Baum umgestürzt", "Hecke schneiden", "Spielplatz"]),
    "SOZ": ("Sozialamt", ["Wohngeld", "Grundsicherung", "Bildung und Teilhabe"]),
}
TEXTS = [
    "Sehr geehrte Damen und Herren,\n{topic}: {detail} Bitte um Rückmeldung bis {date}.",
    "{topic} in der {street} {number}. {detail}",
    "Hallo, ich wende mich wegen {topic} an Sie. {detail} Mit freundlichen Grüßen",
    "Betreff {topic}\n\n{detail} Vielen Dank für Ihre Mühe.",
]
DETAILS = [
    "Das Problem besteht seit mehreren Wochen.",
    "Meine Nachbarn sind ebenfalls betroffen.",
    "Ich habe bereits telefonisch nachgefragt, aber keine Antwort erhalten.",
    "Die Unterlagen reiche ich gerne nach.",
    "Es ist dringend, weil Kinder den Weg täglich nutzen.",
]
STREETS = ["Hauptstraße", "Bahnhofstraße", "Schillerweg", "Am Marktplatz", "Lindenallee"]
TYPES = ["Antrag", "Anfrage", "Beschwerde", "Meldung", "Widerspruch"]
HEADER = ["Nr", "Eingang", "Erledigt", "Amt", "Art", "Betreff", "Text"]
MAPPING = "text=Text,betreff=Betreff,amt=Amt,eingang=Eingang,erledigt=Erledigt,art=Art"
KONSTANZ_MAPPING = "text=Text,amt=Gruppe,eingang=Gemeldet-am,erledigt=Geprueft-am"


def synthetic_csv(rows: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    start = dt.datetime(2019, 1, 1, 7, 0)
    codes = list(UNITS)
    for n in range(rows):
        code = rng.choice(codes)
        topic = rng.choice(UNITS[code][1])
        received = start + dt.timedelta(minutes=rng.randrange(6 * 365 * 24 * 60))
        closed = (
            received + dt.timedelta(hours=rng.lognormvariate(3.5, 1.0))
            if rng.random() < 0.85
            else None
        )
        text = rng.choice(TEXTS).format(
            topic=topic,
            detail=" ".join(rng.sample(DETAILS, 2)),
            date=(received + dt.timedelta(days=14)).strftime("%d.%m.%Y"),
            street=rng.choice(STREETS),
            number=rng.randint(1, 120),
        )
        # Half of the rows name the unit by code, half by name; German and ISO dates mixed.
        unit = code if n % 2 else UNITS[code][0]
        fmt = "%d.%m.%Y %H:%M" if n % 3 else "%Y-%m-%d %H:%M:%S"
        writer.writerow(
            [
                n + 1,
                received.strftime(fmt),
                closed.strftime(fmt) if closed else "",
                unit,
                rng.choice(TYPES),
                f"{topic} ({n + 1})",
                text,
            ]
        )
    return out.getvalue().encode("utf-8")


def konstanz_csv(path: Path, rows: int) -> bytes:
    text = path.read_text(encoding="utf-8-sig")
    header, _, body = text.partition("\n")
    records = list(csv.reader(io.StringIO(body, newline="")))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(next(csv.reader([header])))
    for n in range(rows):
        writer.writerow(records[n % len(records)])
    return out.getvalue().encode("utf-8")


def make_tenant(db: Database) -> int:
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    with db.session() as session:
        tenant = Tenant(slug=slug, name="Benchmarkstadt", reference_prefix="BM")
        session.add(tenant)
        session.flush()
        for code, (name, _) in UNITS.items():
            session.add(OrgUnit(tenant_id=tenant.id, kind=OrgUnitKind.AMT, code=code, name=name))
        return tenant.id


def baseline(db: Database, tenant_id: int, data: bytes, mapping: str, rows: int) -> float:
    """The straightforward way: ORM objects one by one, an Aktenzeichen query per row."""
    text, _, _ = history_import.decode(data)
    delimiter = history_import.detect_delimiter(text)
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    header = [h.strip() for h in records[0]]
    cols = {k: header.index(v) for k, v in history_import.parse_mapping(mapping).items()}
    started = time.perf_counter()
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        units = {u.code: u for u in session.query(OrgUnit).filter_by(tenant_id=tenant_id)}
        units.update({u.name: u for u in list(units.values())})
        for n, values in enumerate(records[1 : rows + 1]):
            received = history_import.parse_date(values[cols["received"]])
            closed = history_import.parse_date(values[cols["closed"]])
            status = CaseStatus.ERLEDIGT if closed else CaseStatus.ZUGEWIESEN
            unit = units.get(" ".join(values[cols["unit"]].split()))
            case = Case(
                tenant_id=tenant_id,
                reference=next_reference(
                    session,
                    tenant_id=tenant_id,
                    prefix=tenant.reference_prefix,
                    year=received.year,
                ),
                subject=values[cols["text"]][:300],
                status=status,
                channel="import",
                org_unit_id=unit.id if unit else None,
                received_at=received,
                closed_at=closed,
            )
            session.add(case)
            session.flush()
            session.add(
                Message(
                    tenant_id=tenant_id,
                    case_id=case.id,
                    direction="in",
                    channel="import",
                    body=values[cols["text"]],
                    created_at=received,
                )
            )
            record_event(session, case, kind="created", activity="Eingang erfasst", actor=None)
            record_event(session, case, kind="status", activity=STATUS_LABELS[status], actor=None)
            session.flush()
            if n % 1000 == 999:
                session.commit()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--database-url", default=None, help="Standard: neue SQLite-Datei.")
    parser.add_argument("--source", choices=["synthetic", "konstanz"], default="synthetic")
    parser.add_argument("--batch-size", type=int, default=history_import.BATCH_SIZE)
    parser.add_argument("--baseline-rows", type=int, default=1000)
    parser.add_argument(
        "--data", type=Path, default=KONSTANZ, help="Konstanz-CSV (--source konstanz)."
    )
    args = parser.parse_args()

    if args.source == "konstanz":
        if not args.data.exists():
            sys.exit(f"Konstanz-Daten fehlen: {args.data}")
        data, mapping, create_units = konstanz_csv(args.data, args.rows), KONSTANZ_MAPPING, True
    else:
        data, mapping, create_units = synthetic_csv(args.rows), MAPPING, False
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(url)
        upgrade(db)
        tenant_id = make_tenant(db)
        with db.session() as session:
            tenant = session.get(Tenant, tenant_id)
            report = history_import.import_csv(
                session,
                tenant=tenant,
                data=data,
                mapping=history_import.parse_mapping(mapping),
                create_units=create_units,
                batch_size=args.batch_size,
            )
        started = time.perf_counter()
        with db.session() as session:
            tenant = session.get(Tenant, tenant_id)
            again = history_import.import_csv(
                session,
                tenant=tenant,
                data=data,
                mapping=history_import.parse_mapping(mapping),
                create_units=create_units,
            )
        reimport_s = time.perf_counter() - started
        sample = min(args.baseline_rows, args.rows)
        base_s = baseline(db, make_tenant(db), data, mapping, sample) if sample else 0.0
        db.dispose()
    rows_per_s = report.imported / report.seconds if report.seconds else 0.0
    base_rate = sample / base_s if base_s else 0.0
    print(
        json.dumps(
            {
                "benchmark": "history_import",
                "database": url.split(":", 1)[0].split("+", 1)[0],
                "source": args.source,
                "rows": report.rows,
                "imported": report.imported,
                "skipped": len(report.skipped),
                "seconds": round(report.seconds, 2),
                "rows_per_s": round(rows_per_s, 1),
                "target_s": TARGET_S,
                "within_target": report.seconds < TARGET_S,
                "reimport_seconds": round(reimport_s, 2),
                "reimport_duplicates": again.duplicates,
                "baseline_one_by_one": {
                    "rows": sample,
                    "rows_per_s": round(base_rate, 1),
                },
                "speedup_vs_baseline": round(rows_per_s / base_rate, 1) if base_rate else None,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
