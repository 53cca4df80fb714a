"""The analysis core on small logs whose numbers can be checked by hand, and the process map."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rathaus.insights.process import (
    analyse,
    directly_follows,
    format_duration,
    from_columns,
    group_stats,
)
from rathaus.insights.process_map import map_data, render_map
from rathaus.insights.process_tables import TABLES, table

H = 3600 * 1_000_000  # one hour in microseconds

# case: (activity, hour, resource)
LOG = {
    "c1": [("Eingang", 0, "Poststelle"), ("Prüfen", 1, "Amt A"), ("Bescheid", 3, "Amt A")],
    "c2": [("Eingang", 0, "Poststelle"), ("Prüfen", 3, "Amt A"), ("Bescheid", 4, "Amt B")],
    "c3": [
        ("Eingang", 0, "Poststelle"),
        ("Prüfen", 2, "Amt A"),
        ("Nachfordern", 10, "Amt A"),
        ("Prüfen", 30, "Amt B"),
        ("Prüfen", 31, "Amt B"),
        ("Bescheid", 40, "Amt B"),
    ],
}


def arrays(log=LOG, shuffle: bool = False):  # type: ignore[no-untyped-def]
    rows = [(case, a, h, r) for case, events in log.items() for a, h, r in events]
    positions = list(range(len(rows)))
    if shuffle:
        order = np.random.default_rng(7).permutation(len(rows)).tolist()
        rows = [rows[i] for i in order]
        positions = order
    return from_columns(
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] * H for r in rows],
        [r[3] for r in rows],
        positions,
    )


def test_directly_follows_counts_and_waiting_times():
    a = analyse(arrays())
    assert (a.events, a.cases) == (12, 3)
    e = a.edge("Eingang", "Prüfen")
    assert (e.count, e.cases) == (3, 3)
    assert e.median_s == 2 * 3600  # waits 1, 2, 3 hours
    assert e.p90_s == pytest.approx(2.8 * 3600)  # numpy linear percentile
    assert e.total_s == 6 * 3600 and e.max_s == 3 * 3600
    b = a.edge("Prüfen", "Bescheid")
    assert b.count == 3 and b.median_s == 2 * 3600  # waits 2, 1, 9 hours
    assert a.start == {"Eingang": 3} and a.end == {"Bescheid": 3}
    assert {x.name: x.events for x in a.activities}["Prüfen"] == 5
    assert {x.name: x.cases for x in a.activities}["Prüfen"] == 3


def test_order_of_input_rows_does_not_matter():
    plain, shuffled = analyse(arrays()), analyse(arrays(shuffle=True))
    key = [(e.source, e.target, e.count, e.median_s, e.p90_s) for e in plain.edges]
    assert key == [(e.source, e.target, e.count, e.median_s, e.p90_s) for e in shuffled.edges]


def test_variants_rework_loops_and_back_edges():
    a = analyse(arrays())
    assert a.variants_total == 2
    top = a.variants[0]
    assert top.activities == ["Eingang", "Prüfen", "Bescheid"] and top.cases == 2
    assert top.share == pytest.approx(2 / 3)
    assert top.median_throughput_s == 3.5 * 3600
    assert a.edge("Prüfen", "Prüfen").kind == "schleife"
    assert a.edge("Nachfordern", "Prüfen").kind == "rücksprung"
    assert a.edge("Eingang", "Prüfen").kind == "vorwärts"
    assert [(r.activity, r.cases, r.repeats) for r in a.rework] == [("Prüfen", 1, 2)]
    assert a.rework_cases == 1
    assert a.depth["Eingang"] == 0 and a.depth["Bescheid"] > a.depth["Prüfen"]


def test_bottlenecks_handovers_and_throughput():
    a = analyse(arrays())
    worst = a.bottleneck_edges[0]
    assert (worst.source, worst.target, worst.total_s) == ("Nachfordern", "Prüfen", 20 * 3600)
    assert a.bottleneck_activities[0].name == "Prüfen"
    summary = a.handover_summary
    assert summary["available"] and summary["handovers"] == 5 and summary["same"] == 4
    pairs = {(h.source, h.target): h.count for h in a.handovers}
    assert pairs[("Poststelle", "Amt A")] == 3 and pairs[("Amt A", "Amt B")] == 2
    t = a.throughput
    assert (t.median_s, t.max_s) == (4 * 3600, 40 * 3600)
    assert t.p90_s == pytest.approx(np.percentile([3, 4, 40], 90) * 3600)


def test_filters_top_variants_and_minimum_edge_count():
    top = analyse(arrays(), top_variants=1)
    assert top.cases == 2 and top.variants_total == 2
    assert top.edge("Nachfordern", "Prüfen") is None
    assert "2 von 3 Fällen" in top.notes[0]
    rare = analyse(arrays(), min_edge_count=2)
    assert {(e.source, e.target) for e in rare.edges} == {
        ("Eingang", "Prüfen"),
        ("Prüfen", "Bescheid"),
    }


def test_group_stats_median_of_even_and_odd_groups():
    stats = group_stats(np.array([5, 5, 1, 5, 5, 1, 1]), np.array([4.0, 1, 9, 3, 2, 7, 8]))
    assert stats.keys.tolist() == [1, 5]
    assert stats.count.tolist() == [3, 4]
    assert stats.median.tolist() == [8.0, 2.5]
    assert stats.p90.tolist() == pytest.approx(
        [np.percentile([7, 8, 9], 90), np.percentile([1, 2, 3, 4], 90)]
    )


def test_empty_pairs_and_single_event_cases():
    single = from_columns(["a", "b"], ["X", "Y"], [0, H])
    d = directly_follows(single)
    assert d.edges.keys.size == 0
    a = analyse(single)
    assert a.edges == [] and a.throughput.median_s == 0 and a.start == {"X": 1, "Y": 1}


def test_format_duration_in_german():
    assert format_duration(42) == "42 s"
    assert format_duration(90 * 60) == "1,5 Std."
    assert format_duration(3 * 86400 + 43200) == "3,5 Tage"
    assert format_duration(None) == "–"


def test_process_map_is_accessible_svg_with_the_same_numbers():
    a = analyse(arrays())
    svg, notes = render_map(a, title="Karte <Test>")
    assert notes == []
    text = str(svg)
    assert "Karte &lt;Test&gt;" in text
    assert text.count('class="pm-node pm-heat') == 4
    assert text.count('tabindex="0"') == 4 and 'role="button"' in text
    assert 'data-count="3"' in text and "3 · 2,0 Std." in text
    widths = [float(w) for w in re.findall(r'stroke-width="([\d.]+)"', text)]
    assert max(widths) == pytest.approx(8.0) and min(widths) >= 1
    assert "style=" not in text  # the CSP forbids inline styles
    data = map_data(a)
    assert {n["name"] for n in data["nodes"]} == {"Eingang", "Prüfen", "Nachfordern", "Bescheid"}
    assert data["counts"] == [1, 3]


def test_process_map_node_names_start_with_the_visible_text():
    """WCAG 2.5.3 (label in name): a speech user says what a box shows, also a shortened name;
    the count is drawn outside the button (it is in the name as "… Ereignisse")."""
    long = "Unterlagen beim Antragsteller nachfordern und Frist setzen"
    word = "Grundstücksverkehrsgenehmigungsverfahren"  # one word, too long for a box
    renamed = {"Nachfordern": long, "Bescheid": word}
    log = {k: [(renamed.get(a, a), h, r) for a, h, r in v] for k, v in LOG.items()}
    text = str(render_map(analyse(arrays(log)), title="Karte")[0])
    nodes = re.findall(
        r'<g class="pm-node[^"]*"[^>]*aria-label="([^"]+)">(.*?)</g>'
        r'<text [^>]*class="pm-node-count" aria-hidden="true">',
        text,
    )
    assert len(nodes) == 4 and "pm-node-count" not in "".join(inside for _, inside in nodes)
    drawn = {}
    for label, inside in nodes:
        shown = re.search(r'class="pm-node-name"([^>]*)>([^<]+)</text>', inside)
        drawn[label.split(",")[0]] = (shown.group(2), shown.group(1))
        words = shown.group(2).removesuffix(" …")
        assert label.startswith(words) and label[len(words)] in " ,", (label, shown.group(2))
        assert "Ereignisse" in label
    assert drawn[long][0] == "Unterlagen beim …"  # whole words only, at most 30 characters
    assert drawn[word][0] == word and "textLength" in drawn[word][1]  # whole, squeezed
    assert drawn["Prüfen"] == ("Prüfen", "")


def test_every_table_exports_with_headers_matching_rows():
    a = analyse(arrays())
    for name in TABLES:
        headers, rows = table(a, name)
        assert rows and all(len(row) == len(headers) for row in rows), name
    headers, rows = table(a, "nacharbeit")
    assert ["Schleife", "Prüfen → Prüfen", 1, 1, pytest.approx(1 / 3, abs=1e-4)] in rows


def test_fast_integer_path_equals_the_general_sort():
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 40, 5000)
    wait_us = rng.integers(0, 10**12, 5000)
    fast = group_stats(keys, wait_us, 1_000_000)
    slow = group_stats(keys, wait_us / 1_000_000)
    assert fast.keys.tolist() == slow.keys.tolist()
    assert fast.count.tolist() == slow.count.tolist()
    for name in ("median", "p90", "total", "maximum"):
        assert getattr(fast, name) == pytest.approx(getattr(slow, name)), name
