"""A short fuzz run of every target for CI: the same targets as ``make fuzz``, few inputs each.

Derandomised (the same inputs on every run) and without an example database, so a red run is
reproducible. Hypothesis shrinks a failing input to a minimal one and prints it; the harness's
own time limit per input stands in for Hypothesis's deadline. ``make fuzz`` runs ≥ 10,000 inputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz.harness import Target, judge
from tests.fuzz.targets import all_targets

EXAMPLES = int(os.environ.get("RATHAUS_FUZZ_EXAMPLES", "12"))
TARGETS = {target.name: target for target in all_targets()}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_survives_generated_inputs(name: str, workdir: Path) -> None:
    target: Target = TARGETS[name]
    context = target.setup(workdir)

    @settings(
        max_examples=max(2, round(EXAMPLES * target.weight)),
        database=None,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy())
    def survives(value: Any) -> None:
        verdict = judge(target, context, value)
        assert not verdict.failed, f"{verdict.status}: {verdict.detail}"

    survives()
