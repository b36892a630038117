"""The dashboard's SVG charts: marks carry their data, text is escaped, no data says so."""

from __future__ import annotations

import re

from beatmachine.analytics.charts import Bar, HeatRow, bar_chart, heat_map, horizontal_bars


def test_a_bar_chart_has_one_mark_per_value_scaled_to_the_largest() -> None:
    svg = bar_chart("Plays", [Bar("2026-11-30", 2), Bar("2026-12-01", 4)])

    marks = re.findall(r'height="([\d.]+)" data-label="([^"]+)" data-value="(\d+)"', svg)
    assert [(label, value) for _, label, value in marks] == [
        ("2026-11-30", "2"),
        ("2026-12-01", "4"),
    ]
    assert float(marks[1][0]) == 2 * float(marks[0][0])


def test_text_in_a_chart_is_escaped() -> None:
    svg = horizontal_bars("Trending", [Bar('<script>alert("x")</script>', 3)])

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_a_chart_without_data_says_so() -> None:
    assert "No data in this range." in bar_chart("Plays", [Bar("2026-12-01", 0)])
    assert "No data in this range." in heat_map("Retention", [], [])


def test_a_heat_map_cell_is_darker_the_larger_its_share() -> None:
    svg = heat_map("Retention", [HeatRow("2026-11-30 (4)", [1.0, 0.25, None])], ["W0", "W1", "W2"])

    opacities = [float(o) for o in re.findall(r'fill-opacity="([\d.]+)"', svg)]
    assert opacities == [1.0, 0.08 + 0.92 * 0.25]
    assert svg.count('class="cell"') == 2  # no cell for a week not yet come
