"""Charts for terminals: sparklines of a metric over revisions, plain-text bar and line charts."""

from __future__ import annotations

from collections.abc import Sequence

from dvlite.plots.data import finite
from dvlite.plots.scale import format_number

BLOCKS = "▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉█"
GAP = " "  # a missing value in a sparkline
DOT = "•"


def sparkline(values: Sequence[object]) -> str:
    """One character per value, low to high (▁ to █); a blank where a value is missing."""
    numbers = [finite(v) for v in values]
    present = [v for v in numbers if v is not None]
    if not present:
        return GAP * len(numbers)
    lo, hi = min(present), max(present)
    out = []
    for v in numbers:
        if v is None:
            out.append(GAP)
        elif hi == lo:
            out.append(BLOCKS[len(BLOCKS) // 2 - 1])
        else:
            out.append(BLOCKS[min(len(BLOCKS) - 1, int((v - lo) / (hi - lo) * len(BLOCKS)))])
    return "".join(out)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _bar(length: float) -> str:
    """A bar `length` characters long, to an eighth of a character."""
    eighths = round(length * 8)
    return "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")


def bar_chart(items: Sequence[tuple[str, object]], width: int = 40,
              label_width: int = 20) -> list[str]:
    """One line per item: its label, a bar and its value.

    Bars grow right from zero; when some values are negative, their bars grow left from a zero
    column placed in proportion.
    """
    rows = [(str(label), finite(value)) for label, value in items]
    if not rows:
        return []
    present = [v for _, v in rows if v is not None]
    low = min([0.0, *present])
    high = max([0.0, *present])
    span = (high - low) or 1.0
    left = round(-low / span * width)  # columns for negative bars
    labels = [_clip(label, label_width) for label, _ in rows]
    pad = max(len(label) for label in labels)
    lines = []
    for label, (_, value) in zip(labels, rows):
        if value is None:
            lines.append(f"{label.ljust(pad)} │ (no value)")
            continue
        if value < 0:
            bar = ("█" * round(value / low * left)).rjust(left) + " " * (width - left)
        else:
            length = value / high * (width - left) if high else 0
            bar = " " * left + _bar(length).ljust(width - left)
        lines.append(f"{label.ljust(pad)} │{bar} {format_number(value)}")
    return lines


def _columns(count: int, width: int) -> list[int]:
    """The column each of `count` points lands in, spread over `width` columns."""
    if count == 1:
        return [0]
    return [round(i * (width - 1) / (count - 1)) for i in range(count)]


def line_chart(items: Sequence[tuple[str, object]], width: int = 60, height: int = 10) -> list[str]:
    """A dot per value on a grid of `height` rows, the y range on the left and the first and
    last x labels under the axis (several values in one column: the last one wins)."""
    width, height = max(2, width), max(2, height)
    rows = [(str(label), finite(value)) for label, value in items]
    present = [v for _, v in rows if v is not None]
    if not present:
        return ["(no values)"]
    lo, hi = min(present), max(present)
    grid = [[" "] * width for _ in range(height)]
    for column, (_, value) in zip(_columns(len(rows), width), rows):
        if value is None:
            continue
        level = 0 if hi == lo else round((value - lo) / (hi - lo) * (height - 1))
        grid[height - 1 - level][column] = DOT
    top_label, low_label = format_number(hi), format_number(lo)
    pad = max(len(top_label), len(low_label))
    lines = []
    for i, cells in enumerate(grid):
        label = top_label if i == 0 else low_label if i == height - 1 else ""
        lines.append(f"{label.rjust(pad)} ┤{''.join(cells).rstrip()}")
    lines.append(" " * pad + " └" + "─" * width)
    first, last = rows[0][0], rows[-1][0]
    under = _clip(first, width // 2 - 1)
    if len(rows) > 1:
        tail = _clip(last, width - len(under) - 1)
        under = under + " " * (width - len(under) - len(tail)) + tail
    lines.append(" " * (pad + 2) + under)
    return lines
