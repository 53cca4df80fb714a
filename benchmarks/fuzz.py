"""Fuzz every parser and upload path with generated inputs and report per target.

    .venv/bin/python benchmarks/fuzz.py [--examples 10000] [--target NAME ...] [--seed N]

The examples are shared out by each target's weight (at least 10 per target). Per target it
prints inputs, accepted, refused (with the distinct German messages), crashes, hangs (over the
per-input limit), bad messages, broken checks (HTTP 5xx, a lost original …), and the slowest
input. The failing inputs are written to ``--save`` (default build/fuzz). Exit code 1 on any
failure. The same targets run briefly in CI as ``tests/fuzz/test_fuzz.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.runner import run_target  # noqa: E402
from tests.fuzz.targets import all_targets  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples", type=int, default=10_000, help="inputs in total (default 10000)"
    )
    parser.add_argument(
        "--target", action="append", default=[], help="only these targets (repeatable)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed (default: derandomised)"
    )
    parser.add_argument(
        "--limit", type=float, default=None, help="seconds per input (default: per target)"
    )
    parser.add_argument(
        "--save", type=Path, default=ROOT / "build" / "fuzz", help="folder for failing inputs"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the summary as JSON")
    args = parser.parse_args(argv)
    # Parsers log every broken input (pypdf: each bad xref entry); the verdicts say what matters.
    logging.disable(logging.CRITICAL)

    targets = [t for t in all_targets() if not args.target or t.name in args.target]
    if not targets:
        parser.error(f"no target named {args.target}")
    total_weight = sum(t.weight for t in targets)
    summaries = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rathaus-fuzz-") as tmp:
        for target in targets:
            examples = max(10, math.ceil(args.examples * target.weight / total_weight))
            began = time.perf_counter()
            stats = run_target(
                target,
                examples=examples,
                workdir=Path(tmp),
                seed=args.seed,
                limit_s=args.limit,
                save_to=args.save,
            )
            summary = stats.summary() | {"seconds": round(time.perf_counter() - began, 1)}
            summaries.append(summary)
            _print(summary)
    failed = sum(s["crashes"] + s["hangs"] + s["bad_messages"] + s["broken"] for s in summaries)
    inputs = sum(s["inputs"] for s in summaries)
    print(
        f"\n{inputs} inputs in {time.perf_counter() - started:.0f} s, {len(summaries)} targets, "
        f"{failed} failures" + (f" (inputs in {args.save})" if failed else "")
    )
    if inputs < args.examples:
        print(f"only {inputs} of {args.examples} inputs were generated")
        failed += 1
    if args.json:
        args.json.write_text(json.dumps(summaries, ensure_ascii=False, indent=2), encoding="utf-8")
    return 1 if failed else 0


def _print(s: dict) -> None:
    print(f"\n== {s['target']}  ({s['entry']})")
    print(
        f"   inputs {s['inputs']}, accepted {s['accepted']}, refused {s['rejected']}, "
        f"crashes {s['crashes']}, hangs {s['hangs']}, bad messages {s['bad_messages']}, "
        f"broken {s['broken']}; max {s['max_seconds']:.2f} s/input, mean {s['mean_seconds']:.3f} s, "
        f"{s['seconds']} s in all"
    )
    for message in s["messages"]:
        print(f"   refused: {message}")
    for failure in s["failures"]:
        print(f"   FAILED:  {failure}")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
