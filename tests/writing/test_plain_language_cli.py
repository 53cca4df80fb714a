"""`rathaus text leichte-sprache pruefen|umschreiben` and `rathaus eval plain-language`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rathaus.cli import app

runner = CliRunner()


def test_pruefen_from_stdin_as_json():
    result = runner.invoke(
        app, ["text", "leichte-sprache", "pruefen", "-", "--json"], input="Das kostet sieben Euro."
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"] == {"zahlwort": 1}
    assert "flesch_amstad" in data["readability"]


def test_pruefen_file_as_text(tmp_path):
    path = tmp_path / "brief.txt"
    path.write_text("Der Antrag wird geprüft. Wir helfen Ihnen.", encoding="utf-8")
    result = runner.invoke(app, ["text", "leichte-sprache", "pruefen", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 Sätze" in result.output and "[Passiv]" in result.output


def test_missing_file_and_empty_text_are_german_errors(tmp_path):
    result = runner.invoke(app, ["text", "leichte-sprache", "pruefen", str(tmp_path / "x.txt")])
    assert result.exit_code == 1
    assert "gibt es nicht" in result.output
    result = runner.invoke(app, ["text", "leichte-sprache", "pruefen", "-"], input="  ")
    assert result.exit_code == 1 and "leer" in result.output


def test_umschreiben_without_model(monkeypatch):
    monkeypatch.setenv("RATHAUS_LLM__BACKEND", "none")
    monkeypatch.setenv("RATHAUS_MODE", "demo")
    result = runner.invoke(app, ["text", "leichte-sprache", "umschreiben", "-"], input="Ein Satz.")
    assert result.exit_code == 1
    assert "kein Sprachmodell eingerichtet" in result.output


def test_eval_with_missing_data_is_a_german_error(tmp_path):
    result = runner.invoke(app, ["eval", "plain-language", "--data", str(tmp_path / "fehlt.csv")])
    assert result.exit_code == 1
    assert "gibt es nicht" in result.output
