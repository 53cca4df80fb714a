"""Runs the bundled language model once with the installed llama-cpp-python: a prompt of about
200 tokens read in one batch, then a few generated tokens. scripts/setup.sh calls it in its own
process after installing a wheel; a build that crashes here (a segmentation fault kills the
process) is replaced by the avx2 build. Prints the prompt reading speed."""

from __future__ import annotations

import sys
import time

from rathaus.ai.model_files import LLM_MODEL
from rathaus.core.config import load_settings

PROMPT = (
    "Die Stadtverwaltung beantwortet Fragen zu Personalausweis, Reisepass, Wohnsitzanmeldung, "
    "Gewerbeanmeldung, Führungszeugnis, Sperrmüll und Hundesteuer. "
) * 6


def main() -> int:
    from llama_cpp import Llama

    path = LLM_MODEL.path(load_settings().models_dir)
    if not path.is_file():
        print(f"Probelauf übersprungen: {path} fehlt.")
        return 0
    llama = Llama(model_path=str(path), n_ctx=512, n_threads=2, n_threads_batch=2, verbose=False)
    tokens = llama.tokenize(PROMPT.encode("utf-8"))
    started = time.perf_counter()
    llama.eval(tokens)
    read_s = time.perf_counter() - started
    out = llama.create_completion(PROMPT + "\nFrage: Was kostet ein Reisepass?\n", max_tokens=8)
    text = out["choices"][0]["text"].strip()
    print(f"Probelauf OK: {len(tokens)} Prompt-Tokens in {read_s:.2f} s, Ausgabe {text[:40]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
