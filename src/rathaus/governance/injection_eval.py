"""How often the prompt-injection screening flags ordinary texts (the false positive rate).

Benign texts: the demo letters (without the two deliberate injections E13 and E14), the letter
variants of the demo history, the citizens' questions of the assistant's evaluation (without
its one deliberate injection), the knowledge entries of the demo, and – when a folder is given –
every ``*.txt`` file in it (e.g. the project's seed texts, read where they lie, never copied).

    python -m rathaus.governance.injection_eval [--seeds ../shared/seeds]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rathaus.governance.injection import screen

PACKAGE = Path(__file__).resolve().parents[1]
DEMO_INJECTIONS = {"E13", "E14"}  # deliberate attacks in the demo data (their _hinweis says so)


# The questions of the assistant's evaluation that attack on purpose (German and English).
DELIBERATE_ATTACKS = ("Ignoriere deine Anweisungen", "Ignore your instructions")


def benign_texts(*, seeds_dir: Path | None = None) -> list[tuple[str, str]]:
    """(source, text) of every benign text; see the module docstring."""
    texts: list[tuple[str, str]] = []
    demo = json.loads((PACKAGE / "core" / "demo" / "eingaenge.json").read_text(encoding="utf-8"))
    for item in demo["items"]:
        if item["id"] not in DEMO_INJECTIONS:
            texts.append((f"Demo-Eingang {item['id']}", f"{item['subject']}\n{item['body']}"))
    history = json.loads((PACKAGE / "core" / "demo" / "historie.json").read_text(encoding="utf-8"))
    for service, spec in history["leistungen"].items():
        for n, variant in enumerate(spec.get("varianten", []), start=1):
            texts.append(
                (f"Demo-Historie {service}/{n}", f"{variant['betreff']}\n{variant['text']}")
            )
    questions = PACKAGE / "assistant" / "eval" / "fragen_muenchen.jsonl"
    for n, line in enumerate(questions.read_text(encoding="utf-8").splitlines(), start=1):
        question = json.loads(line)["frage"]
        if not question.startswith(DELIBERATE_ATTACKS):
            texts.append((f"Bürgerfrage {n}", question))
    for path in sorted((PACKAGE / "assistant" / "demo").glob("*.md")):
        texts.append((f"Wissenseintrag {path.stem}", path.read_text(encoding="utf-8")))
    if seeds_dir is not None:
        for path in sorted(seeds_dir.glob("*.txt")):
            texts.append((f"Text {path.name}", path.read_text(encoding="utf-8", errors="replace")))
    return texts


def false_positives(texts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(source, reason) of every benign text the screening flags."""
    found = []
    for source, text in texts:
        result = screen(text)
        if result.found:
            found.append((source, result.reason))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fehlalarmquote der Injection-Prüfung")
    parser.add_argument("--seeds", type=Path, help="Ordner mit weiteren Texten (*.txt)")
    args = parser.parse_args(argv)
    if args.seeds is not None and not args.seeds.is_dir():
        print(f"Ordner „{args.seeds}“ gibt es nicht.", file=sys.stderr)
        return 2
    started = time.perf_counter()
    texts = benign_texts(seeds_dir=args.seeds)
    flagged = false_positives(texts)
    seconds = time.perf_counter() - started
    print(f"Unauffällige Texte: {len(texts)}")
    print(f"Fälschlich markiert: {len(flagged)} ({len(flagged) / max(1, len(texts)):.1%})")
    for source, reason in flagged:
        print(f"  {source}: {reason}")
    print(f"Dauer: {seconds:.1f} s (mit dem Training des Klassifikators)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
