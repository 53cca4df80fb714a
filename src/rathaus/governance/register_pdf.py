"""The KI-Register as a PDF (fpdf2 with DejaVu Sans, so umlauts, „“, § and → render)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from rathaus.core.errors import RathausError
from rathaus.governance.register import Entry, Register


def _fonts() -> tuple[Path, Path]:
    from rathaus.writing.minutes_export import FONT_DIRS

    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    raise RathausError(
        "Für den PDF-Export des KI-Registers fehlt die Schrift DejaVu Sans. Bitte das Paket "
        "„fonts-dejavu-core“ installieren oder als JSON exportieren (--format json)."
    )


def _date(iso: str | None) -> str:
    if not iso:
        return "–"
    return dt.datetime.fromisoformat(iso).strftime("%d.%m.%Y")


def to_pdf(register: Register) -> bytes:
    """One overview table, then one section per function."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    regular, bold = _fonts()
    tenant = register.tenant["name"] if register.tenant else "alle Kommunen dieser Installation"
    head = f"KI-Register – {tenant}"

    class RegisterPdf(FPDF):
        def header(self) -> None:
            self.set_font("DejaVu", "", 8)
            self.set_text_color(90, 90, 90)
            self.cell(0, 5, head, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_text_color(0, 0, 0)
            self.ln(3)

        def footer(self) -> None:
            self.set_y(-14)
            self.set_font("DejaVu", "", 8)
            self.cell(0, 8, f"Seite {self.page_no()} von {{nb}}", align="C")

    pdf = RegisterPdf(format="A4")
    pdf.set_title(head)
    pdf.set_author(tenant)
    pdf.set_creator(f"Rathaus {register.rathaus_version}")
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.alias_nb_pages()
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def text(value: str, size: float = 10, style: str = "", gap: float = 1.5) -> None:
        pdf.set_font("DejaVu", style, size)
        pdf.multi_cell(width, size * 0.5, value, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(gap)

    def labelled(label: str, value: str) -> None:
        text(label, 9, "B", 0.3)
        text(value or "–", 9, "", 1.5)

    text(head, 16, "B", 2)
    text(
        f"Stand: {_date(register.generated_at)} · Rathaus {register.rathaus_version} · "
        f"{len(register.entries)} Funktionen",
        9,
    )
    text(
        "Das Register beschreibt jede KI-Funktion von Rathaus mit Zweck, Modell und Version, "
        "Risikoklasse nach der KI-Verordnung (Verordnung (EU) 2024/1689) mit Begründung, "
        "Rechtsgrundlage, Verantwortung, menschlicher Aufsicht und gemessener Qualität. Es wird "
        "aus dem Programmcode, der Konfiguration und den gespeicherten Messläufen erzeugt.",
        9,
        "",
        3,
    )
    _overview(pdf, register, width)
    for entry in register.entries:
        pdf.add_page()
        _entry(pdf, entry, text, labelled)
    return bytes(pdf.output())


def _overview(pdf: Any, register: Register, width: float) -> None:
    with pdf.table(
        col_widths=(44, 18, 26, 12),
        width=width,
        text_align="LEFT",
        line_height=4.5,
        first_row_as_headings=True,
    ) as table:
        pdf.set_font("DejaVu", "", 8)
        row = table.row()
        for label in ("Funktion", "Bereich", "Risikoklasse", "Status"):
            row.cell(label)
        for entry in register.entries:
            row = table.row()
            row.cell(entry.name)
            row.cell(entry.area)
            row.cell(entry.risk.label)
            row.cell("aktiv" if entry.active else "nicht eingerichtet")


def _entry(pdf: Any, entry: Entry, text: Any, labelled: Any) -> None:
    text(entry.name, 13, "B", 0.5)
    text(f"{entry.area} · {entry.status} · Schlüssel {entry.key}", 8, "", 2.5)
    labelled("Zweck", entry.purpose)
    labelled("Verfahren", entry.method)
    text("Modelle und Versionen", 9, "B", 0.3)
    for m in entry.models:
        where = entry.server_label(m)
        parts = [f"{where}: {m.name}" if where else m.name]
        if m.version:
            parts.append(m.version)
        if m.file:
            parts.append(f"Datei {m.file}")
        parts.append(m.location_label)
        if m.license:
            parts.append(f"Lizenz {m.license}")
        if not m.active:
            parts.append("nicht aktiv")
        text("• " + ", ".join(parts) + (f". {m.note}" if m.note else ""), 9, "", 0.3)
        if m.sha256:
            text(f"  SHA-256 {m.sha256}", 7, "", 0.3)
        if where and m.source:
            text(f"  Quelle: {m.source}", 7, "", 0.3)  # tells the route's servers apart
    pdf.ln(1.2)
    labelled(f"Risikoklasse: {entry.risk.label}", entry.risk.reasoning)
    labelled("Rechtsgrundlage", f"{entry.legal_basis}. {entry.legal_basis_note}")
    labelled("Verantwortlich", entry.owner)
    text("Menschliche Aufsicht", 9, "B", 0.3)
    for measure in entry.oversight:
        text(f"• {measure}", 9, "", 0.3)
    pdf.ln(1.2)
    labelled("Verwendete Daten", "; ".join(entry.data))
    text("Gemessene Qualität", 9, "B", 0.3)
    if not entry.quality:
        text(entry.quality_note, 9, "", 0.3)
    for q in entry.quality:
        if q.status != "gemessen":
            text(f"• {q.title}: noch nicht gemessen (Befehl: {q.command})", 9, "", 0.3)
            continue
        numbers = "; ".join(f"{m.label} {m.display}" for m in q.metrics) or "keine Kennzahlen"
        text(f"• {q.title}, gemessen am {_date(q.measured_at)}: {numbers}", 9, "", 0.3)
        text(f"  Daten: {q.data} · Befehl: {q.command}", 7, "", 0.3)
    pdf.ln(1.2)
    labelled("Im Code", ", ".join(entry.code))
