"""What a summary is made of: an uploaded file, the documents and messages of a case (with the
access check), or the files of a council paper, each as :class:`~rathaus.writing.sections.Part`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from rathaus.core import case_service
from rathaus.core.errors import NotFoundError
from rathaus.core.models import Case, Document, Message, User
from rathaus.writing.sections import Part
from rathaus.writing.summarize import SummaryError

TEXT_TYPES = ("text/plain", "application/pdf")
ACCEPTED = "Text (.txt), PDF oder DOCX"


def text_of_file(data: bytes, filename: str) -> tuple[str, list[str]]:
    """The text of an uploaded file (plain text, PDF or DOCX) read by the Posteingang's
    extractors, and their German warnings; their German error becomes a :class:`SummaryError`."""
    from rathaus.inbox.documents import DOCX_TYPE, detect_media_type, extract

    media_type = detect_media_type(data) if data.strip() else "text/plain"
    if data.strip() and media_type not in (*TEXT_TYPES, DOCX_TYPE):
        raise SummaryError(
            f"„{filename}“ ist keine Text-, PDF- oder DOCX-Datei. Zusammenfassen lassen sich "
            f"{ACCEPTED}; bitte die Datei in eines dieser Formate umwandeln."
        )
    result = extract(data, filename)
    if result.error:
        raise SummaryError(result.error)
    return result.text.replace("\f", "\n\n"), list(result.warnings)


def _when(at: dt.datetime | None) -> str:
    return at.strftime("%d.%m.%Y") if at else ""


def case_parts(session: Session, *, user: User, case_id: int) -> tuple[Case, list[Part], list[str]]:
    """The case (only if ``user`` may open it), its documents and messages as parts in date
    order, and notes on documents without text. A case the user may not see is 'not found'."""
    case = case_service.get(session, user=user, case_id=case_id)
    return case, *_parts_of(session, case)


def _parts_of(session: Session, case: Case) -> tuple[list[Part], list[str]]:
    items: list[tuple[dt.datetime, int, Part]] = []
    notes: list[str] = []
    documents = session.scalars(select(Document).where(Document.case_id == case.id)).all()
    for d in documents:
        if not (d.extracted_text or "").strip():
            notes.append(
                f"Dokument „{d.filename}“ hat keinen lesbaren Text "
                f"({d.extraction_status}) und fehlt in der Zusammenfassung."
            )
        items.append(
            (
                d.created_at,
                0,
                Part(
                    key=f"dokument-{d.id}",
                    title=f"Dokument „{d.filename}“ vom {_when(d.created_at)}",
                    text=(d.extracted_text or "").replace("\f", "\n\n"),
                    url=f"/vorgaenge/{case.id}/dokumente/{d.id}",
                    date=d.created_at.isoformat() if d.created_at else None,
                    kind="document",
                ),
            )
        )
    messages = session.scalars(select(Message).where(Message.case_id == case.id)).all()
    for m in messages:
        what = "Eingang" if m.direction == "in" else "Antwort"
        subject = f" „{m.subject}“" if m.subject else ""
        items.append(
            (
                m.created_at,
                1,
                Part(
                    key=f"nachricht-{m.id}",
                    title=f"{what}{subject} vom {_when(m.created_at)}",
                    text=m.body or "",
                    url=f"/vorgaenge/{case.id}#nachricht-{m.id}",
                    date=m.created_at.isoformat() if m.created_at else None,
                    kind="message",
                ),
            )
        )
    items.sort(key=lambda t: (t[0] or dt.datetime.min, t[1]))
    return [p for _, _, p in items], notes


def case_for_cli(
    session: Session, *, tenant_id: int, key: str
) -> tuple[Case, list[Part], list[str]]:
    """For the command line (operators, no user): a case of the tenant by id or reference."""
    condition = Case.reference == key.strip()
    if key.strip().isdigit():
        condition = or_(condition, Case.id == int(key))
    case = session.scalar(select(Case).where(Case.tenant_id == tenant_id, condition))
    if case is None:
        raise NotFoundError(
            f"Vorgang „{key}“ wurde nicht gefunden. Bitte Aktenzeichen oder Nummer prüfen."
        )
    return case, *_parts_of(session, case)


def paper_parts(paper: dict[str, Any]) -> list[Part]:
    """A council paper (OParl record with extracted file texts) as one part per file."""
    files: Sequence[dict[str, Any]] = paper.get("files") or []
    return [
        Part(
            key=f"datei-{i + 1}",
            title=str(f.get("file_name") or f"Datei {i + 1}")[:200],
            text=(f.get("text") or "").replace("\f", "\n\n"),
            url=f.get("file_id"),
            date=paper.get("date"),
            kind="file",
        )
        for i, f in enumerate(files)
    ]
