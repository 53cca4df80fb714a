"""Niederschrift export: the DOCX opens in python-docx and the PDF text (with umlauts, „“, €)
is extracted by pypdf; „Entwurf“ until the status is „fertig“."""

from __future__ import annotations

import datetime as dt
import io

import docx
import pypdf

from rathaus.writing.minutes import parse_agenda_text, structure
from rathaus.writing.minutes_export import MinutesDocument, filename, to_docx, to_pdf
from tests.writing.test_minutes_detect import AGENDA, _segments


def _document(status: str = "entwurf") -> MinutesDocument:
    result = structure(agenda=parse_agenda_text(AGENDA), transcript=_segments())
    result["items"][1]["decision_text"] = (
        "Der Gemeinderat beschließt die Sanierung für 2,4 Mio. € nach § 5 „Schulbau“."
    )
    return MinutesDocument(
        municipality="Stadt Süßen",
        title="Sitzung des Gemeinderats",
        body_name="Gemeinderat",
        meeting_date=dt.datetime(2025, 3, 4, 18, 0),
        location="Großer Sitzungssaal, Marktplatz 1",
        start="18:00 Uhr",
        status=status,
        attendance=result["attendance"],
        items=result["items"],
        notes=result["notes"],
    )


def test_docx_opens_and_holds_everything():
    data = to_docx(_document())
    document = docx.Document(io.BytesIO(data))
    text = "\n".join(p.text for p in document.paragraphs)
    cells = "\n".join(c.text for t in document.tables for r in t.rows for c in r.cells)
    assert "Niederschrift: Sitzung des Gemeinderats" in text
    assert "TOP 2 Sanierung der Grundschule am Lindenplatz" in text
    assert "2,4 Mio. € nach § 5 „Schulbau“" in text
    assert "Frau Öztürk" in text
    assert "14" in cells and "Bauamt" in cells and "Herr Schmidt" in cells
    assert "0:03:50" in cells  # the vote's source time
    header = "\n".join(p.text for p in document.sections[0].header.paragraphs)
    assert "Stadt Süßen" in header and "ENTWURF" in header


def test_pdf_text_with_umlauts_and_draft_mark():
    reader = pypdf.PdfReader(io.BytesIO(to_pdf(_document())))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Stadt Süßen" in text
    assert "Großer Sitzungssaal" in text
    assert "€" in text and "§ 5" in text and "Schulbau" in text
    assert "ENTWURF" in text and "Seite 1 von" in text
    assert "Öztürk" in text


def test_final_minutes_have_no_draft_mark():
    reader = pypdf.PdfReader(io.BytesIO(to_pdf(_document("fertig"))))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "ENTWURF" not in text and "Entwurf" not in text
    document = docx.Document(io.BytesIO(to_docx(_document("fertig"))))
    assert "ENTWURF" not in "\n".join(p.text for p in document.sections[0].header.paragraphs)


def test_download_filename_is_ascii():
    assert filename(_document(), "pdf") == "Niederschrift_Gemeinderat_2025-03-04.pdf"
