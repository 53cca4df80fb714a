"""`rathaus wissen import --bearbeitet-von NAME`: who ran the import shows in the entry's
versions and in the audit log; without the option the operating-system user does, and "cli"
where none can be had. The import runs with the real embedding model (the session's shared
instance, so it is loaded once)."""

from __future__ import annotations

import getpass

import pytest
from sqlalchemy import select

from rathaus.core.models import AuditEvent, KnowledgeEntryVersion
from tests.factories import build_tenant
from tests.test_cli import in_process


@pytest.fixture
def cli(db, tmp_path, monkeypatch, embedder):  # type: ignore[no-untyped-def]
    from rathaus.ai import registry

    with db.session() as session:
        build_tenant(session, "alpha")
    monkeypatch.setattr(registry, "get_embedder", lambda settings: embedder)
    return in_process(tmp_path, db)


def _page(tmp_path, text: str):  # type: ignore[no-untyped-def]
    page = tmp_path / "hund.html"
    page.write_text(f"<h1>Hundesteuer</h1><p>{text}</p>", encoding="utf-8")
    return page


def _versions_and_actors(db) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        versions = list(
            session.scalars(
                select(KnowledgeEntryVersion.changed_by).order_by(KnowledgeEntryVersion.number)
            )
        )
        actors = list(
            session.scalars(
                select(AuditEvent.actor)
                .where(AuditEvent.kind == "knowledge_imported")
                .order_by(AuditEvent.id)
            )
        )
    return versions, actors


def test_named_person_in_versions_and_audit(cli, db, tmp_path):
    page = _page(tmp_path, "Ein Hund ist binnen eines Monats anzumelden.")
    assert cli("wissen", "import", str(page), "--bearbeitet-von", "Erika Muster").exit_code == 0
    _page(tmp_path, "Die Steuer beträgt 108 Euro im Jahr.")
    result = cli("wissen", "import", str(page), "--bearbeitet-von", "  Max   Mustermann ")
    assert "aktualisiert: 1" in result.output, result.output
    versions, actors = _versions_and_actors(db)
    assert versions == ["Import html (Max Mustermann)"]
    assert actors == ["cli:Erika Muster", "cli:Max Mustermann"]


def test_operating_system_user_by_default(cli, db, tmp_path):
    page = _page(tmp_path, "Ein Hund ist binnen eines Monats anzumelden.")
    assert cli("wissen", "import", str(page)).exit_code == 0
    _page(tmp_path, "Die Steuer beträgt 108 Euro im Jahr.")
    assert cli("wissen", "import", str(page)).exit_code == 0
    versions, actors = _versions_and_actors(db)
    user = getpass.getuser()
    assert versions == [f"Import html ({user})"]
    assert actors == [f"cli:{user}", f"cli:{user}"]


def test_cli_when_no_user_name_is_known(cli, db, tmp_path, monkeypatch):
    def no_user() -> str:
        raise OSError("kein Benutzer")

    monkeypatch.setattr(getpass, "getuser", no_user)
    page = _page(tmp_path, "Ein Hund ist binnen eines Monats anzumelden.")
    assert cli("wissen", "import", str(page)).exit_code == 0
    assert _versions_and_actors(db)[1] == ["cli:cli"]


def test_empty_name_is_refused(cli, db, tmp_path):
    page = _page(tmp_path, "Ein Hund ist binnen eines Monats anzumelden.")
    result = cli("wissen", "import", str(page), "--bearbeitet-von", "   ")
    assert result.exit_code == 2
    assert "Bitte einen Namen angeben." in result.output
    assert _versions_and_actors(db) == ([], [])
