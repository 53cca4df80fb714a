"""The result of reading one file, the limits that bound the work, and the shared German texts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

MB = 1024 * 1024

# What a reader tells the caller that the original is kept; every error ends with a next step.
KEPT = "Das Original ist gespeichert"


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one incoming file may cause; the defaults suit a letter or an e-mail.

    - ``max_bytes``: larger files (also attachments) are refused without being parsed.
    - ``max_pdf_pages``: only the first pages are read; a warning names the rest.
    - ``max_attachments``: per e-mail, only the first are read; the rest are listed with name,
      size and SHA-256 so nothing is lost.
    - ``max_depth``: how deep e-mails attached to e-mails are opened.
    - ``max_unzipped_bytes``, ``max_zip_ratio``, ``max_zip_members``: a DOCX (a ZIP archive) that
      would unpack to more, compresses better than the ratio, or has more members is refused as a
      possible ZIP bomb.
    - ``ocr_timeout_s``: per page (image); ``ocr_budget_s``: for all pages of one file together.
    - ``ocr_dpi``: resolution at which PDF pages without a text layer are rendered for OCR.
    - ``ocr_workers``: pages recognised at the same time (one Tesseract process each).
    - ``max_image_pixels``: larger images are refused before OCR (decompression bombs).
    - ``max_text_chars``: longer extracted text is cut, with a warning.
    """

    max_bytes: int = 50 * MB
    max_pdf_pages: int = 200
    max_attachments: int = 20
    max_depth: int = 3
    max_unzipped_bytes: int = 100 * MB
    max_zip_ratio: float = 100.0
    max_zip_members: int = 2000
    ocr_timeout_s: float = 60.0
    ocr_budget_s: float = 900.0
    ocr_dpi: int = 300
    ocr_workers: int = 2
    max_image_pixels: int = 100_000_000
    max_text_chars: int = 2_000_000


@dataclass
class Extraction:
    """The text of one file (or e-mail attachment) and everything a reviewer needs to trust it.

    ``text`` separates PDF pages with a form feed (``\\f``). ``method`` is ``"text-layer"``,
    ``"ocr"`` (at least one page recognised), ``"docx"``, ``"email"``, ``"plain"``, ``"html"`` or
    ``"none"`` (nothing could be read). ``pages`` counts PDF pages and image frames (0 for
    formats without pages). ``error`` is set when the file could not be read (or only
    in a way a person must check); it is German and says what to do. ``warnings`` are German notes
    on partial results. The caller keeps the original in every case.
    """

    filename: str
    media_type: str
    size: int
    sha256: str
    text: str = ""
    method: str = "none"
    pages: int = 0
    language_hint: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    attachments: list[Extraction] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def needs_review(self) -> bool:
        """True when a person must read the original: this file or an attachment failed."""
        return self.error is not None or any(a.needs_review for a in self.attachments)

    @classmethod
    def empty_for(cls, data: bytes, filename: str, media_type: str) -> Extraction:
        return cls(
            filename=filename,
            media_type=media_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
