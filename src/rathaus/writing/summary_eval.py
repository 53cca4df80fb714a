"""Measures extractive summaries on the Karlsruhe council papers: coverage, length ratio,
support of every sentence by its linked paragraph (checked, not assumed) and runtime."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rathaus.assistant.answer import supported_by
from rathaus.core.errors import RathausError
from rathaus.writing.summarize import Summary, SummaryError, summarize_parts
from rathaus.writing.summary_sources import paper_parts

DEFAULT_PAPERS = Path("../shared/data/council/papers_with_text_sample.jsonl")
ATTRIBUTION = "Stadt Karlsruhe OParl API, öffentliche Ratsdokumente"


def load_papers(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    if not path.is_file():
        raise RathausError(
            f"Die Ratsvorlagen-Daten fehlen unter {path}. Bitte den Pfad mit --data angeben "
            "(papers_with_text_sample.jsonl)."
        )
    papers = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                papers.append(json.loads(line))
            if limit and len(papers) >= limit:
                break
    return papers


def check_links(summary: Summary) -> tuple[int, int]:
    """(supported, total): a sentence counts only if it is verbatim in, or supported by, the
    paragraph its link names, and the link's offsets fall inside that paragraph."""
    paragraphs = {p.id: p for p in summary.paragraphs}
    ok = 0
    for s in summary.sentences:
        p = paragraphs.get(s.paragraph_id)
        if p is None or not (p.start <= s.start < s.end <= p.end):
            continue
        if s.text in p.text or supported_by(s.text, [p.text]):
            ok += 1
    return ok, len(summary.sentences)


def evaluate_summaries(
    path: Path = DEFAULT_PAPERS, *, embedder: Any, sentences: int = 8, limit: int | None = None
) -> dict[str, Any]:
    """Per paper and on average; no text of a paper appears in the result (only its reference)."""
    rows: list[dict[str, Any]] = []
    refused = 0
    for paper in load_papers(path, limit):
        parts = paper_parts(paper)
        started = time.perf_counter()
        try:
            summary = summarize_parts(parts, embedder=embedder, sentences=sentences)
        except SummaryError:
            refused += 1
            continue
        seconds = time.perf_counter() - started
        supported, total = check_links(summary)
        c = summary.coverage
        summary_chars = sum(len(s.text) for s in summary.sentences)
        rows.append(
            {
                "reference": paper.get("reference"),
                "paper_type": paper.get("paperType"),
                "chars": summary.document_chars,
                "sections": c.sections_total,
                "sections_used": c.sections_used,
                "section_coverage": c.share_sections,
                "summary_section_share": round(c.sections_in_summary / c.sections_used, 4)
                if c.sections_used
                else 0.0,
                "text_considered": c.share_text,
                "sentences": total,
                "length_ratio": round(summary_chars / max(1, summary.document_chars), 4),
                "supported_share": round(supported / total, 4) if total else 1.0,
                "seconds": round(seconds, 3),
            }
        )

    def mean(key: str) -> float:
        return round(float(np.mean([r[key] for r in rows])), 4) if rows else 0.0

    times = [r["seconds"] for r in rows]
    return {
        "papers": len(rows),
        "refused": refused,
        "data": str(path),
        "attribution": ATTRIBUTION,
        "section_coverage": mean("section_coverage"),
        "summary_section_share": mean("summary_section_share"),
        "text_considered": mean("text_considered"),
        "length_ratio": mean("length_ratio"),
        "supported_share": mean("supported_share"),
        "seconds_p50": round(float(np.percentile(times, 50)), 3) if times else 0.0,
        "seconds_p95": round(float(np.percentile(times, 95)), 3) if times else 0.0,
        "seconds_max": round(max(times), 3) if times else 0.0,
        "longest_chars": max((r["chars"] for r in rows), default=0),
        "per_paper": rows,
    }
