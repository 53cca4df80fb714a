"""``rathaus lage prozess-import`` / ``prozess`` / ``prozess-export`` via Typer's CliRunner."""

from __future__ import annotations

import json

import pytest
import typer
from sqlalchemy import func, select

from rathaus.cli import lage_process
from rathaus.core.db import Database
from rathaus.core.models import ProcessEvent
from tests.factories import build_tenant
from tests.test_cli import in_process

LOG = (
    "Vorgang,Schritt,Wann,Wer\n"
    "1,Eingang,2024-01-01 08:00,Poststelle\n"
    "1,Prüfung,2024-01-01 10:00,Bauamt\n"
    "2,Eingang,2024-01-02 08:00,Poststelle\n"
    "2,Prüfung,2024-01-02 12:00,Bauamt\n"
)


@pytest.fixture
def cli(db: Database, tmp_path):  # type: ignore[no-untyped-def]
    with db.session() as session:
        build_tenant(session, "alpha")
    app = typer.Typer()
    lage_process.register(app, typer.Typer())
    return in_process(tmp_path, db, app=app, queue=None)


def test_import_analyse_and_export_ocel(cli, db, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "log.csv"
    path.write_text(LOG, encoding="utf-8")
    columns = ["--spalte", "case=Vorgang", "--spalte", "activity=Schritt"]
    columns += ["--spalte", "timestamp=Wann", "--spalte", "resource=Wer"]
    done = cli("prozess-import", str(path), *columns, "--json")
    assert done.exit_code == 0, done.output
    dataset_id = json.loads(done.output)["id"]
    text = cli("prozess", str(dataset_id))
    assert "2 Fälle, 4 Ereignisse" in text.output
    assert "Eingang → Prüfung: 2, 3,0 Std. / 3,8 Std." in text.output
    data = json.loads(cli("prozess", str(dataset_id), "--json").output)
    assert data["edges"][0]["median_s"] == 3 * 3600
    csv = cli("prozess", str(dataset_id), "--export", "uebergaenge").output
    assert csv.splitlines()[1].startswith("Eingang;Prüfung;2;2;3;")
    target = tmp_path / "out.jsonocel"
    exported = cli("prozess-export", str(dataset_id), "-o", str(target))
    assert exported.exit_code == 0 and "4 Ereignisse, 2 Objekte" in exported.output
    again = cli("prozess-import", str(target))
    assert again.exit_code == 0 and "4 Ereignisse, 2 Fälle" in again.output


def test_bad_input_is_a_german_error_and_writes_nothing(cli, db, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.csv"
    path.write_text(LOG + "3,Eingang,irgendwann,Poststelle\n", encoding="utf-8")
    columns = [
        "--spalte",
        "case=Vorgang",
        "--spalte",
        "activity=Schritt",
        "--spalte",
        "timestamp=Wann",
    ]
    failed = cli("prozess-import", str(path), *columns)
    assert failed.exit_code != 0 and "Zeile 6" in str(failed.exception)
    wrong = cli("prozess-import", str(path), "--spalte", "fall=Vorgang")
    assert "keine Spaltenzuordnung" in str(wrong.exception)
    with db.session() as session:
        assert session.scalar(select(func.count(ProcessEvent.id))) == 0
    assert "gibt es nicht" in str(cli("prozess", "42").exception)


def test_analysis_in_business_hours(cli, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "log.csv"
    path.write_text(LOG, encoding="utf-8")
    columns = ["--spalte", "case=Vorgang", "--spalte", "activity=Schritt"]
    done = cli("prozess-import", str(path), *columns, "--spalte", "timestamp=Wann", "--json")
    dataset_id = str(json.loads(done.output)["id"])
    # Times without a zone are UTC (09:00 → 11:00 and 09:00 → 13:00 in Berlin). 1 January is
    # a public holiday (no office time), 2 January a Tuesday: 4 office hours.
    text = cli("prozess", dataset_id, "--zeit", "arbeitszeit")
    assert text.exit_code == 0, text.output
    assert "Zeitbasis: Arbeitszeit: Mo–Fr 08:00–16:00 Uhr" in text.output
    assert "Eingang → Prüfung: 2, 2,0 Std. / 3,6 Std." in text.output
    short = cli("prozess", dataset_id, "--zeit", "arbeitszeit", "--von", "10:00", "--bis", "12:00")
    data = json.loads(cli("prozess", dataset_id, "--zeit", "arbeitszeit", "--json").output)
    assert data["time_basis"]["mode"] == "arbeitszeit"
    assert data["edges"][0]["median_s"] == 2 * 3600
    assert "Eingang → Prüfung: 2, 1,0 Std." in short.output  # 0 h and 10–12 h: 2 h
    csv = cli("prozess", dataset_id, "--zeit", "arbeitszeit", "--export", "uebergaenge").output
    assert "Wartezeit Median (Arbeitsstd.)" in csv.splitlines()[0]
    bad = cli("prozess", dataset_id, "--zeit", "arbeitszeit", "--von", "17:00")
    assert bad.exit_code != 0 and "Beginn muss vor dem Ende" in str(bad.exception)


def test_zeitzone_for_times_without_offset(cli, db: Database, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "log.csv"
    path.write_bytes(
        b"case;activity;timestamp\n"
        b"A-1;Eingang;2024-03-04 08:15:00\n"  # Monday, winter time (+01:00)
        b"A-1;Bescheid;2024-07-01 08:15:00\n"  # Monday, summer time (+02:00)
    )
    times = []
    for extra in ([], ["--zeitzone", "UTC"]):
        done = cli("prozess-import", str(path), *extra)
        assert done.exit_code == 0, done.output
        zone = extra[1] if extra else "Europe/Berlin"
        assert f"Hinweis: Alle Zeitpunkte ohne Zeitzone wurden als Uhrzeit in {zone}" in (
            done.output
        )
        dataset_id = done.output.split("Ereignisprotokoll ", 1)[1].split(":", 1)[0]
        exported = cli("prozess-export", dataset_id)
        times.append([e["time"] for e in json.loads(exported.output)["events"]])
    assert times == [
        ["2024-03-04T07:15:00Z", "2024-07-01T06:15:00Z"],
        ["2024-03-04T08:15:00Z", "2024-07-01T08:15:00Z"],
    ]
    failed = cli("prozess-import", str(path), "--zeitzone", "Berlin")
    assert failed.exit_code != 0 and "Die Zeitzone „Berlin“ ist unbekannt" in str(failed.exception)
    with db.session() as session:
        assert len(session.scalars(select(ProcessEvent.id)).all()) == 4  # the failed one wrote none
