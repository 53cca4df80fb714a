"""Optical character recognition: the Tesseract binary behind a small provider contract.

Tesseract runs as a subprocess, one image (one page) per call, with ``OMP_THREAD_LIMIT=1`` (its
OpenMP threads make a single page slower on a loaded machine, not faster) and a hard timeout, so a
hostile or enormous image can cost at most one timeout and never the worker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class OcrError(Exception):
    """OCR failed for one image; ``message`` is German and says what to do next."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OcrTimeout(OcrError):
    """The engine took longer than its per-page timeout and was stopped."""


class OcrUnavailable(OcrError):
    """The OCR engine (binary or language data) is not installed on this machine."""


@dataclass(frozen=True)
class OcrResult:
    """Text of one page, the mean word confidence (0–100, ``None`` if no words) and the time."""

    text: str
    confidence: float | None
    seconds: float


class OcrEngine(Protocol):
    """Contract: read the text in one image file (PNG, JPEG, TIFF, PGM).

    Raises ``OcrTimeout`` after ``timeout_s``, ``OcrUnavailable`` if the engine is missing and
    ``OcrError`` for an image it cannot read; never anything else for bad input.
    """

    name: str
    language: str

    def recognize(self, image: Path, *, dpi: int | None = None) -> OcrResult: ...


class TesseractOcr:
    """Tesseract 5 via its command-line program; ``languages`` like ``"deu"`` or ``"deu+eng"``."""

    name = "tesseract"

    def __init__(
        self, *, languages: str = "deu", timeout_s: float = 60.0, binary: str = "tesseract"
    ) -> None:
        self.languages = languages
        self.timeout_s = timeout_s
        self.binary = binary

    @property
    def language(self) -> str:
        """ISO 639-1 code of the first configured language, for the extraction's language hint."""
        first = self.languages.split("+")[0]
        return {"deu": "de", "eng": "en", "fra": "fr", "tur": "tr"}.get(first, first)

    def recognize(self, image: Path, *, dpi: int | None = None) -> OcrResult:
        executable = shutil.which(self.binary)
        if executable is None:
            raise OcrUnavailable(
                "Die Texterkennung (Tesseract) ist auf diesem Server nicht installiert. "
                "Bitte die IT bitten, scripts/system-deps.sh auszuführen."
            )
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="rathaus-ocr-") as tmp:
            base = Path(tmp) / "out"
            # One run writes both the plain text and the word table (for the confidence).
            command = [executable, str(image), str(base), "-l", self.languages, "--psm", "3"]
            if dpi:
                command += ["--dpi", str(dpi)]
            command += ["txt", "tsv"]
            try:
                completed = subprocess.run(  # noqa: S603 - fixed program, no shell
                    command,
                    env=env,
                    capture_output=True,
                    timeout=self.timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise OcrTimeout(
                    f"Die Texterkennung wurde nach {self.timeout_s:g} Sekunden abgebrochen. "
                    "Bitte den Text aus dem Original von Hand erfassen."
                ) from exc
            stderr = completed.stderr.decode("utf-8", "replace")
            if completed.returncode != 0 or not base.with_suffix(".txt").exists():
                if "Failed loading language" in stderr or "Error opening data file" in stderr:
                    raise OcrUnavailable(
                        f"Die Sprachdaten '{self.languages}' für die Texterkennung fehlen. "
                        "Bitte die IT bitten, tesseract-ocr-deu zu installieren."
                    )
                raise OcrError(
                    "Das Bild konnte für die Texterkennung nicht gelesen werden "
                    "(Bilddatei beschädigt oder Format nicht unterstützt). "
                    "Bitte das Original ansehen und den Text von Hand erfassen."
                )
            text = base.with_suffix(".txt").read_text(encoding="utf-8", errors="replace")
            tsv = base.with_suffix(".tsv")
            confidence = (
                _mean_confidence(tsv.read_text("utf-8", "replace")) if tsv.exists() else None
            )
        return OcrResult(text=text, confidence=confidence, seconds=time.monotonic() - started)


def _mean_confidence(tsv: str) -> float | None:
    """Mean of the word confidences in Tesseract's TSV (level 5 rows; -1 marks non-words)."""
    values: list[float] = []
    for line in tsv.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) < 12 or fields[0] != "5" or not fields[11].strip():
            continue
        try:
            conf = float(fields[10])
        except ValueError:
            continue
        if conf >= 0:
            values.append(conf)
    return sum(values) / len(values) if values else None
