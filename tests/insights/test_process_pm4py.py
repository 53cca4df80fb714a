"""The numbers on receipt.csv equal pm4py's (the reference implementation of process mining).

How the expectations below were obtained (pm4py is AGPL-3.0 and never a dependency of Rathaus;
it lives only in the benchmark's own virtualenv):

    benchmarks/pm4py_venv.sh        # var/bench-pm4py with pm4py 2.7.15
    var/bench-pm4py/bin/python benchmarks/pm4py_peer.py figures ../shared/data/eventlogs/receipt.csv

``pm4py_peer.py figures`` reads the CSV with pandas, ``pm4py.format_dataframe`` (timestamps to UTC,
sorted by case, time and file order), then ``pm4py.get_event_attribute_values`` (activity
counts), ``pm4py.discover_dfg`` (edge counts, start and end activities) and
``pm4py.discover_performance_dfg`` (median waiting time per edge, seconds). The output was frozen
here unchanged (medians as printed by pm4py, to the microsecond).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rathaus.insights.eventlog import parse_event_log
from rathaus.insights.eventlog_store import to_us
from rathaus.insights.process import analyse, from_columns

RECEIPT = Path(__file__).resolve().parents[3] / "shared" / "data" / "eventlogs" / "receipt.csv"

PM4PY_VERSION = "2.7.15"
PM4PY_EVENTS, PM4PY_CASES = 8577, 1434

PM4PY_ACTIVITIES = {
    "Confirmation of receipt": 1434,
    "T02 Check confirmation of receipt": 1368,
    "T03 Adjust confirmation of receipt": 55,
    "T04 Determine confirmation of receipt": 1307,
    "T05 Print and send confirmation of receipt": 1300,
    "T06 Determine necessity of stop advice": 1416,
    "T07-1 Draft intern advice aspect 1": 45,
    "T07-2 Draft intern advice aspect 2": 32,
    "T07-3 Draft intern advice hold for aspect 3": 8,
    "T07-4 Draft internal advice to hold for type 4": 6,
    "T07-5 Draft intern advice aspect 5": 27,
    "T08 Draft and send request for advice": 18,
    "T09-1 Process or receive external advice from party 1": 7,
    "T09-2 Process or receive external advice from party 2": 1,
    "T09-3 Process or receive external advice from party 3": 8,
    "T09-4 Process or receive external advice from party 4": 5,
    "T10 Determine necessity to stop indication": 1283,
    "T11 Create document X request unlicensed": 44,
    "T12 Check document X request unlicensed": 41,
    "T13 Adjust document X request unlicensed": 2,
    "T14 Determine document X request unlicensed": 39,
    "T15 Print document X request unlicensed": 39,
    "T16 Report reasons to hold request": 20,
    "T17 Check report Y to stop indication": 26,
    "T18 Adjust report Y to stop indicition": 6,
    "T19 Determine report Y to stop indication": 20,
    "T20 Print report Y to stop indication": 20,
}
PM4PY_START = {"Confirmation of receipt": 1434}
PM4PY_END = {
    "Confirmation of receipt": 116,
    "T02 Check confirmation of receipt": 8,
    "T03 Adjust confirmation of receipt": 2,
    "T04 Determine confirmation of receipt": 2,
    "T05 Print and send confirmation of receipt": 400,
    "T06 Determine necessity of stop advice": 16,
    "T07-1 Draft intern advice aspect 1": 1,
    "T07-2 Draft intern advice aspect 2": 1,
    "T07-5 Draft intern advice aspect 5": 1,
    "T10 Determine necessity to stop indication": 828,
    "T11 Create document X request unlicensed": 4,
    "T13 Adjust document X request unlicensed": 1,
    "T15 Print document X request unlicensed": 39,
    "T20 Print report Y to stop indication": 15,
}
# (source, target, count, median waiting time in seconds)
PM4PY_EDGES = [
    ("Confirmation of receipt", "T02 Check confirmation of receipt", 1079, 35.189),
    ("Confirmation of receipt", "T06 Determine necessity of stop advice", 239, 60.764),
    ("T02 Check confirmation of receipt", "T03 Adjust confirmation of receipt", 43, 456.669),
    ("T02 Check confirmation of receipt", "T04 Determine confirmation of receipt", 1119, 27.648),
    ("T02 Check confirmation of receipt", "T05 Print and send confirmation of receipt", 1, 303.791),
    ("T02 Check confirmation of receipt", "T06 Determine necessity of stop advice", 178, 56.1755),
    (
        "T02 Check confirmation of receipt",
        "T07-1 Draft intern advice aspect 1",
        2,
        46.062000000000005,
    ),
    ("T02 Check confirmation of receipt", "T07-2 Draft intern advice aspect 2", 1, 0.691),
    ("T02 Check confirmation of receipt", "T07-5 Draft intern advice aspect 5", 1, 71745.247),
    ("T02 Check confirmation of receipt", "T10 Determine necessity to stop indication", 15, 30.934),
    ("T03 Adjust confirmation of receipt", "T02 Check confirmation of receipt", 51, 136.117),
    (
        "T03 Adjust confirmation of receipt",
        "T06 Determine necessity of stop advice",
        2,
        480525.3465,
    ),
    ("T04 Determine confirmation of receipt", "T03 Adjust confirmation of receipt", 6, 32405.229),
    (
        "T04 Determine confirmation of receipt",
        "T05 Print and send confirmation of receipt",
        1177,
        31.055,
    ),
    (
        "T04 Determine confirmation of receipt",
        "T06 Determine necessity of stop advice",
        103,
        117.104,
    ),
    (
        "T04 Determine confirmation of receipt",
        "T08 Draft and send request for advice",
        1,
        71991.399,
    ),
    (
        "T04 Determine confirmation of receipt",
        "T10 Determine necessity to stop indication",
        17,
        26.786,
    ),
    (
        "T04 Determine confirmation of receipt",
        "T14 Determine document X request unlicensed",
        1,
        112.103,
    ),
    (
        "T05 Print and send confirmation of receipt",
        "T06 Determine necessity of stop advice",
        791,
        37.54,
    ),
    (
        "T05 Print and send confirmation of receipt",
        "T07-2 Draft intern advice aspect 2",
        3,
        1641065.74,
    ),
    (
        "T05 Print and send confirmation of receipt",
        "T07-5 Draft intern advice aspect 5",
        3,
        438953.226,
    ),
    (
        "T05 Print and send confirmation of receipt",
        "T08 Draft and send request for advice",
        2,
        31944.6875,
    ),
    (
        "T05 Print and send confirmation of receipt",
        "T10 Determine necessity to stop indication",
        86,
        47.81,
    ),
    (
        "T05 Print and send confirmation of receipt",
        "T11 Create document X request unlicensed",
        10,
        3149.7205,
    ),
    (
        "T05 Print and send confirmation of receipt",
        "T12 Check document X request unlicensed",
        1,
        72136.814,
    ),
    (
        "T05 Print and send confirmation of receipt",
        "T13 Adjust document X request unlicensed",
        2,
        739294.3740000001,
    ),
    (
        "T05 Print and send confirmation of receipt",
        "T15 Print document X request unlicensed",
        1,
        204.078,
    ),
    ("T05 Print and send confirmation of receipt", "T16 Report reasons to hold request", 1, 87.39),
    ("T06 Determine necessity of stop advice", "T02 Check confirmation of receipt", 75, 33.519),
    (
        "T06 Determine necessity of stop advice",
        "T03 Adjust confirmation of receipt",
        2,
        308652.43950000004,
    ),
    ("T06 Determine necessity of stop advice", "T04 Determine confirmation of receipt", 43, 33.714),
    (
        "T06 Determine necessity of stop advice",
        "T05 Print and send confirmation of receipt",
        16,
        69.815,
    ),
    (
        "T06 Determine necessity of stop advice",
        "T06 Determine necessity of stop advice",
        6,
        59.463499999999996,
    ),
    ("T06 Determine necessity of stop advice", "T07-1 Draft intern advice aspect 1", 38, 58.5995),
    ("T06 Determine necessity of stop advice", "T07-2 Draft intern advice aspect 2", 18, 63.9295),
    (
        "T06 Determine necessity of stop advice",
        "T07-3 Draft intern advice hold for aspect 3",
        5,
        129.478,
    ),
    (
        "T06 Determine necessity of stop advice",
        "T07-4 Draft internal advice to hold for type 4",
        3,
        50.505,
    ),
    ("T06 Determine necessity of stop advice", "T07-5 Draft intern advice aspect 5", 21, 77.661),
    (
        "T06 Determine necessity of stop advice",
        "T08 Draft and send request for advice",
        8,
        57.239000000000004,
    ),
    (
        "T06 Determine necessity of stop advice",
        "T10 Determine necessity to stop indication",
        1165,
        31.134,
    ),
    (
        "T07-1 Draft intern advice aspect 1",
        "T02 Check confirmation of receipt",
        1,
        0.6809999999999999,
    ),
    ("T07-1 Draft intern advice aspect 1", "T04 Determine confirmation of receipt", 1, 25.123),
    ("T07-1 Draft intern advice aspect 1", "T06 Determine necessity of stop advice", 34, 25.868),
    ("T07-1 Draft intern advice aspect 1", "T07-2 Draft intern advice aspect 2", 2, 910527.937),
    (
        "T07-1 Draft intern advice aspect 1",
        "T07-4 Draft internal advice to hold for type 4",
        2,
        26.75,
    ),
    ("T07-1 Draft intern advice aspect 1", "T08 Draft and send request for advice", 4, 53.305),
    ("T07-2 Draft intern advice aspect 2", "T02 Check confirmation of receipt", 2, 80059.7085),
    (
        "T07-2 Draft intern advice aspect 2",
        "T05 Print and send confirmation of receipt",
        1,
        68350.763,
    ),
    ("T07-2 Draft intern advice aspect 2", "T06 Determine necessity of stop advice", 22, 31.895),
    ("T07-2 Draft intern advice aspect 2", "T07-1 Draft intern advice aspect 1", 2, 46873.7985),
    (
        "T07-2 Draft intern advice aspect 2",
        "T07-3 Draft intern advice hold for aspect 3",
        1,
        19.114,
    ),
    ("T07-2 Draft intern advice aspect 2", "T08 Draft and send request for advice", 2, 56.664),
    (
        "T07-2 Draft intern advice aspect 2",
        "T09-1 Process or receive external advice from party 1",
        1,
        19.242,
    ),
    (
        "T07-3 Draft intern advice hold for aspect 3",
        "T06 Determine necessity of stop advice",
        2,
        216674.649,
    ),
    (
        "T07-3 Draft intern advice hold for aspect 3",
        "T07-2 Draft intern advice aspect 2",
        4,
        319.8515,
    ),
    (
        "T07-3 Draft intern advice hold for aspect 3",
        "T07-4 Draft internal advice to hold for type 4",
        1,
        148811.709,
    ),
    (
        "T07-3 Draft intern advice hold for aspect 3",
        "T07-5 Draft intern advice aspect 5",
        1,
        18.893,
    ),
    (
        "T07-4 Draft internal advice to hold for type 4",
        "T06 Determine necessity of stop advice",
        5,
        44.706,
    ),
    (
        "T07-4 Draft internal advice to hold for type 4",
        "T07-2 Draft intern advice aspect 2",
        1,
        283.377,
    ),
    ("T07-5 Draft intern advice aspect 5", "T06 Determine necessity of stop advice", 21, 47.111),
    (
        "T07-5 Draft intern advice aspect 5",
        "T07-1 Draft intern advice aspect 1",
        2,
        41346.271499999995,
    ),
    ("T07-5 Draft intern advice aspect 5", "T08 Draft and send request for advice", 1, 6624.451),
    (
        "T07-5 Draft intern advice aspect 5",
        "T09-2 Process or receive external advice from party 2",
        1,
        591.956,
    ),
    (
        "T07-5 Draft intern advice aspect 5",
        "T09-4 Process or receive external advice from party 4",
        1,
        16.415,
    ),
    ("T08 Draft and send request for advice", "T07-1 Draft intern advice aspect 1", 1, 372.361),
    ("T08 Draft and send request for advice", "T07-5 Draft intern advice aspect 5", 1, 19.589),
    (
        "T08 Draft and send request for advice",
        "T09-1 Process or receive external advice from party 1",
        5,
        56.362,
    ),
    (
        "T08 Draft and send request for advice",
        "T09-3 Process or receive external advice from party 3",
        8,
        37.935500000000005,
    ),
    (
        "T08 Draft and send request for advice",
        "T09-4 Process or receive external advice from party 4",
        3,
        22.824,
    ),
    (
        "T09-1 Process or receive external advice from party 1",
        "T06 Determine necessity of stop advice",
        5,
        23.693,
    ),
    (
        "T09-1 Process or receive external advice from party 1",
        "T07-3 Draft intern advice hold for aspect 3",
        2,
        315983.298,
    ),
    (
        "T09-2 Process or receive external advice from party 2",
        "T09-4 Process or receive external advice from party 4",
        1,
        2260.937,
    ),
    (
        "T09-3 Process or receive external advice from party 3",
        "T04 Determine confirmation of receipt",
        1,
        526.924,
    ),
    (
        "T09-3 Process or receive external advice from party 3",
        "T06 Determine necessity of stop advice",
        4,
        38.2335,
    ),
    (
        "T09-3 Process or receive external advice from party 3",
        "T07-2 Draft intern advice aspect 2",
        2,
        3107.3360000000002,
    ),
    (
        "T09-3 Process or receive external advice from party 3",
        "T09-1 Process or receive external advice from party 1",
        1,
        179.596,
    ),
    (
        "T09-4 Process or receive external advice from party 4",
        "T06 Determine necessity of stop advice",
        4,
        34.7715,
    ),
    (
        "T09-4 Process or receive external advice from party 4",
        "T07-2 Draft intern advice aspect 2",
        1,
        3904.326,
    ),
    (
        "T10 Determine necessity to stop indication",
        "T02 Check confirmation of receipt",
        155,
        12621.547,
    ),
    (
        "T10 Determine necessity to stop indication",
        "T03 Adjust confirmation of receipt",
        4,
        1754.1689999999999,
    ),
    (
        "T10 Determine necessity to stop indication",
        "T04 Determine confirmation of receipt",
        141,
        7756.599,
    ),
    (
        "T10 Determine necessity to stop indication",
        "T05 Print and send confirmation of receipt",
        102,
        77347.88200000001,
    ),
    (
        "T10 Determine necessity to stop indication",
        "T11 Create document X request unlicensed",
        34,
        1289.2424999999998,
    ),
    (
        "T10 Determine necessity to stop indication",
        "T16 Report reasons to hold request",
        19,
        188.955,
    ),
    ("T11 Create document X request unlicensed", "T04 Determine confirmation of receipt", 1, 18.35),
    (
        "T11 Create document X request unlicensed",
        "T12 Check document X request unlicensed",
        39,
        23.999,
    ),
    ("T12 Check document X request unlicensed", "T02 Check confirmation of receipt", 2, 129568.049),
    (
        "T12 Check document X request unlicensed",
        "T04 Determine confirmation of receipt",
        1,
        9869.479,
    ),
    (
        "T12 Check document X request unlicensed",
        "T14 Determine document X request unlicensed",
        38,
        30.602,
    ),
    (
        "T13 Adjust document X request unlicensed",
        "T12 Check document X request unlicensed",
        1,
        29.204,
    ),
    (
        "T14 Determine document X request unlicensed",
        "T05 Print and send confirmation of receipt",
        1,
        83902.021,
    ),
    (
        "T14 Determine document X request unlicensed",
        "T15 Print document X request unlicensed",
        38,
        35446.001000000004,
    ),
    ("T16 Report reasons to hold request", "T17 Check report Y to stop indication", 20, 37.9925),
    ("T17 Check report Y to stop indication", "T18 Adjust report Y to stop indicition", 6, 17.701),
    (
        "T17 Check report Y to stop indication",
        "T19 Determine report Y to stop indication",
        20,
        37.7,
    ),
    ("T18 Adjust report Y to stop indicition", "T17 Check report Y to stop indication", 6, 34.928),
    (
        "T19 Determine report Y to stop indication",
        "T20 Print report Y to stop indication",
        20,
        19.113,
    ),
    ("T20 Print report Y to stop indication", "T02 Check confirmation of receipt", 3, 168686.421),
    (
        "T20 Print report Y to stop indication",
        "T05 Print and send confirmation of receipt",
        2,
        3948.569,
    ),
]


@pytest.fixture(scope="module")
def receipt():  # type: ignore[no-untyped-def]
    if not RECEIPT.is_file():
        pytest.skip(f"{RECEIPT} fehlt (gemeinsame Daten neben dem Repository)")
    log = parse_event_log(RECEIPT.read_bytes(), RECEIPT.name)
    arrays = from_columns(
        [e.case_key for e in log.events],
        [e.activity for e in log.events],
        [to_us(e.timestamp) for e in log.events],
        [e.resource for e in log.events],
        [e.position for e in log.events],
    )
    return analyse(arrays)


def test_events_cases_and_activity_counts_equal_pm4py(receipt):  # type: ignore[no-untyped-def]
    assert (receipt.events, receipt.cases) == (PM4PY_EVENTS, PM4PY_CASES)
    assert {a.name: a.events for a in receipt.activities} == PM4PY_ACTIVITIES
    assert receipt.start == PM4PY_START
    assert receipt.end == PM4PY_END


def test_dfg_edge_counts_equal_pm4py(receipt):  # type: ignore[no-untyped-def]
    ours = {(e.source, e.target): e.count for e in receipt.edges}
    assert ours == {(a, b): c for a, b, c, _ in PM4PY_EDGES}


def test_median_waiting_times_equal_pm4py(receipt):  # type: ignore[no-untyped-def]
    ours = {(e.source, e.target): e.median_s for e in receipt.edges}
    for a, b, _, median in PM4PY_EDGES:
        assert ours[(a, b)] == pytest.approx(median, abs=1e-6), (a, b)
