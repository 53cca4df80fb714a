"""Does llama.cpp reuse the start of the prompt? Time to first token of the bundled model for a
first question, the same question again, and a new question after the same system text.

    .venv/bin/python benchmarks/bench_prompt_prefix.py

With reuse, the new question costs only its own tokens; the ratio of that time to the first
call shows how much of the first token is spent reading the prompt (docs/assistant.md)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = (
    "Du bist der Bürgerassistent der Stadtverwaltung. Antworte nur aus den Belegen, nenne die "
    "Quelle jedes Satzes und sage ehrlich, wenn du etwas nicht weißt. "
) * 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from llama_cpp import Llama

    path = next(args.models_dir.glob("*.gguf"))
    llama = Llama(model_path=str(path), n_ctx=2048, n_threads=args.threads, verbose=False)

    def first_token(question: str) -> float:
        start = time.perf_counter()
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        for _ in llama.create_chat_completion(messages=messages, max_tokens=1, stream=True):
            break
        return time.perf_counter() - start

    prefix = len(llama.tokenize(SYSTEM.encode()))
    first = first_token("Wie beantrage ich einen Personalausweis?")
    again = first_token("Wie beantrage ich einen Personalausweis?")
    new = first_token("Wo melde ich Sperrmüll an und was kostet das?")
    print(f"System text: {prefix} tokens, {args.threads} threads, model {path.name}")
    print(f"first question     {first:6.2f} s")
    print(f"same question      {again:6.2f} s")
    print(f"new question       {new:6.2f} s  ({new / first:.2f} of the first)")


if __name__ == "__main__":
    main()
