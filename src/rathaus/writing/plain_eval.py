"""Measure the Leichte-Sprache checker on DEplain-web: does it rate the simplification of each
aligned pair as simpler than the original? Optionally the rewrite too (SARI, facts preserved).

Data: DEplain-web sentence pairs (Stodden et al. 2023), the openly licensed part (CC BY 4.0 and
CC BY-SA 3.0, per row in the column ``license``). The split for tuning the weights is by document
(``pair_id``): even ids are the tuning half, odd ids the held-out half.
"""

from __future__ import annotations

import csv
import re
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rathaus.core.errors import RathausError
from rathaus.writing.plain_language import check, readability, split_sentences
from rathaus.writing.plain_rules import RULES

DEFAULT_DATA = Path("../shared/data/simplification/deplain_web_sent_open.csv")


@dataclass(frozen=True)
class Pair:
    pair_id: str
    original: str
    simplification: str
    license: str

    @property
    def half(self) -> str:
        digits = re.sub(r"\D", "", self.pair_id) or "0"
        return "tuning" if int(digits) % 2 == 0 else "held_out"


def load_pairs(path: Path) -> list[Pair]:
    if not path.is_file():
        raise RathausError(
            f"Die Datei {path} gibt es nicht. Bitte den Pfad zu deplain_web_sent_open.csv mit "
            "--data angeben (Standard: ../shared/data/simplification/ neben dem Repository)."
        )
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = {"original", "simplification"} - set(rows[0] if rows else {})
    if missing:
        raise RathausError(
            f"In {path.name} fehlen die Spalten {', '.join(sorted(missing))}: erwartet wird die "
            "Satzpaar-Datei von DEplain-web (original, simplification, pair_id, license)."
        )
    return [
        Pair(r.get("pair_id", str(i)), r["original"], r["simplification"], r.get("license", ""))
        for i, r in enumerate(rows)
        if r["original"].strip() and r["simplification"].strip()
    ]


def naive_score(text: str) -> float:
    """The naive baseline: words per sentence plus long words (10 letters or more) per sentence."""
    sentences = split_sentences(text) or []
    n = max(1, len(sentences))
    words = [t.text for s in sentences for t in s.tokens]
    return (len(words) + sum(len(w) >= 10 for w in words)) / n


def pairwise(pairs: list[Pair], score: Callable[[str], float]) -> dict[str, Any]:
    """Share of pairs whose simplification scores strictly lower; a tie counts as a failure."""
    wins = ties = 0
    for p in pairs:
        a, b = score(p.original), score(p.simplification)
        wins += b < a
        ties += b == a
    n = len(pairs)
    return {"pairs": n, "simpler": wins, "ties": ties, "share": round(wins / n, 4) if n else None}


def _side(texts: list[str]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    sentences = 0
    severities = []
    for text in texts:
        report = check(text)
        counts.update(report.counts)
        sentences += len(report.sentences)
        severities.append(report.severity)
    return {
        "sentences": sentences,
        "violations_per_sentence": round(sum(counts.values()) / max(1, sentences), 3),
        "per_rule": {r.code: round(counts[r.code] / max(1, sentences), 3) for r in RULES},
        "severity_mean": round(statistics.fmean(severities), 3) if severities else None,
    }


def _readability(texts: list[str]) -> dict[str, float]:
    scores = [readability(t) for t in texts]
    return {
        "flesch_amstad_mean": round(statistics.fmean(s.flesch_amstad for s in scores), 1),
        "wiener_sachtextformel_mean": round(
            statistics.fmean(s.wiener_sachtextformel for s in scores), 1
        ),
    }


def evaluate_checker(path: Path, *, with_readability: bool = True) -> dict[str, Any]:
    pairs = load_pairs(path)
    severity = lambda text: check(text).severity  # noqa: E731
    halves = {h: [p for p in pairs if p.half == h] for h in ("tuning", "held_out")}
    result: dict[str, Any] = {
        "data": path.name,
        "pairs": len(pairs),
        "ties_count_as": "failure",
        "pairwise": pairwise(pairs, severity)["share"],
        "pairwise_detail": {
            "all": pairwise(pairs, severity),
            "tuning_half": pairwise(halves["tuning"], severity),
            "held_out_half": pairwise(halves["held_out"], severity),
        },
        "baseline_naive": pairwise(pairs, naive_score)["share"],
        "baseline_naive_detail": {
            "all": pairwise(pairs, naive_score),
            "tuning_half": pairwise(halves["tuning"], naive_score),
            "held_out_half": pairwise(halves["held_out"], naive_score),
        },
        "violations_per_sentence": {
            "original": _side([p.original for p in pairs]),
            "simplification": _side([p.simplification for p in pairs]),
        },
        "split": "nach Dokument (pair_id): gerade = Abstimmung der Gewichte, ungerade = zurückgehalten",
        "licenses": dict(Counter(p.license for p in pairs)),
    }
    if with_readability:
        result["readability"] = {
            "original": _readability([p.original for p in pairs]),
            "simplification": _readability([p.simplification for p in pairs]),
        }
        result["pairwise_flesch_amstad"] = pairwise(pairs, lambda t: -readability(t).flesch_amstad)[
            "share"
        ]
    return result


# -- the rewrite: SARI and facts preserved ------------------------------------------------------


def _ngrams(tokens: list[str], n: int) -> Counter[str]:
    return Counter(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def sari(source: str, output: str, references: list[str]) -> float:
    """SARI (Xu et al. 2016) for one sentence, 0–100: the mean over n = 1…4 of the F1 of kept,
    the F1 of added and the precision of deleted n-grams against the references. A plain
    implementation after the paper, with n-gram counts clipped as in the original script."""
    src, out = _tokens(source), _tokens(output)
    refs = [_tokens(r) for r in references]
    scores = []
    for n in range(1, 5):
        s, o = _ngrams(src, n), _ngrams(out, n)
        r_all: Counter[str] = Counter()
        for ref in refs:
            r_all.update(_ngrams(ref, n))
        k = len(refs)
        # keep
        keep_out = {g: min(o[g], s[g]) for g in o if g in s}
        keep_ref = {g: min(s[g], r_all[g] / k) for g in s if g in r_all}
        kp = _ratio(
            sum(min(c, keep_ref.get(g, 0)) for g, c in keep_out.items()), sum(keep_out.values())
        )
        kr = _ratio(
            sum(min(c, keep_ref.get(g, 0)) for g, c in keep_out.items()), sum(keep_ref.values())
        )
        keep_f = _f1(kp, kr)
        # delete (precision only)
        del_out = {g: s[g] - min(s[g], o.get(g, 0)) for g in s}
        del_ref = {g: s[g] - min(s[g], r_all.get(g, 0) / k) for g in s}
        dp = _ratio(
            sum(min(c, del_ref.get(g, 0)) for g, c in del_out.items() if c > 0),
            sum(c for c in del_out.values() if c > 0),
        )
        # add
        add_out = {g for g in o if g not in s}
        add_ref = {g for g in r_all if g not in s}
        ap = _ratio(len(add_out & add_ref), len(add_out))
        ar = _ratio(len(add_out & add_ref), len(add_ref))
        add_f = _f1(ap, ar)
        scores.append((keep_f + dp + add_f) / 3)
    return 100 * sum(scores) / len(scores)


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def evaluate_rewrite(
    path: Path, *, model: Any, limit: int = 5, max_rounds: int = 1
) -> dict[str, Any]:
    """Rewrite the first ``limit`` originals of the held-out half; SARI against the DEplain
    simplification and the share of rewrites that add no number, date, amount or name;
    ``facts_repaired`` counts the rewrites that add none only because sentences carrying an added
    fact were removed (see :func:`rathaus.writing.plain_rewrite.without_added_facts`).

    A pair the model does not answer (time limit, server down) is counted in ``failed`` with
    its reason and left out of the rates; the rest of the run is kept. Only when no pair could
    be rewritten does the model's error end the run."""
    from rathaus.ai.llm import ModelUnavailableError
    from rathaus.writing.plain_rewrite import rewrite

    pairs = [p for p in load_pairs(path) if p.half == "held_out"][:limit]
    saris, preserved, repaired, before, after = [], 0, 0, [], []
    failed: list[dict[str, str]] = []
    violations: list[dict[str, Any]] = []
    for p in pairs:
        try:
            result = rewrite(p.original, model=model, max_rounds=max_rounds)
        except ModelUnavailableError as exc:
            failed.append({"pair_id": p.pair_id, "reason": str(exc)})
            if len(failed) == len(pairs):
                raise
            continue
        saris.append(sari(p.original, result.text, [p.simplification]))
        preserved += result.facts_ok
        if not result.facts_ok:
            violations.append(
                {"pair_id": p.pair_id, "added_facts": [f.text for f in result.best.added_facts]}
            )
        repaired += bool(result.best.removed)
        before.append(result.source_report.severity)
        after.append(result.best.report.severity)
    n = len(pairs) - len(failed)
    return {
        "pairs": n,
        "failed": failed,
        "model": getattr(model, "model", "unbekannt"),
        "sari": round(statistics.fmean(saris), 2) if saris else None,
        "facts_preserved": preserved / n if n else 0.0,
        "facts_repaired": repaired,
        "facts_violations": violations,
        "severity_before": round(statistics.fmean(before), 3) if before else None,
        "severity_after": round(statistics.fmean(after), 3) if after else None,
    }
