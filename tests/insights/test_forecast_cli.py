"""`rathaus lage prognose`, `rathaus lage zeitreihe-import` and `rathaus eval forecast`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rathaus.cli import app
from rathaus.core.models import InsightDataset
from rathaus.insights.tabular import TableError
from tests.factories import build_tenant
from tests.test_cli import in_process

BOSTON = (
    Path(__file__).resolve().parents[3] / "shared/data/forecasting/boston311_2015_subset.csv.gz"
)


def test_import_and_forecast_from_the_command_line(db, tmp_path):
    with db.session() as session:
        build_tenant(session, "alpha")
    lines = ["ID,Eingang,Abteilung"]
    start = dt.date(2025, 1, 6)
    for i in range(70):
        day = start + dt.timedelta(days=i)
        lines += [
            f"{i}-{k},{day:%d.%m.%Y} 09:{k:02d},Bürgeramt"
            for k in range(5 if day.weekday() < 5 else 1)
        ]
    source = tmp_path / "anliegen.csv"
    source.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    cli = in_process(tmp_path, db)
    result = cli(
        "lage",
        "zeitreihe-import",
        str(source),
        "--spalte-datum",
        "Eingang",
        "--spalte-reihe",
        "Abteilung",
        "--name",
        "Anliegen",
        "--json",
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["format"] == "einzeln" and info["series"]["Bürgeramt"]["total"] == 5 * 50 + 20
    key = f"datensatz:{info['id']}:Bürgeramt"
    listed = cli("lage", "zeitreihen")
    assert key in listed.output
    result = cli(
        "lage",
        "prognose",
        "--quelle",
        key,
        "--horizont",
        "3",
        "--aufloesung",
        "woche",
        "--faelle-je-personentag",
        "2.5",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["forecast"]) == 3 and data["forecast"][0]["start"] == "2025-03-17"
    assert abs(data["forecast"][0]["expected"] - 26) < 4
    assert data["staffing"][0]["person_days"] == pytest.approx(
        data["forecast"][0]["expected"] / 2.5, abs=0.1
    )
    text = cli("lage", "prognose", "--quelle", key)
    assert text.exit_code == 0 and "Rückblick: MASE" in text.output and "80 %" in text.output
    # A bad file: German message naming the row, nothing written.
    bad = tmp_path / "kaputt.csv"
    bad.write_text("Datum;Anzahl\n01.01.2025;1\n2025-13-01;2\n", encoding="utf-8")
    result = cli("lage", "zeitreihe-import", str(bad))
    assert isinstance(result.exception, TableError)
    assert "Zeile 3, Feld „Datum“" in result.exception.message
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(InsightDataset)) == 1
    short = cli("lage", "prognose", "--quelle", "alle")
    assert short.exit_code != 0 and "keine Vorgänge" in str(short.exception)


@pytest.mark.skipif(not BOSTON.is_file(), reason="shared Boston data not present")
def test_eval_forecast_on_a_small_slice():
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["eval", "forecast", "--data", str(BOSTON), "--abteilungen", "DISB,ANML,HS_Y", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["departments"]) == {"DISB", "ANML"}
    assert data["excluded"]["departments"] == {"HS_Y": pytest.approx(0.23, abs=0.01)}
    assert data["gaps"] == ["2015-07-22"]
    assert data["departments"]["DISB"]["test_days"] == 92
    assert 0 < data["mase"] < 1
    assert 0.6 < data["coverage_80"] < 0.95
    assert data["secondary_92_days_ahead"]["mase"] is not None


@pytest.mark.slow
@pytest.mark.skipif(not BOSTON.is_file(), reason="shared Boston data not present")
def test_eval_forecast_meets_the_targets():
    result = CliRunner().invoke(app, ["eval", "forecast", "--data", str(BOSTON), "--json"])
    data = json.loads(result.stdout)
    assert data["n_departments"] == 11
    assert data["mase"] <= 0.85
    assert 0.75 <= data["coverage_80"] <= 0.85
