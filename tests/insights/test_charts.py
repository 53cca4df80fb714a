"""Server-drawn SVG charts: accessible, escaped, honest about missing data."""

from __future__ import annotations

from rathaus.insights.charts import Band, Line, bar_chart, histogram_bins, line_chart, nice_ticks


def test_line_chart_has_title_description_and_escapes_labels() -> None:
    svg = str(
        line_chart(
            ["KW 1", "KW 2", "KW 3"],
            [Line("<Amt>", [1, None, 3])],
            bands=[Band("80 %", [0, 1, 2], [2, 3, 4])],
            title="Eingang & Prognose",
            marker_index=1,
            marker_label="heute",
        )
    )
    assert svg.startswith('<svg class="chart"') and 'role="img"' in svg
    assert "<title" in svg and "Eingang &amp; Prognose" in svg
    assert "&lt;Amt&gt;" in svg and "<Amt>" not in svg
    assert "<polygon" in svg and "chart-marker" in svg
    assert "Werte von 0 bis 4" in svg


def test_empty_charts_say_so() -> None:
    assert "Keine Daten" in str(line_chart([], [], title="leer"))
    assert "Keine Daten" in str(bar_chart([], [], title="leer"))


def test_bar_chart_scales_to_the_largest_value() -> None:
    svg = str(bar_chart(["A", "B"], [10, 5], title="t", width=480))
    widths = [float(part.split('"')[0]) for part in svg.split('width="')[2:]]
    assert widths[0] == 2 * widths[1]


def test_ticks_and_bins() -> None:
    assert nice_ticks(0, 97) == [0, 20, 40, 60, 80, 100]
    labels, counts = histogram_bins([1, 2, 2, 3, 10], bins=3)
    assert counts == [4, 0, 1] and len(labels) == 3
