"""Measured quality of the citizen assistant on real data.

* :func:`evaluate_retrieval` – the Munich service catalogue (``knowledge/muenchen_services_de
  .json``) is indexed **without** its ``meta.keywords`` and every keyword entry is used as a query;
  the service it belongs to is the correct answer (recall@5, MRR, p95 latency), for all queries
  and separately for the odd- and even-numbered services (the fusion weights of
  :mod:`rathaus.assistant.retrieve` were chosen on the odd half only, so the even half is unseen)
  and for the queries that share no search term with their service (only meaning and spelling
  can find those).
* :func:`evaluate_assistant` – self-written citizen questions with the Munich services that
  answer them, and questions outside the catalogue where abstaining is right
  (``assistant/eval/fragen_muenchen.jsonl``): how often the answer cites a right service, how
  often it abstains (rightly or not), and how many answer sentences lack a supporting passage;
  follow-up questions ("Und was kostet das?") with the earlier questions of their conversation
  (``vorher``) are counted on their own.
* :func:`calibrate` – fits the abstention calibration (``answer.CALIBRATION``) on the
  odd-numbered services' keyword queries and the questions in ``assistant/eval/ausserhalb.txt``.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from rathaus.assistant import answer as answering
from rathaus.assistant import knowledge, retrieve
from rathaus.assistant.analysis import Analyzer
from rathaus.assistant.entries import EntryData
from rathaus.assistant.importers import read_entries
from rathaus.core.db import Database
from rathaus.core.migrate import upgrade
from rathaus.core.models import KnowledgeChunk, KnowledgeEntry, Tenant

EVAL_DIR = Path(__file__).parent / "eval"
QUESTIONS = EVAL_DIR / "fragen_muenchen.jsonl"
OUTSIDE = EVAL_DIR / "ausserhalb.txt"


def keyword_queries(entries: list[EntryData]) -> list[tuple[str, str]]:
    """``(query, external_id)`` for every keyword entry of every service."""
    out = []
    for entry in entries:
        for keyword in (entry.keywords or "").split(","):
            if keyword.strip():
                out.append((keyword.strip(), str(entry.external_id)))
    return out


@contextmanager
def catalogue_index(
    path: Path,
    *,
    embedder: Any,
    keep_keywords: bool = False,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[Session, Tenant, list[EntryData]]]:
    """A throw-away SQLite knowledge base holding the catalogue (keywords removed)."""
    entries = list(read_entries(path, "muenchen"))[:limit]
    with tempfile.TemporaryDirectory(prefix="rathaus-eval-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'eval.db'}")
        upgrade(db)
        try:
            with Session(db.engine) as session:
                tenant = Tenant(slug="eval", name="Auswertung", phone="115")
                session.add(tenant)
                session.flush()
                indexed = entries if keep_keywords else [replace(e, keywords="") for e in entries]
                knowledge.upsert_entries(
                    session,
                    tenant_id=tenant.id,
                    entries=indexed,
                    embedder=embedder,
                    progress=progress,
                )
                session.commit()
                yield session, tenant, entries
        finally:
            db.dispose()
            retrieve.KNOWLEDGE_INDEX.clear()


def _external_ids(session: Session, tenant_id: int) -> dict[int, str]:
    return {
        e.id: e.external_id
        for e in session.query(KnowledgeEntry).filter(KnowledgeEntry.tenant_id == tenant_id)
    }


def entry_terms(session: Session, tenant_id: int) -> dict[int, set[str]]:
    """The analysed full-text terms of each entry (title, headings, passages) by entry id."""
    terms: dict[int, set[str]] = {}
    rows = session.execute(
        select(
            KnowledgeChunk.entry_id, KnowledgeChunk.search_title, KnowledgeChunk.search_text
        ).where(KnowledgeChunk.tenant_id == tenant_id)
    )
    for entry_id, title, body in rows:
        terms.setdefault(entry_id, set()).update(f"{title} {body}".split())
    return terms


def shares_no_term(query: str, terms: set[str], analyzer: Analyzer) -> bool:
    """True when none of the query's search terms (stems and compound parts) is among
    ``terms``: the full text cannot find the entry, only meaning and spelling can."""
    return not set(analyzer.terms(query)) & terms


def evaluate_retrieval(
    path: Path,
    *,
    embedder: Any,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    with catalogue_index(path, embedder=embedder, limit=limit, progress=progress) as (
        session,
        tenant,
        entries,
    ):
        ext = _external_ids(session, tenant.id)
        queries = keyword_queries(entries)
        odd = {str(e.external_id) for i, e in enumerate(entries) if i % 2 == 1}
        ranks: list[int] = []
        search_ms: list[float] = []
        total_ms: list[float] = []
        for query, gold in queries:
            started = time.perf_counter()
            vector = embedder.embed_queries([query])[0]
            embedded = time.perf_counter()
            hits = retrieve.search(
                session,
                tenant_id=tenant.id,
                query=query,
                embedder=embedder,
                k=100,
                passages_per_entry=1,
                query_vector=vector,
            )
            done = time.perf_counter()
            search_ms.append((done - embedded) * 1000)
            total_ms.append((done - started) * 1000)
            found = [ext[h.entry_id] for h in hits]
            ranks.append(found.index(gold) + 1 if gold in found else 0)
        r = np.array(ranks)
        in_odd = np.array([gold in odd for _, gold in queries], dtype=bool)
        by_ext = {e: i for i, e in ext.items()}
        terms = entry_terms(session, tenant.id)
        analyzer = Analyzer(knowledge.tenant_vocabulary(session, tenant.id))
        apart = np.array(
            [shares_no_term(q, terms.get(by_ext[g], set()), analyzer) for q, g in queries],
            dtype=bool,
        )
        return {
            "data": str(path),
            "entries": len(entries),
            "queries": len(queries),
            **_rank_metrics(r),
            "odd_services": {"queries": int(in_odd.sum()), **_rank_metrics(r[in_odd])},
            "even_services": {"queries": int((~in_odd).sum()), **_rank_metrics(r[~in_odd])},
            "no_shared_term": {"queries": int(apart.sum()), **_rank_metrics(r[apart])},
            "p95_ms": round(float(np.percentile(total_ms, 95)), 1),
            "p95_search_ms": round(float(np.percentile(search_ms, 95)), 1),
            "index": "Name und Beschreibung (ohne meta.keywords); Volltext + e5 (Passage, "
            "ganzer Eintrag, Titel) + Zeichen-n-Gramme",
        }


def _rank_metrics(ranks: np.ndarray) -> dict[str, float]:
    """recall@1, recall@5 and MRR of 1-based ranks of the right entry (0: not found)."""
    if not len(ranks):
        return {"recall@1": 0.0, "recall@5": 0.0, "mrr": 0.0}
    found = ranks >= 1
    return {
        "recall@1": round(float(np.mean(found & (ranks <= 1))), 4),
        "recall@5": round(float(np.mean(found & (ranks <= 5))), 4),
        "mrr": round(float(np.mean(np.where(found, 1.0 / np.maximum(ranks, 1), 0.0))), 4),
    }


def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


@dataclass
class _Tally:
    """Counts for one group of questions in :func:`evaluate_assistant`."""

    answerable: int = 0
    outside: int = 0
    right: int = 0
    abstained_wrongly: int = 0
    abstained_rightly: int = 0

    def add(self, item: dict[str, Any], *, ok: bool, abstained: bool) -> None:
        if item.get("dienste"):
            self.answerable += 1
            self.right += ok
            self.abstained_wrongly += abstained
        else:
            self.outside += 1
            self.abstained_rightly += abstained

    @staticmethod
    def share(count: int, total: int) -> float:
        return round(count / max(1, total), 4)

    def summary(self, *, sparse: bool = False) -> dict[str, Any]:
        """The counts and shares; ``sparse`` leaves out the shares of a part with no questions
        (a language with no question outside the catalogue) instead of writing 0."""
        wrong = self.answerable - self.right - self.abstained_wrongly
        shares = {
            "cites_right_service": (self.right, self.answerable),
            # answered, but with a service that does not answer the question
            "wrong_service_shown": (wrong, self.answerable),
            "abstained_when_answerable": (self.abstained_wrongly, self.answerable),
            "abstained_when_outside": (self.abstained_rightly, self.outside),
        }
        return {
            "answerable": self.answerable,
            "outside": self.outside,
            **{
                key: self.share(count, total)
                for key, (count, total) in shares.items()
                if total or not sparse
            },
        }


class ReferenceTranslations:
    """Translates the evaluation's questions in other languages into German from their
    hand-written translations (``deutsch`` in the questions file): what a good model would do,
    an upper bound for ``rathaus eval assistant --fragen-uebersetzen referenz``. Anything else
    gets no translation."""

    model = name = "referenz"

    def __init__(self, questions: Path = QUESTIONS) -> None:
        self.table = {
            item["frage"]: item["deutsch"]
            for item in load_questions(questions)
            if "deutsch" in item
        }

    def complete(self, messages: Any, *, max_tokens: int, temperature: float) -> Any:
        from rathaus.ai.llm import Completion

        return Completion(text=self.table.get(messages[-1].content, ""), model=self.model)


def evaluate_assistant(
    path: Path,
    *,
    kit: answering.AssistantKit,
    questions: Path = QUESTIONS,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    items = load_questions(questions)
    with catalogue_index(path, embedder=kit.embedder, keep_keywords=True, progress=progress) as (
        session,
        tenant,
        _entries,
    ):
        ext = _external_ids(session, tenant.id)
        # A follow-up ("Und was kostet das?") carries the earlier questions of its conversation
        # in "vorher" and is counted on its own, not among the questions that stand alone; so is
        # a question in another language ("sprache", default "de").
        groups = {"de": _Tally(), "other": _Tally(), "follow_ups": _Tally()}
        languages: dict[str, _Tally] = {}
        unsupported = sentences = singles = detected = translated = 0
        # How the answers that were given came about: "generiert" (the model wrote at least one
        # supported sentence) or "extraktiv" (no model, or nothing it wrote was supported).
        answer_modes = {"generiert": 0, "extraktiv": 0}
        details = []
        for item in items:
            result = answering.answer(
                session,
                tenant=tenant,
                question=item["frage"],
                history=item.get("vorher", []),
                kit=kit,
            )
            cited = {ext[s.entry_id] for s in result.sources} if not result.abstained else set()
            ok = bool(cited & set(item.get("dienste", [])))
            language = item.get("sprache", "de")
            if item.get("vorher"):
                groups["follow_ups"].add(item, ok=ok, abstained=result.abstained)
            else:
                singles += 1
                detected += result.language == language
                groups["de" if language == "de" else "other"].add(
                    item, ok=ok, abstained=result.abstained
                )
                if language != "de":
                    languages.setdefault(language, _Tally()).add(
                        item, ok=ok, abstained=result.abstained
                    )
                    translated += bool(result.searched_as)
            if not result.abstained:
                answer_modes[result.mode] = answer_modes.get(result.mode, 0) + 1
            by_n = {s.n: s.passage for s in result.sources}
            for sentence in result.sentences:
                sentences += 1
                passages = [by_n[n] for n in sentence.sources if n in by_n]
                # A translated sentence is judged by the German sentence it translates.
                german = sentence.original or sentence.text
                if not passages or not answering.supported_by(german, passages):
                    unsupported += 1
            details.append(
                {
                    "frage": item["frage"],
                    **({"vorher": item["vorher"]} if item.get("vorher") else {}),
                    **({"sprache": language} if language != "de" else {}),
                    "erkannt": result.language,
                    "enthalten": result.abstained,
                    "richtig": ok if item.get("dienste") else result.abstained,
                    "zuversicht": round(result.confidence, 3),
                    "art": None if result.abstained else result.mode,
                    **({"gesucht_als": result.searched_as} if result.searched_as else {}),
                }
            )
        follow = groups["follow_ups"]
        return {
            "data": str(path),
            "questions": len(items),
            **groups["de"].summary(),
            "other_languages": {
                **groups["other"].summary(),
                # share of all questions standing alone (German too) whose language was
                # recognised as written in "sprache"
                "language_detected": _Tally.share(detected, singles),
                # questions a model translated into German for the search (check passed)
                "searched_in_german": translated,
                "by_language": {
                    code: tally.summary(sparse=True) for code, tally in sorted(languages.items())
                },
            },
            "follow_ups": {
                "questions": follow.answerable,
                "cites_right_service": follow.share(follow.right, follow.answerable),
                "abstained": follow.share(follow.abstained_wrongly, follow.answerable),
            },
            "answer_sentences": sentences,
            "unsupported_sentences": unsupported,
            "mode": "generiert" if kit.language_model is not None else "extraktiv",
            "answer_modes": answer_modes,
            "details": details,
        }


def calibrate(path: Path, *, embedder: Any) -> dict[str, Any]:
    """Fit ``answer.CALIBRATION``: P(right service among the shown) from the best entry's score
    and its lead, on keyword queries of odd-numbered services (index with keywords of the even
    ones only, so the odd ones' queries are unseen) and questions outside the catalogue; and
    ``answer.CALIBRATION_MEANING`` on the same queries searched by meaning alone (the search for
    questions in another language)."""
    with catalogue_index(path, embedder=embedder) as (session, tenant, entries):
        ext = _external_ids(session, tenant.id)
        odd = {str(e.external_id) for i, e in enumerate(entries) if i % 2 == 1}
        queries = [(q, g) for q, g in keyword_queries(entries) if g in odd]
        outside = [q for q in OUTSIDE.read_text("utf-8").splitlines() if q.strip()]
        fits = {}
        for name, meaning_only in (("", False), ("_meaning", True)):
            fits[name] = _fit_calibration(
                session, tenant.id, ext, queries, outside, embedder, meaning_only=meaning_only
            )
        return {
            **{f"{key}{name}": value for name, fit in fits.items() for key, value in fit.items()},
            "queries": len(queries),
            "outside": len(outside),
        }


def _fit_calibration(
    session: Session,
    tenant_id: int,
    ext: dict[int, str],
    queries: list[tuple[str, str]],
    outside: list[str],
    embedder: Any,
    *,
    meaning_only: bool,
) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    def features_of(query: str) -> tuple[list[retrieve.EntryHit], tuple[float, ...]]:
        hits = retrieve.search(
            session,
            tenant_id=tenant_id,
            query=query,
            embedder=embedder,
            k=3,
            meaning_only=meaning_only,
        )
        return hits, answering.calibration_features(hits, meaning_only=meaning_only)

    features, labels = [], []
    for query, gold in queries:
        hits, x = features_of(query)
        features.append(x)
        labels.append(int(any(ext[h.entry_id] == gold for h in hits[:1])))
    outside_x = [features_of(query)[1] for query in outside]
    for x in outside_x:
        # weigh the few outside questions like many keyword queries
        features.extend([x] * 10)
        labels.extend([0] * 10)
    model = LogisticRegression(C=10.0, max_iter=1000).fit(np.array(features), np.array(labels))
    weights = [round(float(w), 3) for w in model.coef_[0]]
    # Threshold: above what four in five questions outside the catalogue reach.
    outside_p = model.predict_proba(np.array(outside_x))[:, 1]
    return {
        "abstain_below": round(float(np.ceil(np.quantile(outside_p, 0.8) * 100) / 100), 2),
        "outside_confidences": sorted(round(float(p), 3) for p in outside_p),
        "calibration": [weights, round(float(model.intercept_[0]), 3)],
    }
