"""Scanned images (PNG, JPEG, TIFF): size check from the header, then OCR."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

from rathaus.ai.ocr import OcrEngine, OcrError, OcrResult, OcrUnavailable
from rathaus.inbox.formats.base import KEPT, Extraction, Limits

SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg", "image/tiff": ".tif"}
LOW_CONFIDENCE = 60.0


def image_size(data: bytes, media_type: str) -> tuple[int, int] | None:
    """Width and height read from a PNG or JPEG header; ``None`` if unknown (TIFF, damaged)."""
    try:
        if media_type == "image/png" and len(data) >= 24 and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        if media_type == "image/jpeg":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        # SOF0..SOF15 carry the frame size; C4, C8 and CC are other segments.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


def read_image(data: bytes, result: Extraction, limits: Limits, ocr: OcrEngine) -> None:
    size = image_size(data, result.media_type)
    if size and size[0] * size[1] > limits.max_image_pixels:
        result.error = (
            f"Das Bild ist mit {size[0]} × {size[1]} Pixeln zu groß für die Texterkennung. "
            f"{KEPT}; bitte den Text von Hand erfassen oder einen kleineren Scan anfordern."
        )
        return
    with tempfile.TemporaryDirectory(prefix="rathaus-img-") as tmp:
        path = Path(tmp) / f"scan{SUFFIX.get(result.media_type, '.img')}"
        path.write_bytes(data)
        try:
            recognised = ocr.recognize(path)
        except OcrUnavailable as exc:
            result.error = exc.message
            return
        except OcrError as exc:
            result.error = f"{exc.message} {KEPT}."
            return
    # Tesseract ends every page (also every TIFF frame) with a form feed.
    result.pages = max(1, recognised.text.count("\f"))
    result.text = recognised.text.strip()
    result.method = "ocr"
    result.language_hint = ocr.language
    add_ocr_warnings(result, [recognised], page_label=None)


def add_ocr_warnings(result: Extraction, pages: list[OcrResult], page_label: str | None) -> None:
    """Warn when OCR found no text or was unsure, so the reviewer compares with the original."""
    where = f" ({page_label})" if page_label else ""
    if not any(p.text.strip() for p in pages):
        result.warnings.append(
            f"Die Texterkennung hat keinen Text gefunden{where} (z. B. ein Foto ohne Schrift "
            "oder ein sehr schlechter Scan). Bitte das Original ansehen."
        )
        return
    confidences = [p.confidence for p in pages if p.confidence is not None]
    if confidences:
        mean = sum(confidences) / len(confidences)
        result.metadata["ocr_confidence"] = f"{mean:.0f}"
        if mean < LOW_CONFIDENCE:
            result.warnings.append(
                f"Die Texterkennung war unsicher (mittlere Sicherheit {mean:.0f} %){where}. "
                "Bitte den erkannten Text mit dem Original vergleichen."
            )
