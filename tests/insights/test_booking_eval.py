"""``rathaus eval bookings`` over several seeds: the list is read once, each seed injects its
own anomalies, and the summary (mean, spread, 95 % interval) matches the single-seed runs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rathaus.insights.booking_eval import INJECTED_KINDS, evaluate_bookings, summarize_seeds

OXFORD = (
    Path(__file__).resolve().parents[2].parent
    / "shared/data/bookings/oxford_spend_over_500_2014-2018_harmonised.csv.gz"
)


def _run(seed: int, recall: float, flags: float, **by_kind: float) -> dict:  # type: ignore[type-arg]
    kinds = {k: by_kind.get(k, recall) for k in INJECTED_KINDS}
    return {
        "seed": seed,
        "recall": recall,
        "recall_by_kind": kinds,
        "flags_per_1000": flags,
        "flags_on_real_by_kind": {"aehnlich": flags * 10},
        "seconds_checks": 1.0,
    }


def test_summary_mean_spread_and_interval():
    runs = [_run(1, 0.9, 40.0, splitting=0.8), _run(2, 0.95, 42.0), _run(3, 1.0, 41.0)]
    summary = summarize_seeds(runs)
    assert summary["seeds"] == [1, 2, 3]
    recall = summary["recall"]
    assert recall["mean"] == 0.95 and (recall["min"], recall["max"]) == (0.9, 1.0)
    # t(0.975, 2) = 4.303; sd 0.05 → half width 4.303 · 0.05 / √3 = 0.1242
    assert recall["ci95"] == [0.8258, 1.0742]
    assert summary["recall_by_kind"]["splitting"]["min"] == 0.8
    assert summary["flags_per_1000"]["mean"] == 41.0
    assert summary["flags_on_real_by_kind"] == {"aehnlich": 410.0}
    assert [r["seed"] for r in summary["per_seed"]] == [1, 2, 3]


@pytest.fixture(scope="module")
def oxford_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not OXFORD.exists():
        pytest.skip("shared data not available")
    lines = gzip.decompress(OXFORD.read_bytes()).split(b"\n")
    sliced = tmp_path_factory.mktemp("oxford") / "slice.csv.gz"
    sliced.write_bytes(gzip.compress(b"\n".join([lines[0], *lines[15000:21000]])))
    return sliced


def test_several_seeds_keep_the_single_seed_fields(oxford_slice: Path):
    single = evaluate_bookings(oxford_slice, seed=7, per_kind=10)
    multi = evaluate_bookings(oxford_slice, seed=7, per_kind=10, seeds=3)
    assert "multi_seed" not in single
    for key in ("seed", "recall", "recall_by_kind", "flags_per_1000", "flags_on_real", "missed"):
        assert multi[key] == single[key]  # the first seed is the single-seed run
    summary = multi["multi_seed"]
    assert summary["seeds"] == [7, 8, 9]
    assert summary["per_seed"][0]["recall"] == single["recall"]
    eight = evaluate_bookings(oxford_slice, seed=8, per_kind=10)
    assert summary["per_seed"][1]["recall_by_kind"] == eight["recall_by_kind"]
    assert summary["per_seed"][1]["flags_per_1000"] == eight["flags_per_1000"]
    recalls = [r["recall"] for r in summary["per_seed"]]
    assert summary["recall"]["mean"] == round(sum(recalls) / 3, 4)
    low, high = summary["recall"]["ci95"]
    assert low <= summary["recall"]["mean"] <= high
    assert summary["recall"]["min"] == min(recalls) and summary["recall"]["max"] == max(recalls)
    assert summary["recall_by_kind"]["duplikat"]["mean"] == 1.0


def test_cli_prints_the_multi_seed_summary(oxford_slice: Path):
    from rathaus.cli import app

    args = ["eval", "bookings", "--data", str(oxford_slice), "--anzahl", "10", "--seeds", "2"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["multi_seed"]["seeds"] == [2024, 2025]
    assert data["injected_anomalies"] == 40 and data["seed"] == 2024
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0, text.output
    assert "Über 2 Startwerte (2024–2025): Trefferquote im Mittel" in text.stdout
