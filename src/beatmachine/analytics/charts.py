"""SVG charts drawn on the server for the dashboard: bars, horizontal bars and a heat
map. Pure functions from numbers to markup; every text is escaped, and every mark carries
its label and value as data attributes (what the browser test reads back)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
HEIGHT = 220
MARGIN_LEFT = 48
MARGIN_BOTTOM = 28
MARGIN_TOP = 12
ROW_HEIGHT = 22
LABEL_WIDTH = 150


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    # What the mark says when hovered (defaults to "label: value").
    note: str = ""


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else f"{int(value)}"


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def _empty(title: str) -> str:
    return _svg(
        WIDTH,
        60,
        title,
        ['<text class="empty" x="10" y="35">No data in this range.</text>'],
    )


def _mark(bar: Bar) -> str:
    note = bar.note or f"{bar.label}: {_number(bar.value)}"
    return (
        f'data-label="{escape(bar.label)}" data-value="{_number(bar.value)}"'
        f"><title>{escape(note)}</title></rect>"
    )


def bar_chart(title: str, bars: Sequence[Bar], *, label_every: int = 1) -> str:
    """Vertical bars, one per label, on a scale from 0 to the largest value; every
    `label_every`-th label is written under its bar."""
    if not bars or max(bar.value for bar in bars) <= 0:
        return _empty(title)
    top = max(bar.value for bar in bars)
    plot_width = WIDTH - MARGIN_LEFT - 8
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    step = plot_width / len(bars)
    body = [
        f'<line class="axis" x1="{MARGIN_LEFT}" y1="{HEIGHT - MARGIN_BOTTOM}" '
        f'x2="{WIDTH - 8}" y2="{HEIGHT - MARGIN_BOTTOM}"/>',
        f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{MARGIN_TOP + 4}" '
        f'text-anchor="end">{_number(top)}</text>',
        f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{HEIGHT - MARGIN_BOTTOM}" '
        f'text-anchor="end">0</text>',
    ]
    for index, bar in enumerate(bars):
        height = plot_height * bar.value / top
        x = MARGIN_LEFT + index * step + step * 0.1
        y = HEIGHT - MARGIN_BOTTOM - height
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(step * 0.8, 1):.1f}" '
            f'height="{height:.1f}" ' + _mark(bar)
        )
        if index % max(label_every, 1) == 0:
            body.append(
                f'<text class="tick" x="{x + step * 0.4:.1f}" y="{HEIGHT - 10}" '
                f'text-anchor="middle">{escape(_short(bar.label))}</text>'
            )
    return _svg(WIDTH, HEIGHT, title, body)


def _short(label: str) -> str:
    # Under a bar there is room for "11-30", not for "2026-11-30".
    is_date = len(label) == 10 and label[4] == "-" and label[7] == "-"
    return label[5:] if is_date else label


def horizontal_bars(title: str, bars: Sequence[Bar], *, unit: str = "") -> str:
    """One row per label, longest first as given, its value written after the bar."""
    if not bars or max(bar.value for bar in bars) <= 0:
        return _empty(title)
    top = max(bar.value for bar in bars)
    height = MARGIN_TOP + ROW_HEIGHT * len(bars) + 8
    plot_width = WIDTH - LABEL_WIDTH - 200  # room for the value written after the bar
    body = []
    for index, bar in enumerate(bars):
        y = MARGIN_TOP + index * ROW_HEIGHT
        length = plot_width * bar.value / top
        body.append(
            f'<text class="label" x="{LABEL_WIDTH - 8}" y="{y + 15}" '
            f'text-anchor="end">{escape(bar.label)}</text>'
        )
        body.append(
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y + 3}" width="{max(length, 1):.1f}" '
            f'height="{ROW_HEIGHT - 6}" ' + _mark(bar)
        )
        body.append(
            f'<text class="value" x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 15}">'
            f"{escape(bar.note or _number(bar.value) + unit)}</text>"
        )
    return _svg(WIDTH, height, title, body)


@dataclass(frozen=True)
class HeatRow:
    label: str
    cells: Sequence[float | None]  # shares from 0 to 1; None: no value


def heat_map(title: str, rows: Sequence[HeatRow], columns: Sequence[str]) -> str:
    """A grid of shares (0 to 1): the darker, the larger; each cell writes its percent."""
    if not rows:
        return _empty(title)
    cell_width = min(60, (WIDTH - LABEL_WIDTH) // max(len(columns), 1))
    height = MARGIN_TOP + 20 + ROW_HEIGHT * len(rows) + 8
    body = [
        f'<text class="tick" x="{LABEL_WIDTH + index * cell_width + cell_width / 2:.1f}" '
        f'y="{MARGIN_TOP + 10}" text-anchor="middle">{escape(column)}</text>'
        for index, column in enumerate(columns)
    ]
    for row_index, row in enumerate(rows):
        y = MARGIN_TOP + 20 + row_index * ROW_HEIGHT
        body.append(
            f'<text class="label" x="{LABEL_WIDTH - 8}" y="{y + 15}" '
            f'text-anchor="end">{escape(row.label)}</text>'
        )
        for index, share in enumerate(row.cells):
            if share is None:
                continue
            x = LABEL_WIDTH + index * cell_width
            percent = f"{share * 100:.0f}%"
            body.append(
                f'<rect class="cell" x="{x}" y="{y}" width="{cell_width - 2}" '
                f'height="{ROW_HEIGHT - 2}" fill-opacity="{0.08 + 0.92 * share:.3f}" '
                + _mark(Bar(f"{row.label} {columns[index]}", share, f"{row.label}: {percent}"))
            )
            body.append(
                f'<text class="cell-value" x="{x + (cell_width - 2) / 2:.1f}" y="{y + 15}" '
                f'text-anchor="middle">{percent}</text>'
            )
    return _svg(WIDTH, height, title, body)
