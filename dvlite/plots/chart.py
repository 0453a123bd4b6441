"""One chart as inline SVG: axes with ticks and labels, marks (line, scatter, bar) and a legend.

Output is deterministic (no clocks, no random ids) and every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from dvlite.plots.scale import (
    BandScale,
    LinearScale,
    format_number,
    nice_ticks,
    thin_line,
    thin_stride,
    tick_step,
)
from dvlite.plots.spec import Plot, Series

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
DASHES = ("", "6 4", "2 3", "10 3 2 3")
OPACITY = ("1", "0.6", "0.35", "0.8")
WIDTH, LEFT, RIGHT, TOP, PLOT_H = 720, 76, 24, 14, 300
AXIS_H, LEGEND_ROW = 56, 18
MAX_SERIES = 200
MAX_CATEGORIES = 400
MAX_SCATTER = 4_000
LINE_BUCKETS = 600
MAX_MARKERS = 60  # a line with this many points or fewer also gets a dot per point
LABEL_CHARS, LEGEND_CHARS, CHAR_W = 14, 48, 6.6


@dataclass(frozen=True)
class Style:
    colour: str
    variant: int  # dash (line), shape (scatter) or opacity (bar)
    label: str


@dataclass(frozen=True)
class Frame:
    x: LinearScale | BandScale
    y: LinearScale
    template: str

    def px(self, x) -> float:
        return self.x.center(x) if isinstance(self.x, BandScale) else self.x(x)


def num(value: float) -> str:
    """A coordinate with one decimal, the same text for the same value on every machine."""
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def styles(series: tuple[Series, ...], colour_of: Mapping[str, int]) -> list[Style]:
    """Colour by revision when a chart compares revisions (the page keeps one colour per
    revision), else by field; the other dimension varies the dash, shape or opacity."""
    revisions = list(dict.fromkeys(s.revision for s in series))
    fields = list(dict.fromkeys(s.field for s in series))
    by_revision = len(revisions) > 1
    out = []
    for s in series:
        if by_revision:
            index = colour_of.get(s.revision, revisions.index(s.revision))
            variant = fields.index(s.field) + index // len(PALETTE)
            label = s.revision if len(fields) == 1 else f"{s.revision}: {s.field}"
        else:
            index = fields.index(s.field)
            variant = index // len(PALETTE)
            label = s.field
        out.append(Style(PALETTE[index % len(PALETTE)], variant, label))
    return out


def category(x) -> str:
    if isinstance(x, str):
        return x
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else format_number(x)


def _categories(series: tuple[Series, ...]) -> list[str]:
    xs = [p[0] for s in series for p in s.points]
    if xs and all(not isinstance(x, str) for x in xs):
        xs = sorted(set(xs))
    return list(dict.fromkeys(category(x) for x in xs))


def _frame(plot: Plot, series: tuple[Series, ...], notes: list[str]) -> tuple[Frame, list[float]]:
    template = plot.spec.template
    categorical = template == "bar" or any(isinstance(p[0], str) for s in series for p in s.points)
    ys = [p[1] for s in series for p in s.points]
    if template == "bar":
        ys.append(0.0)
    y_ticks = nice_ticks(min(ys), max(ys)) if ys else nice_ticks(0.0, 1.0)
    y = LinearScale(y_ticks[0], y_ticks[-1], TOP + PLOT_H, TOP)
    if categorical:
        names = _categories(series)
        if len(names) > MAX_CATEGORIES:
            notes.append(f"only the first {MAX_CATEGORIES} of {len(names)} x values are drawn")
            names = names[:MAX_CATEGORIES]
        return Frame(BandScale(tuple(names), LEFT, WIDTH - RIGHT), y, template), y_ticks
    xs = [p[0] for s in series for p in s.points]
    x_ticks = nice_ticks(min(xs), max(xs)) if xs else nice_ticks(0.0, 1.0)
    return Frame(LinearScale(x_ticks[0], x_ticks[-1], LEFT, WIDTH - RIGHT), y, template), y_ticks


def _axes(plot: Plot, frame: Frame, y_ticks: list[float]) -> list[str]:
    bottom, right = TOP + PLOT_H, WIDTH - RIGHT
    out = ['<g class="axes">']
    step = tick_step(y_ticks)
    for t in y_ticks:
        py = num(frame.y(t))
        out.append(f'<line class="grid" x1="{LEFT}" x2="{right}" y1="{py}" y2="{py}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{py}" text-anchor="end" '
                   f'dominant-baseline="middle">{escape(format_number(t, step))}</text>')
    out.extend(_x_ticks(frame, bottom))
    out.append(f'<line class="axis" x1="{LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{bottom}"/>')
    out.append(f'<text class="axis-title" x="{num((LEFT + right) / 2)}" y="{bottom + 44}" '
               f'text-anchor="middle">{escape(clip(plot.x_title, 90))}</text>')
    mid = num(TOP + PLOT_H / 2)
    out.append(f'<text class="axis-title" x="14" y="{mid}" text-anchor="middle" '
               f'transform="rotate(-90 14 {mid})">{escape(clip(plot.y_title, 50))}</text>')
    out.append("</g>")
    return out


def _x_ticks(frame: Frame, bottom: float) -> list[str]:
    out = []
    if isinstance(frame.x, BandScale):
        names = frame.x.categories
        every = max(1, math.ceil(len(names) * (LABEL_CHARS * CHAR_W + 8) / (WIDTH - LEFT - RIGHT)))
        labelled = [(frame.x.center(c), clip(c, LABEL_CHARS), c) for c in names[::every]]
    else:
        ticks = nice_ticks(frame.x.d0, frame.x.d1)
        step = tick_step(ticks)
        labelled = [(frame.x(t), format_number(t, step), "") for t in ticks]
    for px, text, full in labelled:
        x = num(px)
        tip = f"<title>{escape(full)}</title>" if full and full != text else ""
        out.append(f'<line class="tick-mark" x1="{x}" x2="{x}" y1="{bottom}" y2="{bottom + 5}"/>')
        out.append(f'<text class="tick" x="{x}" y="{bottom + 18}" text-anchor="middle">'
                   f'{escape(text)}{tip}</text>')
    return out


def _positions(frame: Frame, s: Series) -> list[tuple[float, float, str]]:
    """(px, py, tooltip) of a series' points in drawing order."""
    points = list(s.points)
    if isinstance(frame.x, BandScale):
        order = frame.x.positions
        points = [(name, y) for name, y in ((category(x), y) for x, y in points) if name in order]
        if frame.template == "line":
            points.sort(key=lambda p: order[p[0]])
            points = thin_stride(points, LINE_BUCKETS * 4)
        elif frame.template == "scatter":
            points = thin_stride(points, MAX_SCATTER)
    elif frame.template == "line":
        points.sort(key=lambda p: p[0])
        points = thin_line(points, LINE_BUCKETS)
    elif frame.template == "scatter":
        points = thin_stride(points, MAX_SCATTER)
    return [(frame.px(x), frame.y(y), f"x={_value(x)}, y={format_number(y)}") for x, y in points]


def _value(x) -> str:
    return x if isinstance(x, str) else format_number(x)


def _tip(style: Style, text: str) -> str:
    return f"<title>{escape(clip(style.label, 80))}: {escape(clip(text, 120))}</title>"


def _shape(style: Style, px: float, py: float, size: float, cls: str, tip: str) -> str:
    x, y, shape = num(px), num(py), style.variant % 4
    fill = f'fill="{style.colour}"'
    if shape == 0:
        return f'<circle class="{cls}" cx="{x}" cy="{y}" r="{num(size)}" {fill}>{tip}</circle>'
    if shape == 1:
        return (f'<rect class="{cls}" x="{num(px - size)}" y="{num(py - size)}" '
                f'width="{num(2 * size)}" height="{num(2 * size)}" {fill}>{tip}</rect>')
    r = size * 1.4
    if shape == 2:
        d = f"M{x},{num(py - r)}L{num(px + r)},{y}L{x},{num(py + r)}L{num(px - r)},{y}Z"
    else:
        low = num(py + r * 0.8)
        d = f"M{x},{num(py - r)}L{num(px + r)},{low}L{num(px - r)},{low}Z"
    return f'<path class="{cls}" d="{d}" {fill}>{tip}</path>'


def _line_marks(frame: Frame, s: Series, style: Style) -> list[str]:
    pos = _positions(frame, s)
    if not pos:
        return []
    d = "M" + "L".join(f"{num(px)},{num(py)}" for px, py, _ in pos)
    if len(pos) == 1:
        d += "h0.01"  # a one-point line still paints its round cap
    dash = DASHES[style.variant % len(DASHES)]
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    line = (f'<path class="mark line" d="{d}" fill="none" stroke="{style.colour}"{dash_attr}>'
            f"<title>{escape(clip(style.label, 80))}</title></path>")
    out = [line]
    if len(s.points) <= MAX_MARKERS:
        dot = Style(style.colour, 0, style.label)
        out.extend(_shape(dot, px, py, 2.5, "mark point", _tip(style, tip)) for px, py, tip in pos)
    return out


def _bar_marks(frame: Frame, s: Series, style: Style, slot: int, slots: int) -> list[str]:
    band: BandScale = frame.x  # type: ignore[assignment]
    sub = band.width * band.inner / slots
    base = frame.y(min(max(0.0, frame.y.d0), frame.y.d1))
    last = {}  # one bar per x value: the last value wins
    for x, y in s.points:
        name = category(x)
        if name in band.positions:
            last[name] = y
    out = []
    for name, y in sorted(last.items(), key=lambda item: band.positions[item[0]]):
        left = band.start(name) + band.width * (1 - band.inner) / 2 + slot * sub
        py = frame.y(y)
        top, height = min(py, base), abs(base - py)
        out.append(f'<rect class="mark bar" x="{num(left)}" y="{num(top)}" width="{num(sub)}" '
                   f'height="{num(height)}" fill="{style.colour}" '
                   f'fill-opacity="{OPACITY[style.variant % len(OPACITY)]}">'
                   f"{_tip(style, f'x={name}, y={format_number(y)}')}</rect>")
    return out


def _marks(frame: Frame, series: tuple[Series, ...], looks: list[Style]) -> list[str]:
    out = []
    for slot, (s, style) in enumerate(zip(series, looks)):
        out.append(f'<g class="series" data-revision="{escape(s.revision)}" '
                   f'data-field="{escape(s.field)}">')
        if frame.template == "bar":
            out.extend(_bar_marks(frame, s, style, slot, len(series)))
        elif frame.template == "scatter":
            out.extend(_shape(style, px, py, 3.5, "mark point", _tip(style, tip))
                       for px, py, tip in _positions(frame, s))
        else:
            out.extend(_line_marks(frame, s, style))
        out.append("</g>")
    return out


def _legend_key(style: Style, template: str, x: float, y: float) -> str:
    if template == "line":
        dash = DASHES[style.variant % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        return (f'<line class="legend-key" x1="{num(x)}" x2="{num(x + 18)}" y1="{num(y)}" '
                f'y2="{num(y)}" stroke="{style.colour}"{dash_attr}/>')
    if template == "bar":
        return (f'<rect class="legend-key" x="{num(x + 3)}" y="{num(y - 6)}" width="12" '
                f'height="12" '
                f'fill="{style.colour}" fill-opacity="{OPACITY[style.variant % len(OPACITY)]}"/>')
    return _shape(style, x + 9, y, 4, "legend-key", "")


def _legend(looks: list[Style], template: str) -> tuple[list[str], int]:
    """The legend's SVG and its number of rows (entries flow left to right, then wrap)."""
    out, x, row = ['<g class="legend">'], float(LEFT), 0
    for style in looks:
        text = clip(style.label, LEGEND_CHARS)
        width = 26 + len(text) * CHAR_W + 14
        if x + width > WIDTH - RIGHT and x > LEFT:
            x, row = float(LEFT), row + 1
        y = TOP + PLOT_H + AXIS_H + row * LEGEND_ROW + 9
        out.append(_legend_key(style, template, x, y))
        out.append(f'<text class="legend-label" x="{num(x + 24)}" y="{num(y)}" '
                   f'dominant-baseline="middle">{escape(text)}</text>')
        x += width
    out.append("</g>")
    return out, (row + 1 if looks else 0)


def chart_svg(plot: Plot, number: int, colour_of: Mapping[str, int]) -> tuple[str, list[str]]:
    """The SVG of one plot, and notes about what was left out of the drawing."""
    notes: list[str] = []
    series = plot.series
    if len(series) > MAX_SERIES:
        notes.append(f"only the first {MAX_SERIES} of {len(series)} series are drawn")
        series = series[:MAX_SERIES]
    looks = styles(series, colour_of)
    frame, y_ticks = _frame(plot, series, notes)
    legend, rows = _legend(looks, frame.template)
    height = TOP + PLOT_H + AXIS_H + rows * LEGEND_ROW + 8
    opening = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-{number}" '
               f'data-template="{frame.template}" width="{WIDTH}" height="{height}" '
               f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="chart-{number}-title">')
    parts = [opening, f'<title id="chart-{number}-title">{escape(plot.title)}</title>']
    parts.extend(_axes(plot, frame, y_ticks))
    parts.extend(_marks(frame, series, looks))
    if not any(s.points for s in series):
        parts.append(f'<text class="empty" x="{num((LEFT + WIDTH - RIGHT) / 2)}" '
                     f'y="{num(TOP + PLOT_H / 2)}" text-anchor="middle">no data</text>')
    parts.extend(legend)
    parts.append("</svg>")
    notes.extend(_thinning_notes(frame, series))
    return "\n".join(parts), notes


def _thinning_notes(frame: Frame, series: tuple[Series, ...]) -> list[str]:
    longest = max((len(s.points) for s in series), default=0)
    if frame.template == "line" and longest > LINE_BUCKETS * 4:
        if isinstance(frame.x, BandScale):
            return [f"series with more than {LINE_BUCKETS * 4:,} points show every k-th point"]
        return [("long series are thinned to the first, lowest, highest and last point "
                f"of each of {LINE_BUCKETS} slices of x")]
    if frame.template == "scatter" and longest > MAX_SCATTER:
        return [f"series with more than {MAX_SCATTER:,} points show every k-th point"]
    if frame.template == "bar" and any(len({category(x) for x, _ in s.points}) < len(s.points)
                                       for s in series):
        return ["where a series has several values for one x, its bar shows the last"]
    return []
