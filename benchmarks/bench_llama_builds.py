"""The two llama.cpp builds side by side: prompt reading and generation speed of the bundled model
with the avx2 and the avx512 wheel from the wheel cache (scripts/build-llama-wheel.sh).

    .venv/bin/python benchmarks/bench_llama_builds.py            # both wheels must be cached
    .venv/bin/python benchmarks/bench_llama_builds.py --rounds 5 --json

Each wheel is unpacked into its own temporary folder; every measurement runs in a fresh child
process with that folder first on ``sys.path`` (one process cannot load two libllama builds).
The rounds alternate between the builds, so anything else on the machine slows both alike. Per
round and build: the time to read a prompt of 100, 200 and 400 tokens (KV cache cleared before
each, best of two) and the speed of 48 generated tokens, all with 2 threads as in production.
Reported: tokens per second (median over the rounds) and the ratio avx512 / avx2. A wheel missing
from the cache is reported as such (building it takes about 8 minutes:
``RATHAUS_LLAMA_CPU=avx2 scripts/build-llama-wheel.sh``). No assertion.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION = "0.3.36"
VARIANTS = ("avx2", "avx512")
SIZES = (100, 200, 400)

CHILD = r"""
import json, sys, time
from llama_cpp import Llama, llama_print_system_info
path, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
llama = Llama(model_path=path, n_ctx=1024, n_threads=2, n_threads_batch=2, verbose=False)
text = open(sys.argv[3], encoding="utf-8").read()
tokens = llama.tokenize(text.encode("utf-8"))
out = {"system": llama_print_system_info().decode()}
for n in sizes:
    best = None
    for _ in range(2):
        llama.reset()
        start = time.perf_counter()
        llama.eval(tokens[:n])
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    out[f"prompt_{n}"] = n / best
llama.reset()
stamps = []
for _ in llama.create_completion(text[:300], max_tokens=48, temperature=0.0, stream=True):
    stamps.append(time.perf_counter())
out["generate"] = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 2 else None
print(json.dumps(out))
"""


def wheel_of(variant: str) -> Path | None:
    """The cached wheel of ``variant`` at scripts/build-llama-wheel.sh's default place."""
    cache = Path.home() / ".cache" / "rathaus" / "wheels" / f"llama-{VERSION}-{variant}"
    found = sorted(cache.glob("llama_cpp_python-*.whl"))
    return found[0] if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    model = next(args.models_dir.glob("*.gguf"))
    text_file = ROOT.parent / "shared" / "PRODUCT.md"
    if not text_file.is_file():
        text_file = ROOT / "README.md"
    wheels = {v: wheel_of(v) for v in VARIANTS}
    missing = [v for v, w in wheels.items() if w is None]
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS if wheels[v]}
    systems: dict[str, str] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rathaus-llama-builds-") as tmp:
        folders = {}
        for variant, wheel in wheels.items():
            if wheel is None:
                continue
            folders[variant] = Path(tmp, variant)
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(folders[variant])
        for round_ in range(args.rounds):
            order = list(folders) if round_ % 2 == 0 else list(reversed(folders))
            for variant in order:
                env = {**os.environ, "PYTHONPATH": str(folders[variant])}
                done = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        CHILD,
                        str(model),
                        ",".join(map(str, SIZES)),
                        str(text_file),
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row = json.loads(done.stdout.strip().splitlines()[-1])
                systems[variant] = row.pop("system")
                results[variant].append(row)
                if not args.json:
                    print(f"round {round_ + 1} {variant}: {row}", file=sys.stderr, flush=True)
    summary: dict[str, dict[str, float]] = {
        variant: {
            key: round(statistics.median(r[key] for r in rows if r[key]), 1) for key in rows[0]
        }
        for variant, rows in results.items()
    }
    report = {
        "model": model.name,
        "threads": 2,
        "rounds": args.rounds,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "missing_wheels": missing,
        "system_info": systems,
        "tokens_per_s": summary,
    }
    if len(summary) == 2:
        report["ratio_avx512_to_avx2"] = {
            key: round(summary["avx512"][key] / summary["avx2"][key], 2) for key in summary["avx2"]
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"model {model.name}, 2 threads, {args.rounds} rounds, load {report['load_before']}")
    for variant, row in summary.items():
        cells = ", ".join(f"{k} {v} tok/s" for k, v in row.items())
        print(f"  {variant:7} {cells}")
    if "ratio_avx512_to_avx2" in report:
        print(f"  ratio avx512/avx2: {report['ratio_avx512_to_avx2']}")
    for variant in missing:
        print(
            f"  {variant}: no wheel in the cache (RATHAUS_LLAMA_CPU={variant} "
            "scripts/build-llama-wheel.sh builds it)"
        )


if __name__ == "__main__":
    main()
