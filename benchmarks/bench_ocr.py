"""OCR throughput: Rathaus's reading of scanned pages against raw Tesseract on the same pages.

    .venv/bin/python benchmarks/bench_ocr.py --pages 12

Pages: German letter pages (different text per page) rendered at 300 dpi to grey images, once as
PNG files and once as image-only PDFs (a scan without text layer). Both sides run two pages at a
time (the machine has two cores; Rathaus's default ``ocr_workers`` is 2):

- raw: ``tesseract page.png stdout -l deu`` per page;
- Rathaus, images: ``extract()`` of each PNG (format check, pixel limit, Tesseract, clean-up);
- Rathaus, PDFs: ``extract()`` of each scanned PDF (pypdf finds no text layer, pdftoppm renders
  the page at 300 dpi, Tesseract, clean-up) – this includes the rendering raw Tesseract skips.

Prints JSON with pages/s and the ratios; the target is ≥ 0.8 of raw Tesseract.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test helpers build pages

from tests.inbox.test_documents import render_png, scanned_pdf, text_pdf  # noqa: E402

from rathaus.inbox.documents import extract  # noqa: E402

PARAGRAPHS = [
    "Widerspruch gegen den Bescheid über die Grundsteuer vom 26.10.2026",
    "Sehr geehrte Damen und Herren, hiermit lege ich fristgerecht Widerspruch ein.",
    "Die festgesetzte Jahressteuer von 1.471,60 Euro ist nicht nachvollziehbar.",
    "Bitte prüfen Sie die Berechnung und senden Sie mir einen neuen Bescheid.",
    "Die Straßenbeleuchtung in der Lindenstraße ist seit drei Wochen ausgefallen.",
    "Für die Anmeldung des Wohnsitzes benötige ich einen Termin im Bürgeramt.",
    "Mit freundlichen Grüßen, Erika Mustermann, Am Mühlbach 17, 12345 Musterstadt",
]


def page_lines(i: int) -> list[str]:
    rotated = PARAGRAPHS[i % len(PARAGRAPHS) :] + PARAGRAPHS[: i % len(PARAGRAPHS)]
    return [f"Seite {i + 1} – Aktenzeichen 20.3-GrSt-2026/{4700 + i}", *rotated * 3]


def timed(fn, items) -> tuple[float, list]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(fn, items))
    return time.perf_counter() - started, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pngs, pdfs = [], []
        for i in range(args.pages):
            folder = root / f"p{i}"
            folder.mkdir()
            pdf = text_pdf(page_lines(i))
            png = render_png(pdf, folder, dpi=300)
            (folder / "page.png").write_bytes(png)
            pngs.append(folder / "page.png")
            pdfs.append(scanned_pdf(pdf, folder, dpi=300))

        def raw(path: Path) -> str:
            return subprocess.run(
                ["tesseract", str(path), "stdout", "-l", "deu"],
                capture_output=True,
                check=True,
                timeout=120,
                env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"},
            ).stdout.decode()

        raw_s, raw_texts = timed(raw, pngs)
        image_s, image_results = timed(lambda p: extract(p.read_bytes(), "scan.png"), pngs)
        pdf_s, pdf_results = timed(lambda d: extract(d, "scan.pdf", "application/pdf"), pdfs)

    def words(text: str) -> set[str]:
        return {w for w in text.split() if len(w) > 3}

    agreement = sum(
        len(words(r.text) & words(t)) / max(1, len(words(t)))
        for r, t in zip(pdf_results, raw_texts, strict=True)
    ) / len(raw_texts)
    result = {
        "pages": args.pages,
        "raw_tesseract_pages_per_s": round(args.pages / raw_s, 3),
        "rathaus_images_pages_per_s": round(args.pages / image_s, 3),
        "rathaus_scanned_pdf_pages_per_s": round(args.pages / pdf_s, 3),
        "ratio_images": round(raw_s / image_s, 3),
        "ratio_scanned_pdf": round(raw_s / pdf_s, 3),
        "target_ratio": 0.8,
        "ocr_errors": sum(1 for r in [*image_results, *pdf_results] if r.error),
        "word_agreement_pdf_vs_raw": round(agreement, 3),
        "dpi": 300,
        "parallel_pages": 2,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
