"""`rathaus text zusammenfassen`, `zusammenfassen-vorgang` and `rathaus eval summaries`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rathaus.cli import app
from rathaus.core.models import Document
from tests.factories import build_tenant
from tests.writing.test_summarize import PAPERS, TOPICS, long_text

pytestmark = pytest.mark.model


def _env(tmp_path: Path, db=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {
        "RATHAUS_MODE": "demo",
        "RATHAUS_DATA_DIR": str(tmp_path / "data"),
        "RATHAUS_DEFAULT_TENANT": "alpha",
        "RATHAUS_QUEUE__BACKEND": "memory",
        "RATHAUS_LLM__BACKEND": "none",
    }
    if db is not None:
        env["RATHAUS_DATABASE_URL"] = db.url
    return env


def test_summarise_a_file_as_text_and_json(tmp_path: Path) -> None:
    source = tmp_path / "vorlage.txt"
    source.write_text(long_text(), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["text", "zusammenfassen", str(source), "--saetze", "3"],
                           env=_env(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Abdeckung:" in result.output and "[Absatz " in result.output
    as_json = runner.invoke(
        app, ["text", "zusammenfassen", str(source), "--json", "--modus", "generiert"],
        env=_env(tmp_path),
    )  # fmt: skip
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.output)
    assert body["mode"] == "extraktiv"  # no model configured: the fallback, with a note
    assert any("kein Sprachmodell" in n for n in body["notes"])
    assert all(s["supported"] for s in body["sentences"])


def test_empty_file_is_refused_in_german(tmp_path: Path) -> None:
    source = tmp_path / "leer.txt"
    source.write_text("", encoding="utf-8")
    result = CliRunner().invoke(app, ["text", "zusammenfassen", str(source)], env=_env(tmp_path))
    assert result.exit_code != 0
    assert "leer" in (result.output + str(result.exception))


def test_summarise_a_case_by_reference(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        world = build_tenant(session, "alpha")
        case = world.cases["BA"]
        session.add(
            Document(
                tenant_id=world.tenant.id,
                case_id=case.id,
                filename="antrag.txt",
                sha256="2" * 64,
                storage_path="x",
                extracted_text=TOPICS["Sachverhalt"],
            )
        )
        reference = case.reference
    result = CliRunner().invoke(
        app, ["text", "zusammenfassen-vorgang", reference, "--kommune", "alpha"],
        env=_env(tmp_path, db),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert reference in result.output and "antrag.txt" in result.output


@pytest.mark.skipif(not PAPERS.is_file(), reason=f"Karlsruher Ratsvorlagen fehlen ({PAPERS})")
def test_eval_summaries_on_a_few_papers(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["eval", "summaries", "--data", str(PAPERS), "--limit", "3", "--json"],
        env=_env(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["papers"] == 3 and body["supported_share"] == 1.0
    assert "Karlsruhe" in body["attribution"]
