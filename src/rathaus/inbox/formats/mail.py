"""E-mail (.eml): body text (plain preferred, HTML reduced to text) and attachments, tolerant of
broken MIME; attachments go back through ``extract`` so every format is handled the same way."""

from __future__ import annotations

import base64
import binascii
import logging
import quopri
import re
from collections.abc import Callable
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

from rathaus.inbox.formats.base import KEPT, Extraction, Limits
from rathaus.inbox.formats.text import decode_text, html_to_text, normalize_newlines

log = logging.getLogger(__name__)

# extract(data, filename, media_type, depth) for one attachment.
ExtractChild = Callable[[bytes, str, str | None, int], Extraction]

HEADERS = {"from": "From", "to": "To", "cc": "Cc", "subject": "Subject", "date": "Date",
           "message_id": "Message-ID"}  # fmt: skip


def read_email(
    data: bytes, result: Extraction, limits: Limits, depth: int, extract_child: ExtractChild
) -> None:
    try:
        message = BytesParser(policy=policy.default).parsebytes(data)
    except Exception:  # the parser is lenient; this only catches its rare internal errors
        log.info("e-mail could not be parsed", exc_info=True)
        result.error = (
            f"Die E-Mail-Datei ist beschädigt und kann nicht gelesen werden. {KEPT}; "
            "bitte die Nachricht erneut weiterleiten lassen."
        )
        return
    assert isinstance(message, EmailMessage)
    result.method = "email"
    for key, name in HEADERS.items():
        value = _header(message, name)
        if value:
            result.metadata[key] = value
    body = _body_part(message)
    # Content-* headers may sit on an inner part rather than on the message.
    language = next((v for part in _walk(message) if (v := _header(part, "Content-Language"))), "")
    result.language_hint = language.split("-")[0].lower()[:8] if language else None

    leaves: list[tuple[Message, Message | None]] = []
    _collect(message, None, leaves)
    body_group = next((parent for part, parent in leaves if part is body), None)

    texts: list[str] = []
    attachments: list[Message] = []
    for part, parent in leaves:
        if part is body:
            continue
        is_text = part.get_content_maintype() == "text"
        inline = _disposition(part) != "attachment" and not _filename(part)
        if is_text and inline:
            if parent is not None and parent is body_group and _is_alternative(parent):
                continue  # the same body in another format
            texts.append(_part_text(part, result))
            continue
        attachments.append(part)

    body_text = _part_text(body, result) if body is not None else ""
    subject = result.metadata.get("subject", "")
    combined = "\n\n".join(t for t in [body_text, *texts] if t.strip())
    result.text = (f"Betreff: {subject}\n\n" if subject else "") + combined
    if not combined.strip() and not attachments:
        result.warnings.append("Die E-Mail enthält keinen Text und keine Anhänge.")
    defects = _defect_count(message)
    if defects:
        result.warnings.append(
            f"Die E-Mail ist nicht standardgerecht aufgebaut ({defects} Formfehler); Text und "
            "Anhänge wurden so weit wie möglich gelesen. Bitte mit dem Original vergleichen."
        )
    _read_attachments(attachments, result, limits, depth, extract_child)


def _read_attachments(
    parts: list[Message],
    result: Extraction,
    limits: Limits,
    depth: int,
    extract_child: ExtractChild,
) -> None:
    for number, part in enumerate(parts, start=1):
        name = _filename(part) or f"anhang-{number}{_default_suffix(part)}"
        payload = _payload(part)
        declared = part.get_content_type()
        if number > limits.max_attachments or depth >= limits.max_depth:
            child = Extraction.empty_for(payload, name, declared)
            child.error = (
                f"Anhang nicht ausgewertet (mehr als {limits.max_attachments} Anhänge)."
                if number > limits.max_attachments
                else "Anhang nicht ausgewertet (zu tief verschachtelte weitergeleitete E-Mails)."
            ) + f" {KEPT}; bitte von Hand ansehen."
        else:
            child = extract_child(payload, name, declared, depth + 1)
        result.attachments.append(child)
    if len(parts) > limits.max_attachments:
        rest = len(parts) - limits.max_attachments
        result.warnings.append(
            f"Die E-Mail hat {len(parts)} Anhänge; ausgewertet wurden die ersten "
            f"{limits.max_attachments}. Die übrigen {rest} sind mit Name, Größe und Prüfsumme "
            "aufgeführt und bitte von Hand anzusehen."
        )


def _collect(
    part: Message, parent: Message | None, out: list[tuple[Message, Message | None]]
) -> None:
    """Leaf parts in order with their parent; an attached e-mail counts as one leaf."""
    if part.get_content_type() == "message/rfc822" and parent is not None:
        out.append((part, parent))
    elif part.is_multipart():
        payload = part.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                _collect(sub, part, out)
    else:
        out.append((part, parent))


def _body_part(message: EmailMessage) -> Message | None:
    try:
        return message.get_body(preferencelist=("plain", "html"))
    except Exception:
        log.info("no body found", exc_info=True)
        return None


def _is_alternative(part: Message) -> bool:
    return part.get_content_type() in ("multipart/alternative", "multipart/related")


def _part_text(part: Message, result: Extraction) -> str:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        raw = str(part.get_payload()).encode("utf-8", "replace")
    charset = part.get_content_charset()
    text, _codec, warnings = decode_text(raw, charset)
    if charset and warnings:
        warnings = [
            f"Die E-Mail gibt den Zeichensatz '{charset}' an, der nicht passt oder unbekannt ist. "
            + warnings[0]
        ]
    result.warnings.extend(w for w in warnings if w not in result.warnings)
    if part.get_content_subtype() == "html":
        return html_to_text(text)
    return normalize_newlines(text).strip()


def _payload(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822" or part.is_multipart():
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        if isinstance(inner, Message):
            encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
            if encoding in ("base64", "quoted-printable") and not inner.keys():
                # Not allowed for message/rfc822, but some mailers do it: undo the encoding.
                return _decode_transfer(str(inner.get_payload()), encoding)
            try:
                return inner.as_bytes(policy=policy.compat32)
            except Exception:
                return str(inner).encode("utf-8", "replace")
    try:
        raw = part.get_payload(decode=True)
    except Exception:
        raw = None
    if isinstance(raw, bytes):
        return raw
    return str(part.get_payload()).encode("utf-8", "replace")


def _decode_transfer(text: str, encoding: str) -> bytes:
    raw = text.encode("ascii", "replace")
    try:
        if encoding == "base64":
            return base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", raw) + b"==")
        return quopri.decodestring(raw)
    except (binascii.Error, ValueError):
        return raw


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    if not name:
        return None
    # A display name only: no directories, no control characters.
    name = re.split(r"[\\/]", str(name))[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return name[:200] or None


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _default_suffix(part: Message) -> str:
    return {"message/rfc822": ".eml", "text/plain": ".txt", "text/html": ".html",
            "application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}.get(
        part.get_content_type(), ".bin")  # fmt: skip


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
        return re.sub(r"\s+", " ", str(value)).strip() if value is not None else ""
    except Exception:  # a malformed header; keep going without it
        log.info("header %s unreadable", name, exc_info=True)
        return ""


def _walk(message: Message) -> list[Message]:
    try:
        return list(message.walk())
    except Exception:
        return [message]


def _defect_count(message: Message) -> int:
    return sum(len(getattr(part, "defects", [])) for part in _walk(message))
