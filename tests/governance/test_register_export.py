"""``rathaus register export`` as JSON and PDF, and its German errors."""

from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from rathaus.cli import app
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.governance.eval_store import save_run
from rathaus.governance.register import build_register, load_catalogue
from rathaus.governance.register_pdf import to_pdf
from tests.factories import build_tenant

runner = CliRunner()


@pytest.fixture
def configured(db: Database, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RATHAUS_MODE", "demo")
    monkeypatch.setenv("RATHAUS_DATABASE_URL", db.url)
    with db.session() as session:
        build_tenant(session, "alpha", name="Gemeinde Übersee")
    save_run(
        db,
        name="bookings",
        metrics={"recall": 0.9412, "flags_per_1000": 12.5},
        data="oxford.csv.gz",
        command="rathaus eval bookings",
    )
    return db


def _pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def test_pdf_renders_german_text_and_every_function():
    register = build_register(load_settings(mode="demo"))
    content = to_pdf(register)
    assert content.startswith(b"%PDF")
    text = _pdf_text(content)
    assert "KI-Register" in text
    for entry in register.entries:
        assert entry.name.split(":")[0][:25] in text, entry.name
    for word in ("Bürgerassistent", "Übersetzung", "Straßennetz", "§ 41 Abs. 2 VwVfG"):
        assert word in text
    assert "Begrenztes Risiko – Transparenzpflicht nach Art. 50" in text


def test_export_json_with_tenant(configured, tmp_path):
    out = tmp_path / "register.json"
    result = runner.invoke(
        app, ["register", "export", "--format", "json", "--ausgabe", str(out), "--mandant", "alpha"]
    )
    assert result.exit_code == 0, result.output
    assert f"KI-Register mit {len(load_catalogue())} Funktionen nach {out}" in result.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["tenant"]["name"] == "Gemeinde Übersee"
    bookings = next(f for f in data["functions"] if f["key"] == "lagebild.buchungen")
    quality = bookings["quality"][0]
    assert quality["status"] == "gemessen" and quality["data"] == "oxford.csv.gz"
    assert quality["metrics"][0]["display"] == "94,1 %"
    assert "Landesdatenschutzgesetz Baden-Württemberg" in bookings["legal_basis"]


def test_export_pdf_without_tenant(configured, tmp_path):
    out = tmp_path / "register.pdf"
    result = runner.invoke(app, ["register", "export", "--format", "pdf", "--ausgabe", str(out)])
    assert result.exit_code == 0, result.output
    text = _pdf_text(out.read_bytes())
    assert "alle Kommunen dieser Installation" in text
    assert "Trefferquote 94,1 %" in text
    assert "noch nicht gemessen" in text and "rathaus eval forecast" in text


def test_unknown_format_is_a_german_error_with_exit_2(configured, tmp_path):
    out = tmp_path / "register.xml"
    result = runner.invoke(app, ["register", "export", "--format", "xml", "--ausgabe", str(out)])
    assert result.exit_code == 2
    assert "Unbekanntes Format „xml“" in result.stderr and "json, pdf" in result.stderr
    assert not out.exists()


def test_unknown_tenant_and_bad_target(configured, tmp_path):
    out = tmp_path / "r.json"
    result = runner.invoke(
        app, ["register", "export", "--ausgabe", str(out), "--mandant", "gibtsnicht"]
    )
    assert result.exit_code == 1 and "gibtsnicht" in result.output and not out.exists()
    result = runner.invoke(
        app, ["register", "export", "--ausgabe", str(tmp_path / "no" / "r.json")]
    )
    assert result.exit_code == 2 and "existiert nicht" in result.stderr
    result = runner.invoke(app, ["register", "export", "--ausgabe", str(tmp_path)])
    assert result.exit_code == 2 and "Ordner" in result.stderr


def test_export_without_database_is_a_german_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RATHAUS_MODE", "demo")
    monkeypatch.setenv("RATHAUS_DATABASE_URL", f"sqlite:///{tmp_path / 'leer.db'}")
    result = runner.invoke(app, ["register", "export", "--ausgabe", str(tmp_path / "r.json")])
    assert result.exit_code != 0
    assert "rathaus db upgrade" in result.output
    assert not (tmp_path / "r.json").exists()
