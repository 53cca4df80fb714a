"""Stored ``rathaus eval`` runs: saving, the newest per measurement, and the CLI hook."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rathaus.cli import app
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.errors import DatabaseUnavailableError
from rathaus.governance import eval_store
from rathaus.governance.eval_store import latest_runs, save_run
from tests.factories import build_tenant

DEPLAIN = (
    Path(__file__).resolve().parents[3] / "shared/data/simplification/deplain_web_sent_open.csv"
)


def test_newest_run_per_measurement_and_tenant_scope(db: Database):
    with db.session() as session:
        tenant_id = build_tenant(session, "alpha").tenant.id
    save_run(
        db, name="forecast", metrics={"mase": 0.9}, data="a.csv", command="rathaus eval forecast"
    )
    newer = save_run(db, name="forecast", metrics={"mase": 0.8}, data="b.csv", command="x")
    save_run(db, name="bookings", metrics={"recall": 0.7}, data="c.csv", command="y")
    own = save_run(
        db, name="winter", metrics={"ratio": 1.1}, data="d", command="z", tenant_id=tenant_id
    )
    with db.session() as session:
        runs = latest_runs(session)
        assert set(runs) == {"forecast", "bookings"}  # a tenant's run is not global
        assert runs["forecast"].id == newer.id and runs["forecast"].metrics == {"mase": 0.8}
        assert runs["forecast"].data == "b.csv" and runs["forecast"].version
        scoped = latest_runs(session, tenant_id=tenant_id)
        assert scoped["winter"].id == own.id and set(scoped) == {"forecast", "bookings", "winter"}


def test_results_are_made_json_safe(db: Database):
    metrics = {
        "share": np.float64(0.5),
        "count": np.int64(3),
        "nan": float("nan"),
        "kinds": {"b", "a"},
        "pairs": (1, 2),
        "long": list(range(500)),
        "path": Path("x/y.csv"),
        7: "int key",
    }
    run = save_run(db, name="x", metrics=metrics, data=Path("x/y.csv"), command="c")
    with db.session() as session:
        stored = latest_runs(session)["x"].metrics
    assert stored["share"] == 0.5 and stored["count"] == 3 and stored["nan"] is None
    assert stored["kinds"] == ["a", "b"] and stored["pairs"] == [1, 2]
    assert len(stored["long"]) == eval_store.MAX_LIST_ITEMS
    assert stored["path"] == "x/y.csv" and stored["7"] == "int key"
    assert run.data == "x/y.csv"


def test_existing_database_never_creates_a_sqlite_file(tmp_path):
    settings = load_settings(mode="demo", data_dir=tmp_path / "leer")
    with pytest.raises(DatabaseUnavailableError, match="rathaus db upgrade"):
        eval_store.existing_database(settings)
    assert not (tmp_path / "leer").exists()


def test_existing_database_refuses_an_unmigrated_file(tmp_path):
    Database(f"sqlite:///{tmp_path / 'rathaus.db'}").ping()  # an empty SQLite file
    settings = load_settings(mode="demo", data_dir=tmp_path)
    with pytest.raises(DatabaseUnavailableError, match="nicht aktuell"):
        eval_store.existing_database(settings)


def _small_deplain(tmp_path: Path, rows: int = 30) -> Path:
    with DEPLAIN.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        head = [next(reader) for _ in range(rows + 1)]
    path = tmp_path / "deplain_klein.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(head)
    return path


@pytest.mark.skipif(not DEPLAIN.is_file(), reason="shared DEplain data not present")
def test_eval_command_stores_its_result(db: Database, tmp_path, monkeypatch):
    data = _small_deplain(tmp_path)
    monkeypatch.setenv("RATHAUS_DATABASE_URL", db.url)
    result = CliRunner().invoke(app, ["eval", "plain-language", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)  # the output is unchanged: JSON only
    assert "KI-Register" not in result.output
    with db.session() as session:
        run = latest_runs(session)["plain-language"]
    assert run.metrics["pairwise"] == printed["pairwise"] and run.metrics["pairs"] == 30
    assert run.data == str(data)
    assert run.command == f"rathaus eval plain-language --data {data} --json"


@pytest.mark.skipif(not DEPLAIN.is_file(), reason="shared DEplain data not present")
def test_eval_command_without_database_prints_a_note_and_succeeds(tmp_path, monkeypatch):
    data = _small_deplain(tmp_path)
    monkeypatch.setenv("RATHAUS_DATA_DIR", str(tmp_path / "leer"))
    monkeypatch.delenv("RATHAUS_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["eval", "plain-language", "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "30 Satzpaare" in result.stdout
    assert "nicht für das KI-Register gespeichert" in result.stderr
    assert "rathaus db upgrade" in result.stderr
    assert not (tmp_path / "leer").exists()
