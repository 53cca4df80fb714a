"""Niederschrift export as DOCX (python-docx) and PDF (fpdf2 with DejaVu fonts) in a plain
municipal layout: header, attendance, per agenda item summary, motions, vote table, decision,
action items and source times; page numbers and „Entwurf“ until the status is „fertig“."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rathaus.core.errors import RathausError
from rathaus.writing.minutes import format_time

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts/dejavu"),
)


@dataclass
class MinutesDocument:
    """Everything an export needs, independent of the database row."""

    municipality: str
    title: str
    body_name: str = ""
    meeting_date: dt.datetime | None = None
    location: str = ""
    start: str = ""
    end: str = ""
    status: str = "entwurf"
    attendance: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def draft(self) -> bool:
        return self.status != "fertig"


def document_of(row: Any, municipality: str) -> MinutesDocument:
    """A :class:`MinutesDocument` from a ``MeetingMinutes`` row."""
    result = row.result or {}
    items = result.get("items") or []
    first = next((i["start"] for i in items if i.get("start") is not None), None)
    last = next((i["end"] for i in reversed(items) if i.get("end") is not None), None)
    return MinutesDocument(
        municipality=municipality,
        title=row.title,
        body_name=row.body_name or "",
        meeting_date=row.meeting_date,
        location=row.location or "",
        start=row.meeting_date.strftime("%H:%M Uhr")
        if row.meeting_date and (row.meeting_date.hour or row.meeting_date.minute)
        else "",
        end=(f"Aufnahme {format_time(first)} bis {format_time(last)}" if last else ""),
        status=row.status,
        attendance=list(result.get("attendance") or row.attendance or []),
        items=list(items),
        notes=list(result.get("notes") or []),
    )


def _date(value: dt.datetime | None) -> str:
    return value.strftime("%d.%m.%Y") if value else ""


def _times(element: dict[str, Any]) -> str:
    start, end = element.get("start"), element.get("end")
    if start is None:
        return ""
    return (
        f"[{format_time(start)}–{format_time(end)}]"
        if end is not None
        else f"[{format_time(start)}]"
    )


def _header_rows(doc: MinutesDocument) -> list[tuple[str, str]]:
    rows = [
        ("Gremium", doc.body_name),
        ("Datum", _date(doc.meeting_date)),
        ("Ort", doc.location),
        ("Beginn", doc.start),
        ("Zeitraum der Aufnahme", doc.end),
        ("Status", "fertig" if not doc.draft else "Entwurf – nicht abgestimmt"),
    ]
    return [(k, v) for k, v in rows if v]


def _attendance_groups(doc: MinutesDocument) -> list[tuple[str, str]]:
    groups: dict[str, list[str]] = {}
    for row in doc.attendance:
        groups.setdefault(str(row.get("status") or "anwesend"), []).append(str(row.get("name")))
    return [(status.capitalize(), ", ".join(names)) for status, names in groups.items()]


def _item_title(item: dict[str, Any]) -> str:
    public = "" if item.get("public", True) else " (nicht öffentlich)"
    return f"TOP {item.get('number', '')} {item.get('name', '')}{public}".strip()


# -- DOCX --------------------------------------------------------------------------------------


def to_docx(doc: MinutesDocument) -> bytes:
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Pt, RGBColor

    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Arial"
    style.font.size = Pt(11)
    section = document.sections[0]

    header = section.header.paragraphs[0]
    header.text = f"{doc.municipality} – {doc.body_name or doc.title}"
    header.runs[0].font.size = Pt(9)
    if doc.draft:
        mark = section.header.add_paragraph("ENTWURF")
        mark.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        mark.runs[0].font.bold = True
        mark.runs[0].font.color.rgb = RGBColor(0xB0, 0x00, 0x00)

    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    footer.add_run(("Entwurf – " if doc.draft else "") + "Seite ")
    _field(footer.add_run(), "PAGE", OxmlElement, qn)
    footer.add_run(" von ")
    _field(footer.add_run(), "NUMPAGES", OxmlElement, qn)

    document.add_paragraph(doc.municipality).runs[0].font.size = Pt(10)
    document.add_heading(f"Niederschrift: {doc.title}", level=1)
    table = document.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for label, value in _header_rows(doc):
        cells = table.add_row().cells
        cells[0].text, cells[1].text = label, value
        cells[0].paragraphs[0].runs[0].font.bold = True

    if doc.attendance:
        document.add_heading("Anwesenheit", level=2)
        for label, names in _attendance_groups(doc):
            paragraph = document.add_paragraph()
            paragraph.add_run(f"{label}: ").bold = True
            paragraph.add_run(names)
    for note in doc.notes:
        document.add_paragraph(f"Hinweis: {note}").runs[0].italic = True

    for item in doc.items:
        document.add_heading(_item_title(item), level=2)
        if item.get("start") is not None:
            document.add_paragraph(f"Zeit in der Aufnahme: {_times(item)}").runs[0].italic = True
        summary = item.get("summary") or []
        if summary:
            document.add_heading("Beratung", level=3)
            for sentence in summary:
                document.add_paragraph(f"{sentence['text']} {_times(sentence)}".strip())
        if item.get("motions"):
            document.add_heading("Anträge", level=3)
            for motion in item["motions"]:
                who = f"{motion['by']}: " if motion.get("by") else ""
                document.add_paragraph(
                    f"{who}{motion['text']} {_times(motion)}".strip(), style="List Bullet"
                )
        if item.get("votes"):
            document.add_heading("Abstimmung", level=3)
            votes = document.add_table(rows=1, cols=5)
            votes.style = "Table Grid"
            for cell, label in zip(
                votes.rows[0].cells, ("Ja", "Nein", "Enthaltung", "Ergebnis", "Zeit"), strict=True
            ):
                cell.text = label
                cell.paragraphs[0].runs[0].font.bold = True
            for vote in item["votes"]:
                cells = votes.add_row().cells
                for cell, value in zip(cells, _vote_row(vote), strict=True):
                    cell.text = value
        if item.get("decision_text"):
            document.add_heading("Beschluss", level=3)
            document.add_paragraph(item["decision_text"])
        if item.get("actions"):
            document.add_heading("Aufgaben", level=3)
            actions = document.add_table(rows=1, cols=4)
            actions.style = "Table Grid"
            for cell, label in zip(
                actions.rows[0].cells, ("Zuständig", "Aufgabe", "Frist", "Zeit"), strict=True
            ):
                cell.text = label
                cell.paragraphs[0].runs[0].font.bold = True
            for action in item["actions"]:
                cells = actions.add_row().cells
                values = (action["owner"], action["task"], action.get("due", ""), _times(action))
                for cell, value in zip(cells, values, strict=True):
                    cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _field(run: Any, code: str, element: Any, qn: Any) -> None:
    """A Word field (PAGE, NUMPAGES) in a run: the page numbers in the footer."""
    begin = element("w:fldChar")
    begin.set(qn("w:fldCharType"), "begin")
    text = element("w:instrText")
    text.set(qn("xml:space"), "preserve")
    text.text = code
    end = element("w:fldChar")
    end.set(qn("w:fldCharType"), "end")
    for part in (begin, text, end):
        run._r.append(part)


def _vote_row(vote: dict[str, Any]) -> tuple[str, str, str, str, str]:
    def number(key: str) -> str:
        value = vote.get(key)
        return "" if value is None else str(value)

    how = (
        "einstimmig " if vote.get("unanimous") else "mehrheitlich " if vote.get("majority") else ""
    )
    outcome = (how + (vote.get("outcome") or "")).strip() or "—"
    return number("yes"), number("no"), number("abstain"), outcome, _times(vote)


# -- PDF ---------------------------------------------------------------------------------------


def _fonts() -> tuple[Path, Path]:
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    raise RathausError(
        "Für den PDF-Export fehlt die Schrift DejaVu Sans (Umlaute, „“, €, §). Bitte das Paket "
        "„fonts-dejavu-core“ installieren oder als DOCX exportieren."
    )


def to_pdf(doc: MinutesDocument) -> bytes:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    regular, bold = _fonts()
    draft = doc.draft
    running_head = f"{doc.municipality} – {doc.body_name or doc.title}"

    class Minutes(FPDF):
        def header(self) -> None:
            self.set_font("DejaVu", "", 8)
            self.set_text_color(90, 90, 90)
            self.cell(0, 5, running_head, new_x=XPos.LMARGIN, new_y=YPos.TOP)
            if draft:
                self.set_font("DejaVu", "B", 9)
                self.set_text_color(176, 0, 0)
                self.cell(0, 5, "ENTWURF", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            else:
                self.ln(5)
            self.set_text_color(0, 0, 0)
            self.ln(4)

        def footer(self) -> None:
            self.set_y(-14)
            self.set_font("DejaVu", "", 8)
            prefix = "Entwurf – " if draft else ""
            self.cell(0, 8, f"{prefix}Seite {self.page_no()} von {{nb}}", align="C")

    pdf = Minutes(format="A4")
    pdf.set_title(f"Niederschrift: {doc.title}")
    pdf.set_author(doc.municipality)
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    pdf.set_margins(25, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.alias_nb_pages()
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def text(value: str, size: float = 10, style: str = "", gap: float = 1.5) -> None:
        pdf.set_font("DejaVu", style, size)
        pdf.multi_cell(width, size * 0.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(gap)

    text(doc.municipality, 10)
    text(f"Niederschrift: {doc.title}", 15, "B", 3)
    for label, value in _header_rows(doc):
        pdf.set_font("DejaVu", "B", 10)
        pdf.cell(45, 6, label)
        pdf.set_font("DejaVu", "", 10)
        pdf.multi_cell(width - 45, 6, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    if doc.attendance:
        text("Anwesenheit", 12, "B")
        for label, names in _attendance_groups(doc):
            text(f"{label}: {names}", 10)
    for note in doc.notes:
        text(f"Hinweis: {note}", 9)

    for item in doc.items:
        pdf.ln(2)
        text(_item_title(item), 12, "B")
        if item.get("start") is not None:
            text(f"Zeit in der Aufnahme: {_times(item)}", 8)
        if item.get("summary"):
            text("Beratung", 10, "B", 0.5)
            for sentence in item["summary"]:
                text(f"{sentence['text']} {_times(sentence)}".strip(), 10, "", 0.5)
        if item.get("motions"):
            text("Anträge", 10, "B", 0.5)
            for motion in item["motions"]:
                who = f"{motion['by']}: " if motion.get("by") else ""
                text(f"• {who}{motion['text']} {_times(motion)}".strip(), 10, "", 0.5)
        if item.get("votes"):
            text("Abstimmung", 10, "B", 0.5)
            _pdf_table(
                pdf,
                ("Ja", "Nein", "Enthaltung", "Ergebnis", "Zeit"),
                [_vote_row(v) for v in item["votes"]],
                (0.12, 0.12, 0.16, 0.35, 0.25),
                width,
            )
        if item.get("decision_text"):
            text("Beschluss", 10, "B", 0.5)
            text(item["decision_text"], 10)
        if item.get("actions"):
            text("Aufgaben", 10, "B", 0.5)
            _pdf_table(
                pdf,
                ("Zuständig", "Aufgabe", "Frist", "Zeit"),
                [(a["owner"], a["task"], a.get("due", ""), _times(a)) for a in item["actions"]],
                (0.22, 0.43, 0.15, 0.2),
                width,
            )
    return bytes(pdf.output())


def _pdf_table(
    pdf: Any,
    head: tuple[str, ...],
    rows: list[tuple[str, ...]],
    shares: tuple[float, ...],
    width: float,
) -> None:
    with pdf.table(
        col_widths=tuple(int(s * 100) for s in shares),
        width=width,
        text_align="LEFT",
        line_height=5,
        first_row_as_headings=True,
    ) as table:
        pdf.set_font("DejaVu", "", 9)
        header = table.row()
        for label in head:
            header.cell(label)
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(str(value) if value else "—")
    pdf.ln(2)


def filename(doc: MinutesDocument, extension: str) -> str:
    """``Niederschrift_Gemeinderat_2025-03-04.docx`` – ASCII only, for download headers."""
    base = f"Niederschrift_{doc.body_name or doc.title}"
    if doc.meeting_date:
        base += f"_{doc.meeting_date:%Y-%m-%d}"
    table = str.maketrans(
        {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
    )
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in base.translate(table))
    safe = "".join(c for c in safe if c.isascii())
    return f"{safe[:80].strip('_') or 'Niederschrift'}.{extension}"
