"""`rathaus text zusammenfassen`, `zusammenfassen-vorgang` and `rathaus eval summaries`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rathaus.core.models import Document
from tests.factories import build_tenant
from tests.test_cli import in_process
from tests.writing.test_summarize import PAPERS, TOPICS, long_text

pytestmark = pytest.mark.model


def _cli(tmp_path: Path, db=None):  # type: ignore[no-untyped-def]
    """The CLI in this process without a language model (``db`` when a case is read)."""
    return in_process(tmp_path, db, RATHAUS_LLM__BACKEND="none")


def test_summarise_a_file_as_text_and_json(tmp_path: Path) -> None:
    source = tmp_path / "vorlage.txt"
    source.write_text(long_text(), encoding="utf-8")
    cli = _cli(tmp_path)
    result = cli("text", "zusammenfassen", str(source), "--saetze", "3")
    assert result.exit_code == 0, result.output
    assert "Abdeckung:" in result.output and "[Absatz " in result.output
    as_json = cli("text", "zusammenfassen", str(source), "--json", "--modus", "generiert")
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.output)
    assert body["mode"] == "extraktiv"  # no model configured: the fallback, with a note
    assert any("kein Sprachmodell" in n for n in body["notes"])
    assert all(s["supported"] for s in body["sentences"])


def test_empty_file_is_refused_in_german(tmp_path: Path) -> None:
    source = tmp_path / "leer.txt"
    source.write_text("", encoding="utf-8")
    result = _cli(tmp_path)("text", "zusammenfassen", str(source))
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
    result = _cli(tmp_path, db)("text", "zusammenfassen-vorgang", reference, "--kommune", "alpha")
    assert result.exit_code == 0, result.output
    assert reference in result.output and "antrag.txt" in result.output


@pytest.mark.skipif(not PAPERS.is_file(), reason=f"Karlsruher Ratsvorlagen fehlen ({PAPERS})")
def test_eval_summaries_on_a_few_papers(tmp_path: Path) -> None:
    result = _cli(tmp_path)("eval", "summaries", "--data", str(PAPERS), "--limit", "3", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["papers"] == 3 and body["supported_share"] == 1.0
    assert "Karlsruhe" in body["attribution"]
