"""Letters in DIN 5008 Form B: PDF and DOCX, the municipality as sender, the citizen as recipient."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from docx import Document
from pypdf import PdfReader

from rathaus.core.models import TextTemplate
from rathaus.writing import letters
from tests.factories import build_tenant

MM = 72 / 25.4


def _letter(db, body: str = "wir bestätigen Ihren Antrag über 1.471,60 € vom {{eingang}}."):
    with db.session() as session:
        world = build_tenant(session, "alpha", name="Stadt Überlingen-Alpha")
        tenant = world.tenant
        tenant.street, tenant.postal_code, tenant.city = "Rathausplatz 1", "88662", "Überlingen"
        tenant.phone, tenant.email = "07551 99-0", "info@alpha.example"
        case = world.cases["BA"]
        case.fields = {
            "extracted": {
                "sender": {"name": "Jörg Müller", "address": "Lindenweg 3, 12345 Großdorf"}
            }
        }
        template = TextTemplate(
            tenant_id=tenant.id, name="Test", kind="brief", subject="Ihr Antrag – {{aktenzeichen}}",
            body=body,
        )  # fmt: skip
        return letters.letter_from_case(
            case, tenant, template, user=world.users["sb"], today=dt.date(2026, 11, 21),
            bank="IBAN DE02 1203 0000 0000 2020 51",
        ), case.reference  # fmt: skip


def _positions(pdf: bytes) -> list[tuple[str, float, float]]:
    """(text, x mm from left, y mm from top) of every text piece on page 1."""
    found = []

    def visit(text, cm, tm, _font, _size):  # type: ignore[no-untyped-def]
        if text.strip():
            x = tm[4] * cm[0] + cm[4]
            y = tm[5] * cm[3] + cm[5]
            found.append((text.strip(), x / MM, 297 - y / MM))

    PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    return found


def test_sender_and_recipient_are_never_swapped(db):
    letter, reference = _letter(db)
    assert letter.sender.name == "Stadt Überlingen-Alpha"
    assert letter.recipient == ["Jörg Müller", "Lindenweg 3", "12345 Großdorf"]
    assert "Jörg" not in letter.sender.return_line
    assert letter.our_reference == reference
    assert letter.subject == f"Ihr Antrag – {reference}"
    assert letter.salutation == "Guten Tag Jörg Müller"


def test_pdf_has_recipient_in_the_address_zone_date_reference_umlauts_and_euro(db):
    letter, reference = _letter(db)
    pdf = letters.to_pdf(letter)
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for wanted in ("21. November 2026", reference, "1.471,60 €", "Jörg Müller", "Großdorf",
                   "Überlingen", "Seite 1 von 1", "Mit freundlichen Grüßen"):  # fmt: skip
        assert wanted in text, wanted
    assert "Betreff:" not in text
    pieces = _positions(pdf)

    def where(fragment: str) -> tuple[float, float]:
        return next((x, y) for t, x, y in pieces if fragment in t)

    x, y = where("Jörg Müller")
    assert 20 <= x <= 105 and 62 <= y <= 90  # Anschriftzone of the Form B address field
    x, y = where("Großdorf")
    assert 20 <= x <= 105 and 62 <= y <= 90
    x, y = where("Rathausplatz 1 · 88662")  # Rücksendeangabe: above, still in the field
    assert 45 <= y <= 62.7
    x, y = where("21. November 2026")
    assert x >= 125  # information block
    x, y = where(f"Ihr Antrag – {reference}")
    assert y >= 98  # Betreff below the address field


def test_long_letters_number_their_pages(db):
    letter, _ = _letter(db, body="\n\n".join(["Ein Absatz mit Text. " * 12] * 14))
    reader = PdfReader(io.BytesIO(letters.to_pdf(letter)))
    assert len(reader.pages) >= 2
    assert "Seite 1 von " + str(len(reader.pages)) in reader.pages[0].extract_text()
    assert f"Seite 2 von {len(reader.pages)}" in reader.pages[1].extract_text()


def test_docx_reads_back_with_sender_recipient_and_info_block(db):
    letter, reference = _letter(db)
    doc = Document(io.BytesIO(letters.to_docx(letter)))
    address, info = doc.tables[0].rows[0].cells
    assert "Jörg Müller" in address.text and "12345 Großdorf" in address.text
    assert "Stadt Überlingen-Alpha · Rathausplatz 1" in address.text
    assert reference in info.text and "21. November 2026" in info.text
    body = "\n".join(p.text for p in doc.paragraphs)
    assert "1.471,60 €" in body
    header = "\n".join(p.text for p in doc.sections[0].header.paragraphs)
    assert "Stadt Überlingen-Alpha" in header and "Jörg" not in header
    footer = "\n".join(p.text for p in doc.sections[0].footer.paragraphs)
    assert "Bankverbindung: IBAN DE02" in footer
    bold = [r.text for p in doc.paragraphs for r in p.runs if r.bold]
    assert f"Ihr Antrag – {reference}" in bold


def test_missing_values_stay_visible(db):
    with db.session() as session:
        world = build_tenant(session, "alpha")
        letter = letters.letter_from_fields(
            world.tenant,
            subject="Frist",
            body="bitte bis zum {{frist}} antworten.",
            values={},
            recipient_name="",
            recipient_address="",
            today=dt.date(2026, 1, 5),
        )
    assert "[[frist fehlt]]" in letter.body
    assert letter.gaps == ["frist", "Empfänger"]
    assert letter.recipient == ["[[Empfänger fehlt]]"]


def test_empty_body_is_refused():
    from rathaus.core.models import Tenant

    with pytest.raises(letters.LetterInputError):
        letters.letter_from_fields(
            Tenant(name="X"), subject="", body=" ", values={}, recipient_name="A",
            recipient_address="B",
        )  # fmt: skip
