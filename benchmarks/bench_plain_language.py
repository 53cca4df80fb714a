"""Leichte-Sprache checker throughput: sentences per second for ``check`` (all rules, Schweregrad)
against a baseline in the same run: the same sentence splitting plus a word count only.

    .venv/bin/python benchmarks/bench_plain_language.py
    .venv/bin/python benchmarks/bench_plain_language.py --repeat 3 --json

Text: the originals and simplifications of DEplain-web (``--data``), checked pair by pair, i.e.
many short texts as in the web page and the API. Target: at least 1,000 sentences/s on one core.
No assertion: the script prints the measured numbers and the ratio (checker time / baseline time).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rathaus.writing.plain_eval import DEFAULT_DATA, load_pairs
from rathaus.writing.plain_language import check, split_sentences


def _baseline(texts: list[str]) -> int:
    return sum(len(s.text.split()) for t in texts for s in split_sentences(t))


def _checker(texts: list[str]) -> int:
    return sum(len(check(t).sentences) for t in texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1] / DEFAULT_DATA
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pairs = load_pairs(args.data)
    texts = [t for p in pairs for t in (p.original, p.simplification)]
    sentences = sum(len(split_sentences(t)) for t in texts)
    best = {"baseline": float("inf"), "checker": float("inf")}
    for _ in range(args.repeat):  # alternate, so other load slows both alike; keep the best
        for name, fn in (("baseline", _baseline), ("checker", _checker)):
            start = time.perf_counter()
            fn(texts)
            best[name] = min(best[name], time.perf_counter() - start)
    result = {
        "texts": len(texts),
        "sentences": sentences,
        "checker_sentences_per_s": round(sentences / best["checker"]),
        "baseline_sentences_per_s": round(sentences / best["baseline"]),
        "ratio_checker_to_baseline_time": round(best["checker"] / best["baseline"], 1),
        "target_sentences_per_s": 1000,
        "load_average": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{sentences} Sätze in {len(texts)} Texten: Prüfer {result['checker_sentences_per_s']} "
        f"Sätze/s, Grundlinie (Satztrennung + Wortzahl) {result['baseline_sentences_per_s']} "
        f"Sätze/s, Verhältnis der Zeiten {result['ratio_checker_to_baseline_time']}× "
        f"(Ziel ≥ 1000 Sätze/s; Last {result['load_average']:.1f})."
    )


if __name__ == "__main__":
    main()
