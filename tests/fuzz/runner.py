"""Run a target for N generated inputs and count what happened (used by ``benchmarks/fuzz.py``).

Hypothesis generates the inputs (no shrinking, no example database): every input is judged
and counted, a failure does not stop the run, so one run reports all failures of a target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from hypothesis.errors import HypothesisException

from tests.fuzz.harness import Target, Verdict, distinct, judge


@dataclass
class Stats:
    target: str
    entry: str
    inputs: int = 0
    accepted: int = 0
    rejections: list[str] = field(default_factory=list)
    failures: list[tuple[Verdict, str]] = field(default_factory=list)  # verdict, input (repr)
    max_seconds: float = 0.0
    total_seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for verdict, _ in self.failures if verdict.status == status)

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "entry": self.entry,
            "inputs": self.inputs,
            "accepted": self.accepted,
            "rejected": len(self.rejections),
            "crashes": self.count("crash"),
            "hangs": self.count("hang"),
            "bad_messages": self.count("message"),
            "broken": self.count("broken"),
            "max_seconds": round(self.max_seconds, 3),
            "mean_seconds": round(self.total_seconds / self.inputs, 4) if self.inputs else 0.0,
            "messages": distinct(self.rejections),
            "failures": distinct(f"{v.status}: {v.detail}" for v, _ in self.failures),
        }


def run_target(
    target: Target,
    *,
    examples: int,
    workdir: Path,
    seed: int | None = None,
    limit_s: float | None = None,
    save_to: Path | None = None,
) -> Stats:
    """Feed ``examples`` generated inputs to ``target``; ``seed`` fixes them (default:
    derandomised, the same inputs every run)."""
    context = target.setup(workdir)
    stats = Stats(target.name, target.entry)

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=seed is None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(target.strategy())
    def feed(value: Any) -> None:
        verdict = judge(target, context, value, limit_s)
        stats.inputs += 1
        stats.max_seconds = max(stats.max_seconds, verdict.seconds)
        stats.total_seconds += verdict.seconds
        if verdict.status == "ok":
            stats.accepted += 1
        elif verdict.status == "rejected":
            stats.rejections.append(verdict.detail)
        else:
            stats.failures.append((verdict, repr(value)[:20_000]))
            if save_to is not None:
                save_to.mkdir(parents=True, exist_ok=True)
                number = len(stats.failures)
                (save_to / f"{target.name}-{number:03d}.txt").write_text(
                    f"{verdict.status}: {verdict.detail}\n\n{repr(value)[:200_000]}\n",
                    encoding="utf-8",
                )

    if seed is not None:
        feed = fixed_seed(seed)(feed)
    try:
        feed()
    except HypothesisException as exc:  # the generator itself failed: say so, keep the counts
        stats.failures.append((Verdict("broken", f"input generation: {exc}"[:300], 0.0), ""))
    return stats
