"""Letters in the DIN 5008 layout (Form B): the municipality writes, the citizen receives.

A :class:`Letter` is built from a template and a case (:func:`letter_from_case`) or from typed
fields (:func:`letter_from_fields`) and written as PDF (fpdf2 with DejaVu for umlauts and €) or
DOCX (python-docx). Positions of Form B, in mm from the top left corner of an A4 page:
letterhead 0–45, address field 20/45 (85 × 45: 17.7 mm Zusatz- und Vermerkzone with the
Rücksendeangabe, then 27.3 mm Anschriftzone), information block 125/50, fold marks at 105 and
210, punch mark at 148.5, text between 25 and 190.

The sender (:class:`SenderInfo`) is always the tenant and its unit; the recipient
(:attr:`Letter.recipient`) always comes from the citizen's side of the case. They are separate
types so that they cannot be swapped by accident.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

from rathaus.core.errors import RathausError
from rathaus.core.models import Case, OrgUnit, Tenant, TextTemplate, User
from rathaus.writing.bank import check_line, footer_for
from rathaus.writing.templates import (
    Rendered,
    gap,
    german_date,
    render_text,
    salutation,
    sender_of,
    values_for_case,
)

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_REGULAR = FONT_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"

# Form B geometry (mm)
PAGE_W, PAGE_H = 210.0, 297.0
LEFT, RIGHT = 25.0, 20.0
ADDRESS_X, ADDRESS_Y, ADDRESS_W, ADDRESS_H = 20.0, 45.0, 85.0, 45.0
ADDRESS_ZONE_Y = ADDRESS_Y + 17.7  # Anschriftzone starts below the Zusatz- und Vermerkzone
INFO_X, INFO_Y, INFO_W = 125.0, 50.0, 75.0
SUBJECT_Y = 98.46
FOLD_MARKS = (105.0, 210.0)
PUNCH_MARK = 148.5
FOOTER_H = 22.0
MAX_ADDRESS_LINES = 6


@dataclass(frozen=True)
class SenderInfo:
    """The writing municipality (and its unit): letterhead, Rücksendeangabe, footer."""

    name: str
    unit: str = ""
    street: str = ""
    postal_code: str = ""
    city: str = ""
    phone: str = ""
    email: str = ""
    website: str = ""
    opening_hours: str = ""
    bank: str = ""

    @classmethod
    def of(cls, tenant: Tenant, unit: OrgUnit | None = None, *, bank: str = "") -> SenderInfo:
        return cls(
            name=tenant.name,
            unit=unit.name if unit else "",
            street=tenant.street,
            postal_code=tenant.postal_code,
            city=tenant.city,
            phone=(unit.phone if unit else "") or tenant.phone,
            email=(unit.email if unit else "") or tenant.email,
            website=tenant.website,
            opening_hours=unit.opening_hours if unit else "",
            bank=bank,
        )

    @property
    def place(self) -> str:
        return f"{self.postal_code} {self.city}".strip()

    @property
    def return_line(self) -> str:
        """The Rücksendeangabe: one short line above the recipient."""
        return " · ".join(p for p in (self.name, self.street, self.place) if p)


@dataclass
class Letter:
    """Everything a DIN 5008 letter shows; ``gaps`` lists what is still missing."""

    sender: SenderInfo
    recipient: list[str]
    subject: str
    salutation: str
    body: str
    date: dt.date
    our_reference: str = ""
    your_reference: str = ""
    your_message_date: str = ""
    contact_name: str = ""
    contact_phone: str = ""
    contact_email: str = ""
    closing: str = "Mit freundlichen Grüßen"
    signature: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def info_rows(self) -> list[tuple[str, str]]:
        rows = [
            ("Ihr Zeichen", self.your_reference),
            ("Ihre Nachricht vom", self.your_message_date),
            ("Unser Zeichen", self.our_reference),
            ("Ansprechpartner/in", self.contact_name),
            ("Telefon", self.contact_phone),
            ("E-Mail", self.contact_email),
        ]
        return [(k, v) for k, v in rows if v] + [("Datum", german_date(self.date))]

    def footer_lines(self) -> list[str]:
        s = self.sender
        first = " · ".join(p for p in (s.name, s.street, s.place) if p)
        second = " · ".join(
            p
            for p in (
                f"Telefon {s.phone}" if s.phone else "",
                s.email,
                s.website,
            )
            if p
        )
        third = f"Öffnungszeiten: {s.opening_hours}" if s.opening_hours else ""
        # A line of its own: institute, IBAN and BIC do not fit beside the opening hours.
        fourth = f"Bankverbindung: {s.bank}" if s.bank else ""
        return [line for line in (first, second, third, fourth) if line]

    def plain_text(self) -> str:
        """The letter as plain text (for previews and the JSON API)."""
        parts = [
            self.sender.return_line,
            "",
            *self.recipient,
            "",
            *(f"{k}: {v}" for k, v in self.info_rows()),
            "",
            self.subject,
            "",
            f"{self.salutation},",
            "",
            self.body,
            "",
            self.closing,
            "",
            *self.signature,
        ]
        return "\n".join(parts).strip() + "\n"


class LetterInputError(RathausError):
    """The letter cannot be built from what was given."""

    exit_code = 2
    http_status = 422


def _recipient_lines(name: str, address: str) -> list[str]:
    lines = [name.strip()] if name.strip() else []
    for part in address.replace("\r", "").replace("\n", ",").split(","):
        if part.strip():
            lines.append(part.strip())
    return lines[:MAX_ADDRESS_LINES]


def _apply(
    template_subject: str, template_body: str, values: dict[str, str]
) -> tuple[Rendered, Rendered]:
    return render_text(template_subject, values), render_text(template_body, values)


def letter_from_case(
    case: Case,
    tenant: Tenant,
    template: TextTemplate,
    *,
    user: User | None = None,
    today: dt.date | None = None,
    recipient_name: str | None = None,
    recipient_address: str | None = None,
    your_reference: str = "",
    bank: str = "",
) -> Letter:
    """A letter from ``template`` filled with the fields of ``case``.

    The recipient is the citizen who wrote (name and address from the triage, or as given); the
    sender is ``tenant`` with the case's unit. ``bank`` replaces the tenant's stored bank
    details in the footer for this letter (an IBAN in it must be valid).
    """
    values = values_for_case(case, tenant, user=user, today=today)
    citizen = sender_of(case)
    name = recipient_name if recipient_name is not None else citizen["name"]
    address = recipient_address if recipient_address is not None else citizen["address"]
    if recipient_name is not None:
        values["name"] = recipient_name
        values["anrede"] = salutation(recipient_name)
    return _build(
        values,
        template.subject or "{{betreff}}",
        template.body,
        SenderInfo.of(tenant, case.org_unit, bank=footer_for(tenant, check_line(bank))),
        _recipient_lines(name, address),
        today=today,
        user=user,
        your_reference=your_reference,
    )


def letter_from_fields(
    tenant: Tenant,
    *,
    subject: str,
    body: str,
    values: dict[str, str],
    recipient_name: str,
    recipient_address: str,
    unit: OrgUnit | None = None,
    user: User | None = None,
    today: dt.date | None = None,
    your_reference: str = "",
    bank: str = "",
) -> Letter:
    """A letter from typed fields; ``values`` fills the placeholders of subject and body."""
    today = today or dt.date.today()
    filled = {
        "datum": german_date(today),
        "kommune": tenant.name,
        "amt": unit.name if unit else "",
        "amt_telefon": (unit.phone if unit else "") or tenant.phone,
        "amt_email": (unit.email if unit else "") or tenant.email,
        "oeffnungszeiten": unit.opening_hours if unit else "",
        "name": recipient_name.strip(),
        "anrede": salutation(recipient_name),
        "sachbearbeitung": (user.display_name or user.username) if user else "",
    }
    filled.update({k: v for k, v in values.items() if v})
    return _build(
        filled,
        subject,
        body,
        SenderInfo.of(tenant, unit, bank=footer_for(tenant, check_line(bank))),
        _recipient_lines(recipient_name, recipient_address),
        today=today,
        user=user,
        your_reference=your_reference,
    )


def _build(
    values: dict[str, str],
    subject: str,
    body: str,
    sender: SenderInfo,
    recipient: list[str],
    *,
    today: dt.date | None,
    user: User | None,
    your_reference: str,
) -> Letter:
    if not body.strip():
        raise LetterInputError("Der Brief hat keinen Text. Bitte einen Textbaustein wählen.")
    subj, text = _apply(subject, body, values)
    gaps = list(dict.fromkeys(subj.missing + text.missing))
    unknown = list(dict.fromkeys(subj.unknown + text.unknown))
    if not recipient:
        recipient = [gap("Empfänger")]
        gaps.append("Empfänger")
    elif len(recipient) < 2:
        recipient = [*recipient, gap("Anschrift")]
        gaps.append("Anschrift")
    contact = (user.display_name or user.username) if user else ""
    return Letter(
        sender=sender,
        recipient=recipient,
        subject=subj.text.strip() or gap("betreff"),
        salutation=(values.get("anrede") or "Sehr geehrte Damen und Herren").strip(),
        body=text.text.strip("\n"),
        date=today or dt.date.today(),
        our_reference=values.get("aktenzeichen", ""),
        your_reference=your_reference,
        your_message_date=values.get("eingang", ""),
        contact_name=contact,
        contact_phone=sender.phone,
        contact_email=(user.email if user and user.email else "") or sender.email,
        signature=[p for p in (contact, sender.unit) if p] or [sender.name],
        gaps=gaps,
        unknown=unknown,
    )


# -- PDF ---------------------------------------------------------------------------------------


def _fonts_present() -> None:
    if not FONT_REGULAR.is_file() or not FONT_BOLD.is_file():
        raise RathausError(
            f"Die Schrift DejaVu Sans fehlt ({FONT_REGULAR}). Bitte das Debian-Paket "
            "fonts-dejavu-core installieren."
        )


def to_pdf(letter: Letter) -> bytes:
    """The letter as a PDF in DIN 5008 Form B."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    _fonts_present()

    class _Pdf(FPDF):
        def footer(self) -> None:
            self.set_font("DejaVu", "", 7)
            self.set_text_color(80, 80, 80)
            self.set_y(-FOOTER_H + 4)
            lines = letter.footer_lines()
            for line in lines:
                self.set_x(LEFT)
                self.cell(PAGE_W - LEFT - RIGHT, 3.4, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_font("DejaVu", "", 8)
            self.set_text_color(0, 0, 0)
            self.set_xy(LEFT, PAGE_H - FOOTER_H - 2)
            self.cell(
                PAGE_W - LEFT - RIGHT,
                4,
                f"Seite {self.page_no()} von {self.str_alias_nb_pages}",
                align="R",
            )

    pdf = _Pdf(orientation="P", unit="mm", format="A4")
    pdf.str_alias_nb_pages = "{rh_seiten}"
    pdf.set_title(letter.subject)
    pdf.set_author(letter.sender.name)
    pdf.set_creator("Rathaus")
    pdf.add_font("DejaVu", "", str(FONT_REGULAR))
    pdf.add_font("DejaVu", "B", str(FONT_BOLD))
    pdf.set_margins(LEFT, 20, RIGHT)
    pdf.set_auto_page_break(True, margin=FOOTER_H + 6)
    pdf.add_page()
    width = PAGE_W - LEFT - RIGHT

    # Fold and punch marks (first page only; the left edge of the sheet).
    pdf.set_line_width(0.2)
    for y in FOLD_MARKS:
        pdf.line(3, y, 8, y)
    pdf.line(3, PUNCH_MARK, 10, PUNCH_MARK)

    # Letterhead
    pdf.set_xy(LEFT, 15)
    pdf.set_font("DejaVu", "B", 16)
    pdf.cell(width, 8, letter.sender.name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if letter.sender.unit:
        pdf.set_font("DejaVu", "", 11)
        pdf.cell(width, 6, letter.sender.unit, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    # Address field: Rücksendeangabe at the foot of the Zusatz- und Vermerkzone, then recipient.
    pdf.set_font("DejaVu", "", 7)
    pdf.set_xy(ADDRESS_X + 5, ADDRESS_ZONE_Y - 5)
    pdf.cell(ADDRESS_W - 5, 4, _fit(pdf, letter.sender.return_line, ADDRESS_W - 5))
    pdf.line(ADDRESS_X + 5, ADDRESS_ZONE_Y - 1, ADDRESS_X + ADDRESS_W, ADDRESS_ZONE_Y - 1)
    pdf.set_font("DejaVu", "", 10)
    y = ADDRESS_ZONE_Y + 1
    for line in letter.recipient[:MAX_ADDRESS_LINES]:
        pdf.set_xy(ADDRESS_X + 5, y)
        pdf.cell(ADDRESS_W - 5, 4.4, _fit(pdf, line, ADDRESS_W - 5))
        y += 4.4

    # Information block
    y = INFO_Y
    for label, value in letter.info_rows():
        pdf.set_xy(INFO_X, y)
        pdf.set_font("DejaVu", "", 7)
        pdf.cell(INFO_W - RIGHT + 15, 3.2, label)
        pdf.set_xy(INFO_X, y + 3.2)
        pdf.set_font("DejaVu", "", 9)
        pdf.cell(PAGE_W - RIGHT - INFO_X, 4.2, _fit(pdf, value, PAGE_W - RIGHT - INFO_X))
        y += 8

    # Betreff (bold, no label), Anrede, text, Gruß, signature.
    pdf.set_xy(LEFT, max(SUBJECT_Y, y + 4))
    pdf.set_font("DejaVu", "B", 11)
    pdf.multi_cell(width, 5.5, letter.subject, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(5)
    pdf.set_font("DejaVu", "", 11)
    pdf.multi_cell(width, 5.5, f"{letter.salutation},", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(5)
    for paragraph in letter.body.split("\n\n"):
        pdf.multi_cell(width, 5.5, paragraph.strip(), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(3)
    pdf.ln(2)
    pdf.multi_cell(width, 5.5, letter.closing, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(10)
    for line in letter.signature:
        pdf.multi_cell(width, 5.5, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def _fit(pdf: object, text: str, width: float) -> str:
    """``text`` shortened with "…" to fit ``width`` mm in the current font."""
    measure = pdf.get_string_width  # type: ignore[attr-defined]
    if measure(text) <= width:
        return text
    while text and measure(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


# -- DOCX --------------------------------------------------------------------------------------


def _field(paragraph, instruction: str) -> None:  # type: ignore[no-untyped-def]
    """Append a Word field (PAGE, NUMPAGES) that Word fills when it lays out the document."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    run = paragraph.add_run()
    begin = OxmlElement("w:fldChar")
    begin.set(qn("w:fldCharType"), "begin")
    instr = OxmlElement("w:instrText")
    instr.set(qn("xml:space"), "preserve")
    instr.text = f" {instruction} "
    separate = OxmlElement("w:fldChar")
    separate.set(qn("w:fldCharType"), "separate")
    shown = OxmlElement("w:t")
    shown.text = "1"
    end = OxmlElement("w:fldChar")
    end.set(qn("w:fldCharType"), "end")
    for element in (begin, instr, separate, shown, end):
        run._r.append(element)


# Marks at the left edge of the sheet, as in the PDF: x from MARK_X, fold marks MARK_LEN long,
# the punch mark PUNCH_LEN; 1 mm = 36,000 EMU (the unit of DrawingML positions).
MARK_X, MARK_LEN, PUNCH_LEN, MARK_LINE_MM = 3.0, 5.0, 7.0, 0.2
EMU_PER_MM = 36_000
_NS_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_NS_WP = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
_NS_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_NS_WPS = "http://schemas.microsoft.com/office/word/2010/wordprocessingShape"


def docx_marks() -> list[tuple[str, float, float]]:
    """(name, y, length) in mm of the marks on the first page: fold marks and punch mark."""
    folds = [(f"Falzmarke {i}", y, MARK_LEN) for i, y in enumerate(FOLD_MARKS, start=1)]
    return [*folds, ("Lochmarke", PUNCH_MARK, PUNCH_LEN)]


def _mark_run(name: str, y_mm: float, length_mm: float, shape_id: int):  # type: ignore[no-untyped-def]
    """A run holding a horizontal line anchored to the page (not to the text): a DrawingML
    shape at ``y_mm`` from the top edge, from MARK_X to MARK_X + ``length_mm``, behind the text.
    Word and LibreOffice place it exactly there, whatever the header holds."""
    from docx.oxml import parse_xml

    x, y = round(MARK_X * EMU_PER_MM), round(y_mm * EMU_PER_MM)
    cx, width = round(length_mm * EMU_PER_MM), round(MARK_LINE_MM * EMU_PER_MM)
    return parse_xml(
        f'<w:r xmlns:w="{_NS_W}" xmlns:wp="{_NS_WP}" xmlns:a="{_NS_A}" xmlns:wps="{_NS_WPS}">'
        "<w:drawing>"
        '<wp:anchor distT="0" distB="0" distL="0" distR="0" simplePos="0" '
        f'relativeHeight="{shape_id}" behindDoc="1" locked="1" layoutInCell="1" '
        'allowOverlap="1">'
        '<wp:simplePos x="0" y="0"/>'
        f'<wp:positionH relativeFrom="page"><wp:posOffset>{x}</wp:posOffset></wp:positionH>'
        f'<wp:positionV relativeFrom="page"><wp:posOffset>{y}</wp:posOffset></wp:positionV>'
        f'<wp:extent cx="{cx}" cy="0"/>'
        '<wp:effectExtent l="0" t="0" r="0" b="0"/>'
        "<wp:wrapNone/>"
        f'<wp:docPr id="{shape_id}" name="{name}"/>'
        "<wp:cNvGraphicFramePr/>"
        f'<a:graphic><a:graphicData uri="{_NS_WPS}">'
        "<wps:wsp><wps:cNvCnPr/><wps:spPr>"
        f'<a:xfrm><a:off x="0" y="0"/><a:ext cx="{cx}" cy="0"/></a:xfrm>'
        '<a:prstGeom prst="line"><a:avLst/></a:prstGeom>'
        f'<a:ln w="{width}"><a:solidFill><a:srgbClr val="000000"/></a:solidFill></a:ln>'
        "</wps:spPr><wps:bodyPr/></wps:wsp>"
        "</a:graphicData></a:graphic>"
        "</wp:anchor></w:drawing></w:r>"
    )


def _letterhead(header, letter: Letter, *, marks: bool) -> None:  # type: ignore[no-untyped-def]
    from docx.shared import Pt

    paragraph = header.paragraphs[0]
    run = paragraph.add_run(letter.sender.name)
    run.bold = True
    run.font.size = Pt(16)
    if letter.sender.unit:
        paragraph.add_run("\n" + letter.sender.unit).font.size = Pt(11)
    if marks:
        for shape_id, (name, y, length) in enumerate(docx_marks(), start=9001):
            paragraph._p.append(_mark_run(name, y, length, shape_id))


def _footer(footer, letter: Letter) -> None:  # type: ignore[no-untyped-def]
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    first = footer.paragraphs[0]
    for i, line in enumerate(letter.footer_lines()):
        paragraph = first if i == 0 else footer.add_paragraph()
        paragraph.add_run(line).font.size = Pt(7)
    numbers = footer.add_paragraph()
    numbers.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    numbers.add_run("Seite ").font.size = Pt(8)
    _field(numbers, "PAGE")
    numbers.add_run(" von ").font.size = Pt(8)
    _field(numbers, "NUMPAGES")


def to_docx(letter: Letter) -> bytes:
    """The letter as a Word document: letterhead and footer, a table for the address field and
    the information block at the Form B positions, and on the first page the fold marks (105
    and 210 mm) and the punch mark (148.5 mm) as lines anchored to the page in its header."""
    from docx import Document
    from docx.enum.table import WD_ROW_HEIGHT_RULE
    from docx.shared import Mm, Pt

    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "Arial"
    style.font.size = Pt(11)
    style.paragraph_format.space_after = Pt(0)

    section = doc.sections[0]
    section.page_width, section.page_height = Mm(PAGE_W), Mm(PAGE_H)
    section.left_margin, section.right_margin = Mm(LEFT), Mm(RIGHT)
    section.top_margin = Mm(ADDRESS_Y)
    section.bottom_margin = Mm(FOOTER_H + 6)
    section.header_distance = Mm(12)
    section.footer_distance = Mm(8)
    # The marks belong on the first sheet only (as in the PDF): a header of its own.
    section.different_first_page_header_footer = True
    _letterhead(section.first_page_header, letter, marks=True)
    _letterhead(section.header, letter, marks=False)
    _footer(section.first_page_footer, letter)
    _footer(section.footer, letter)

    table = doc.add_table(rows=1, cols=2)
    table.autofit = False
    row = table.rows[0]
    row.height = Mm(ADDRESS_H)
    row.height_rule = WD_ROW_HEIGHT_RULE.EXACTLY
    address_cell, info_cell = row.cells
    address_cell.width = Mm(INFO_X - LEFT)
    info_cell.width = Mm(PAGE_W - RIGHT - INFO_X)

    back = address_cell.paragraphs[0]
    back_run = back.add_run(letter.sender.return_line)
    back_run.font.size = Pt(7)
    back_run.underline = True
    back.paragraph_format.space_before = Pt(30)
    back.paragraph_format.space_after = Pt(4)
    for line in letter.recipient:
        address_cell.add_paragraph(line)

    info = info_cell.paragraphs[0]
    info.paragraph_format.space_before = Pt(14)
    for i, (label, value) in enumerate(letter.info_rows()):
        paragraph = info if i == 0 else info_cell.add_paragraph()
        paragraph.add_run(label + "\n").font.size = Pt(7)
        paragraph.add_run(value).font.size = Pt(9)

    doc.add_paragraph()
    subject = doc.add_paragraph()
    subject.add_run(letter.subject).bold = True
    doc.add_paragraph()
    doc.add_paragraph(f"{letter.salutation},")
    doc.add_paragraph()
    for paragraph in letter.body.split("\n\n"):
        doc.add_paragraph(paragraph.strip()).paragraph_format.space_after = Pt(6)
    doc.add_paragraph()
    doc.add_paragraph(letter.closing)
    doc.add_paragraph()
    doc.add_paragraph()
    for line in letter.signature:
        doc.add_paragraph(line)

    props = doc.core_properties
    props.title = letter.subject
    props.author = letter.sender.name
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def filename(letter: Letter, extension: str) -> str:
    """A safe download name: ``Brief_MS-2026-000123.pdf``."""
    base = letter.our_reference or letter.date.isoformat()
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in base)
    return f"Brief_{safe}.{extension}"
