"""PDF: the text layer with pypdf; pages without one are rendered with pdftoppm and OCR'd.

Why pdftoppm + Tesseract per page rather than ocrmypdf: ocrmypdf writes a whole new PDF/A
(Ghostscript, pikepdf) that we do not need, costs seconds of start-up per file, and has one timeout
for the whole document. Rendering and recognising page by page gives a timeout per page, OCRs only
the pages that lack text, and runs pages in parallel.
"""

from __future__ import annotations

import io
import logging
import math
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rathaus.ai.ocr import OcrEngine, OcrError, OcrResult, OcrUnavailable
from rathaus.inbox.formats.base import KEPT, Extraction, Limits
from rathaus.inbox.formats.images import add_ocr_warnings

log = logging.getLogger(__name__)

# A page whose text layer has fewer visible characters than this is treated as a scan.
MIN_PAGE_CHARS = 20

DAMAGED = (
    "Die PDF-Datei ist beschädigt und kann nicht gelesen werden. "
    f"{KEPT}; bitte beim Absender eine neue Kopie anfordern."
)
ENCRYPTED = (
    "Die PDF-Datei ist verschlüsselt und kann ohne Passwort nicht gelesen werden. "
    f"{KEPT}; bitte Klartext anfordern."
)


def read_pdf(data: bytes, result: Extraction, limits: Limits, ocr: OcrEngine) -> None:
    # pypdf is imported here so that importing the inbox does not load it.
    from pypdf import PasswordType, PdfReader

    if b"%%EOF" not in data[-2048:]:
        result.warnings.append(
            "Die PDF-Datei ist unvollständig (abgeschnitten); der Text kann unvollständig sein. "
            "Bitte mit dem Original vergleichen und ggf. eine neue Kopie anfordern."
        )
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                    result.error = ENCRYPTED
                    return
            except Exception:  # unsupported or broken encryption dictionary
                log.info("PDF decryption failed", exc_info=True)
                result.error = ENCRYPTED
                return
            result.warnings.append(
                "Die PDF-Datei ist mit Nutzungsbeschränkungen verschlüsselt, ließ sich aber "
                "ohne Passwort öffnen."
            )
        page_count = len(reader.pages)
    except Exception:  # pypdf raises many types on hostile input; all mean "cannot read"
        log.info("PDF could not be parsed", exc_info=True)
        result.error = DAMAGED
        return
    if page_count == 0:
        result.error = (
            f"Die PDF-Datei enthält keine Seiten. {KEPT}; bitte beim Absender nachfragen."
        )
        return
    result.pages = page_count
    result.language_hint = _language(reader)
    read_count = min(page_count, limits.max_pdf_pages)
    if page_count > read_count:
        result.warnings.append(
            f"Die PDF-Datei hat {page_count} Seiten; gelesen wurden nur die ersten {read_count}. "
            "Bitte die übrigen Seiten im Original ansehen."
        )

    texts: list[str] = []
    scans: list[int] = []
    sizes: dict[int, tuple[float, float]] = {}
    for index in range(read_count):
        try:
            page = reader.pages[index]
            text = page.extract_text() or ""
            box = page.mediabox
            sizes[index] = (float(box.width), float(box.height))
        except Exception:
            log.info("PDF page %d unreadable", index + 1, exc_info=True)
            text = ""
        texts.append(text.strip())
        if not _usable(text):
            scans.append(index)

    ocr_results = _ocr_pages(data, scans, sizes, result, limits, ocr) if scans else {}
    for index, recognised in ocr_results.items():
        texts[index] = recognised.text.strip()
    result.text = "\f".join(texts)
    recognised_any = any(r.text.strip() for r in ocr_results.values())
    result.method = "ocr" if recognised_any else "text-layer"
    if recognised_any:
        result.language_hint = result.language_hint or ocr.language
    if ocr_results and len(scans) < read_count:
        pages = ", ".join(str(i + 1) for i in scans)
        result.warnings.append(f"Seiten ohne Textebene, per Texterkennung gelesen: {pages}.")
    if ocr_results:
        add_ocr_warnings(result, list(ocr_results.values()), page_label=None)
    if not result.text.strip() and result.error is None:
        result.warnings.append(
            "Die PDF-Datei enthält keinen lesbaren Text. Bitte das Original ansehen."
        )


def _usable(text: str) -> bool:
    """A text layer worth keeping: enough characters, and mostly letters or digits (a layer of
    unmapped glyphs comes out as symbols or U+FFFD)."""
    visible = [c for c in text if not c.isspace()]
    if len(visible) < MIN_PAGE_CHARS:
        return False
    return sum(c.isalnum() for c in visible) / len(visible) >= 0.5


def _language(reader: object) -> str | None:
    try:
        lang = reader.trailer["/Root"].get("/Lang")  # type: ignore[attr-defined]
    except Exception:
        return None
    if not lang:
        return None
    return str(lang).split("-")[0].lower()[:8] or None


def _ocr_pages(
    data: bytes,
    indexes: list[int],
    sizes: dict[int, tuple[float, float]],
    result: Extraction,
    limits: Limits,
    ocr: OcrEngine,
) -> dict[int, OcrResult]:
    """Render and recognise the given pages in parallel; failures become warnings per page."""
    renderer = shutil.which("pdftoppm")
    if renderer is None:
        result.error = (
            "Die PDF-Datei hat keine Textebene, und das Programm pdftoppm (poppler-utils) zum "
            "Lesen gescannter Seiten fehlt. Bitte die IT bitten, scripts/system-deps.sh auszuführen."
        )
        return {}
    deadline = time.monotonic() + limits.ocr_budget_s
    done: dict[int, OcrResult] = {}
    failed: dict[int, str] = {}
    skipped: list[int] = []
    unavailable: list[str] = []

    with tempfile.TemporaryDirectory(prefix="rathaus-pdf-") as tmp:
        source = Path(tmp) / "input.pdf"
        source.write_bytes(data)

        def work(index: int) -> None:
            if unavailable:
                return
            if time.monotonic() > deadline:
                skipped.append(index)
                return
            dpi = _dpi_for(sizes.get(index), limits)
            target = Path(tmp) / f"page-{index + 1}"
            try:
                completed = subprocess.run(  # noqa: S603 - fixed program, no shell
                    [renderer, "-r", str(dpi), "-gray", "-singlefile",
                     "-f", str(index + 1), "-l", str(index + 1), str(source), str(target)],
                    capture_output=True, timeout=limits.ocr_timeout_s, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                failed[index] = "Darstellung dauerte zu lange"
                return
            # Uncompressed PGM: writing PNG costs pdftoppm more time than Tesseract needs.
            image = target.with_suffix(".pgm")
            if completed.returncode != 0 or not image.exists():
                failed[index] = "Seite konnte nicht dargestellt werden"
                return
            try:
                done[index] = ocr.recognize(image, dpi=dpi)
            except OcrUnavailable as exc:
                unavailable.append(exc.message)
            except OcrError as exc:
                failed[index] = exc.message
            finally:
                image.unlink(missing_ok=True)

        with ThreadPoolExecutor(max_workers=max(1, limits.ocr_workers)) as pool:
            list(pool.map(work, indexes))

    if unavailable:
        result.error = unavailable[0]
    for index in sorted(failed):
        result.warnings.append(
            f"Seite {index + 1}: Texterkennung fehlgeschlagen ({failed[index]})."
        )
    if skipped:
        pages = ", ".join(str(i + 1) for i in sorted(skipped))
        result.warnings.append(
            f"Die Zeit für die Texterkennung ({limits.ocr_budget_s:g} s) ist abgelaufen; "
            f"nicht gelesen wurden die Seiten {pages}. Bitte im Original ansehen."
        )
    if indexes and len(failed) + len(skipped) == len(indexes) and result.error is None:
        only_scans = len(indexes) == min(result.pages, limits.max_pdf_pages)
        if only_scans:
            result.error = (
                "Die gescannte PDF-Datei konnte nicht per Texterkennung gelesen werden. "
                f"{KEPT}; bitte den Text von Hand erfassen."
            )
    return done


def _dpi_for(size: tuple[float, float] | None, limits: Limits) -> int:
    """The OCR resolution, lowered for huge pages so no render exceeds ``max_image_pixels``."""
    if not size or size[0] <= 0 or size[1] <= 0:
        return limits.ocr_dpi
    inches = (size[0] / 72) * (size[1] / 72)
    fitting = math.sqrt(limits.max_image_pixels / inches)
    return max(10, min(limits.ocr_dpi, int(fitting)))
