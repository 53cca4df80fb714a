"""`rathaus wissen …` end to end: import a small folder twice (idempotent), list, re-index, and
refuse a file that does not parse, on SQLite and PostgreSQL with the bundled embedding model."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rathaus.assistant.importers import KnowledgeImportError
from rathaus.core.models import AuditEvent, Embedding, KnowledgeChunk, KnowledgeEntry
from tests.factories import build_tenant
from tests.test_cli import in_process, run


def _folder(tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "wissen"
    (root / "seiten").mkdir(parents=True)
    (root / "seiten" / "sperrmuell.md").write_text(
        "---\ngebuehren: zwei Abholungen frei\ntelefon: 01234 5678-700\n---\n"
        "# Sperrmüll anmelden\n\nMöbel holt die Abfallwirtschaft auf Anmeldung ab.\n",
        encoding="utf-8",
    )
    (root / "seiten" / "hund.html").write_text(
        "<h1>Hundesteuer</h1><p>Ein Hund ist binnen eines Monats anzumelden.</p>",
        encoding="utf-8",
    )
    (root / "leistungen.csv").write_text(
        "id;titel;text;gebuehren\n"
        "pass;Reisepass beantragen;Den Reisepass beantragen Sie im Bürgeramt.;70,00 €\n"
        ";;Zeile ohne Titel;\n",
        encoding="utf-8",
    )
    return root


def _counts(db) -> tuple[int, int, list[int]]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        entries = session.scalar(select(func.count(KnowledgeEntry.id)))
        chunk_ids = list(session.scalars(select(KnowledgeChunk.id).order_by(KnowledgeChunk.id)))
        vectors = session.scalar(
            select(func.count(Embedding.id)).where(Embedding.owner_type == "knowledge_chunk")
        )
    return entries or 0, vectors or 0, chunk_ids


@pytest.mark.model
def test_import_twice_list_and_reindex(db, tmp_path):
    with db.session() as session:
        build_tenant(session, "alpha")
    cli = in_process(tmp_path, db)
    root = _folder(tmp_path)

    first = cli("wissen", "import", str(root))
    assert first.exit_code == 0, first.output
    assert "3 Dateien, 4 Einträge gelesen" in first.output
    assert "Neu: 3 / aktualisiert: 0 / unverändert: 0 / fehlerhaft: 1" in first.output
    assert "leistungen.csv, Zeile 3: Der Eintrag hat keinen Titel." in first.output
    entries, vectors, chunk_ids = _counts(db)
    assert entries == 3 and len(chunk_ids) >= 3 and vectors == len(chunk_ids)

    again = cli("wissen", "import", str(root))
    assert again.exit_code == 0, again.output
    assert "Neu: 0 / aktualisiert: 0 / unverändert: 3 / fehlerhaft: 1" in again.output
    assert _counts(db) == (entries, vectors, chunk_ids)  # no duplicates, same passage ids

    page = root / "seiten" / "hund.html"
    page.write_text(page.read_text(encoding="utf-8") + "<p>Die Steuer: 108 Euro.</p>", "utf-8")
    changed = cli("wissen", "import", str(root), "--format", "html")
    assert "Neu: 0 / aktualisiert: 1 / unverändert: 0 / fehlerhaft: 0" in changed.output
    with db.session() as session:
        hund = session.scalar(
            select(KnowledgeEntry).where(KnowledgeEntry.external_id == "seiten/hund.html")
        )
        assert hund is not None and "108 Euro" in hund.body and hund.source == "html"
        assert (
            session.scalar(
                select(func.count(AuditEvent.id)).where(AuditEvent.kind == "knowledge_imported")
            )
            == 3
        )

    listed = cli("wissen", "liste")
    assert listed.exit_code == 0, listed.output
    assert "Sperrmüll anmelden" in listed.output and "Reisepass beantragen" in listed.output
    assert "nie" in listed.output and "3 Einträge." in listed.output
    only_csv = cli("wissen", "liste", "--quelle", "csv")
    assert "Reisepass" in only_csv.output and "Sperrmüll" not in only_csv.output

    rebuilt = cli("wissen", "neu-indexieren")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "3 Einträge von Stadt Alpha neu indexiert." in rebuilt.output
    entries, vectors, chunk_ids = _counts(db)
    assert entries == 3 and vectors == len(chunk_ids)


def test_broken_file_stops_the_import(db, tmp_path):
    with db.session() as session:
        build_tenant(session, "alpha")
    broken = tmp_path / "kaputt.json"
    broken.write_text('[{"title": "A" "text": "B"}]', encoding="utf-8")
    result = in_process(tmp_path, db)("wissen", "import", str(broken))
    assert result.exit_code == 1
    assert isinstance(result.exception, KnowledgeImportError)
    assert "„kaputt.json“ ist kein gültiges JSON: In Zeile 1" in result.exception.message
    with db.session() as session:
        assert session.scalar(select(func.count(KnowledgeEntry.id))) == 0


def test_broken_file_message_on_the_command_line(tmp_path):
    """As a real process: one German line on stderr, exit code 1, no traceback."""
    broken = tmp_path / "liste.csv"
    broken.write_text('title,text\nA,"B"C\n', encoding="utf-8")
    result = run(["wissen", "import", str(broken)], tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("Fehler: Die CSV-Datei „liste.csv“ ist ab Zeile 2 nicht lesbar")
    assert "Traceback" not in result.stderr
    unknown = run(["wissen", "import", str(broken), "--format", "docx"], tmp_path)
    assert unknown.returncode == 1 and "Das Format „docx“ ist unbekannt" in unknown.stderr


def test_demo_knowledge_is_loaded_once_and_keeps_edits(db, monkeypatch, capsys):
    """`rathaus demo` imports the demo pages only while Musterstadt has none, so the next
    `rathaus demo --if-empty` (every `make run`) does not undo the Redaktion's edits. The
    embedder is left out here (full text only); the demo test runs it with the real model."""
    from rathaus.ai import registry
    from rathaus.cli import demo_cmd

    with db.session() as session:
        build_tenant(session, "musterstadt")
    monkeypatch.setattr(registry, "get_embedder", lambda settings: None)
    demo_cmd._load_knowledge(db, None)
    assert "Wissensbasis: 13 Seiten importiert." in capsys.readouterr().out
    with db.session() as session:
        entry = session.scalar(
            select(KnowledgeEntry).where(KnowledgeEntry.external_id == "sperrmuell.md")
        )
        assert entry is not None and entry.source == "demo" and entry.chunks
        entry.title = "Sperrmüll (von der Redaktion geändert)"
    demo_cmd._load_knowledge(db, None)
    assert capsys.readouterr().out == ""
    with db.session() as session:
        assert session.scalar(select(func.count(KnowledgeEntry.id))) == 13
        assert (
            session.scalar(
                select(KnowledgeEntry.title).where(KnowledgeEntry.external_id == "sperrmuell.md")
            )
            == "Sperrmüll (von der Redaktion geändert)"
        )
