"""A month's usage by day and by action as an inline SVG stacked bar chart, drawn server-side.

`chart_geometry` is pure arithmetic (unit-tested: a bar's height is its value over the axis
maximum); `render_svg` writes the geometry as SVG text, every label escaped. No JavaScript and
no chart library: the page is complete as it is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Final

from markupsafe import Markup, escape

WIDTH: Final = 760
HEIGHT: Final = 260
LEFT: Final = 64
RIGHT: Final = 12
TOP: Final = 12
BOTTOM: Final = 32
BAR_SHARE: Final = Decimal("0.7")
"""The share of a day's slot its bar fills (the rest is the gap between days)."""
PALETTE: Final = ("#3366cc", "#dc7633", "#2e9e5b", "#a04bb4", "#c0392b", "#7f8c8d", "#b7950b")


@dataclass(frozen=True, slots=True)
class Bar:
    """One action's part of one day's bar."""

    day: date
    action: str
    value: Decimal
    x: float
    y: float
    width: float
    height: float
    color: str


@dataclass(frozen=True, slots=True)
class Tick:
    """A value on the vertical axis and its height."""

    value: Decimal
    y: float


@dataclass(frozen=True, slots=True)
class ChartGeometry:
    """Everything the SVG draws, in SVG units (the origin is the top left corner)."""

    width: int
    height: int
    axis_max: Decimal
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    legend: tuple[tuple[str, str], ...]
    """(action, color), in stacking order (bottom first)."""
    day_labels: tuple[tuple[date, float], ...]
    """(day, x of the label's centre) for every day."""

    @property
    def baseline(self) -> float:
        """The y of the zero line."""
        return float(self.height - BOTTOM)


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if value <= 0:
        return Decimal(1)
    step = Decimal(10) ** (value.adjusted())
    for factor in (1, 2, 5, 10):
        candidate = step * factor
        if candidate >= value:
            return candidate
    return step * 10  # not reached: 10 x 10^adjusted is above any value of that exponent


def chart_geometry(
    days: Sequence[date], series: Mapping[str, Mapping[date, Decimal]]
) -> ChartGeometry:
    """Stacked bars: one slot per day of `days`, one segment per action with a value > 0 that day.
    `series` is action -> day -> value; actions stack in name order."""
    actions = sorted(series)
    colors = {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(actions)}
    totals = [sum((series[a].get(d, Decimal(0)) for a in actions), Decimal(0)) for d in days]
    axis_max = nice_ceiling(max(totals, default=Decimal(0)))
    plot_w = Decimal(WIDTH - LEFT - RIGHT)
    plot_h = Decimal(HEIGHT - TOP - BOTTOM)
    slot = plot_w / max(len(days), 1)
    bar_w = slot * BAR_SHARE
    bars: list[Bar] = []
    labels: list[tuple[date, float]] = []
    for index, day in enumerate(days):
        x = Decimal(LEFT) + slot * index + (slot - bar_w) / 2
        labels.append((day, _f(x + bar_w / 2)))
        stacked = Decimal(0)
        for action in actions:
            value = series[action].get(day, Decimal(0))
            if value <= 0:
                continue
            height = value / axis_max * plot_h
            stacked += height
            y = Decimal(HEIGHT - BOTTOM) - stacked
            bars.append(
                Bar(day, action, value, _f(x), _f(y), _f(bar_w), _f(height), colors[action])
            )
    ticks = tuple(
        Tick(axis_max * i / 4, _f(Decimal(HEIGHT - BOTTOM) - plot_h * i / 4)) for i in range(5)
    )
    return ChartGeometry(
        WIDTH,
        HEIGHT,
        axis_max,
        tuple(bars),
        ticks,
        tuple((a, colors[a]) for a in actions),
        tuple(labels),
    )


def _f(value: Decimal) -> float:
    return float(round(value, 2))


def _amount(value: Decimal, unit: str) -> str:
    text = format(value.normalize(), "f") if value else "0"
    return f"${text}" if unit == "usd" else text


def render_svg(geometry: ChartGeometry, *, title: str, unit: str) -> Markup:
    """The chart as an `<svg>` element (`unit`: `usd` or `records`); each bar has a tooltip."""
    g = geometry
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {g.width} {g.height}" '
        f'width="{g.width}" height="{g.height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in g.ticks:
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{g.width - RIGHT}" y1="{tick.y}" y2="{tick.y}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{tick.y + 4}" text-anchor="end">'
            f"{escape(_amount(tick.value, unit))}</text>"
        )
    for bar in g.bars:
        tip = f"{bar.day.isoformat()} {bar.action}: {_amount(bar.value, unit)}"
        out.append(
            f'<rect class="bar" data-day="{bar.day.isoformat()}" data-action="{escape(bar.action)}"'
            f' data-value="{bar.value}" x="{bar.x}" y="{bar.y}" width="{bar.width}"'
            f' height="{bar.height}" fill="{bar.color}"><title>{escape(tip)}</title></rect>'
        )
    for day, x in g.day_labels:
        if day.day == 1 or day.day % 5 == 0:
            out.append(
                f'<text class="day" x="{x}" y="{g.baseline + 16}" text-anchor="middle">'
                f"{day.day}</text>"
            )
    x = LEFT + 8
    for action, color in g.legend:  # one key per action, across the top of the plot
        out.append(
            f'<rect class="key" x="{x}" y="{TOP}" width="10" height="10" fill="{color}"/>'
            f'<text class="key" x="{x + 14}" y="{TOP + 9}">{escape(action)}</text>'
        )
        x += 14 + 7 * len(action) + 16
    out.append(
        f'<line class="axis" x1="{LEFT}" x2="{g.width - RIGHT}" '
        f'y1="{g.baseline}" y2="{g.baseline}"/>'
    )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every value above is a number or escaped


__all__ = ["Bar", "ChartGeometry", "Tick", "chart_geometry", "nice_ceiling", "render_svg"]
