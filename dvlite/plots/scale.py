"""Axis arithmetic for charts: nice ticks, linear and band scales, number labels, thinning."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_TICKS = 50


def _half_span(lo: float, hi: float) -> float:
    # Halves first: the span of two huge values of opposite sign would overflow to inf.
    return hi / 2 - lo / 2


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (about `count` intervals of 1, 2 or 5 x 10^k)."""
    if lo > hi:
        lo, hi = hi, lo
    if lo == hi:
        pad = abs(lo) * 0.1 or 1.0
        if math.isinf(hi + pad) or math.isinf(lo - pad):  # near the float limit: pad inwards
            lo, hi = (lo - pad, hi) if lo > 0 else (lo, hi + pad)
        else:
            lo, hi = lo - pad, hi + pad
    span = hi - lo
    if not math.isfinite(span) or span <= 0:
        return [lo, hi]
    raw = span / count
    if raw <= 0:  # a span of a few subnormal numbers
        return [lo, hi]
    step = 10.0 ** math.floor(math.log10(raw))
    ratio = raw / step  # in [1, 10): the nearest of 1, 2, 5, 10 (geometric midpoints, as d3)
    step *= 10 if ratio >= 50 ** 0.5 else 5 if ratio >= 10 ** 0.5 else 2 if ratio >= 2 ** 0.5 else 1
    first = math.floor(lo / step + 1e-9)
    intervals = math.ceil(hi / step - 1e-9) - first
    if not 1 <= intervals <= MAX_TICKS:
        return [lo, hi]
    digits = max(0, 1 - math.floor(math.log10(step)))  # rounds 6 * 0.1 to 0.6
    ticks = [round((first + i) * step, digits) for i in range(intervals + 1)]
    return ticks if math.isfinite(ticks[0]) and math.isfinite(ticks[-1]) else [lo, hi]


def tick_step(ticks: Sequence[float]) -> float:
    return ticks[1] - ticks[0] if len(ticks) > 1 else 0.0


def format_number(value: float, step: float = 0.0) -> str:
    """A short label for a number; with `step` (tick spacing), just the decimals it needs."""
    if value == 0:
        return "0"
    size = abs(value)
    if size >= 1e7 or size < 1e-4 or (step and step < 1e-4):
        return f"{value:.3g}"
    if step > 0:
        decimals = max(0, min(10, -math.floor(math.log10(step) + 1e-9)))
        text = f"{value:.{decimals}f}"
        return "0" if text.strip("-0.") == "" else text
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"


@dataclass(frozen=True)
class LinearScale:
    """Maps the domain [d0, d1] onto the pixel range [r0, r1]."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        half = _half_span(self.d0, self.d1)
        if half == 0:
            return (self.r0 + self.r1) / 2
        return self.r0 + (value / 2 - self.d0 / 2) / half * (self.r1 - self.r0)


@dataclass(frozen=True)
class BandScale:
    """Equal bands for categories across [r0, r1]; `inner` is the share a band's marks use."""

    categories: tuple[str, ...]
    r0: float
    r1: float
    inner: float = 0.8
    positions: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "positions", {c: i for i, c in enumerate(self.categories)})

    @property
    def width(self) -> float:
        return (self.r1 - self.r0) / max(1, len(self.categories))

    def start(self, category: str) -> float:
        return self.r0 + self.positions[category] * self.width

    def center(self, category: str) -> float:
        return self.start(category) + self.width / 2


def thin_line(points: Sequence[tuple[float, float]], buckets: int) -> list[tuple[float, float]]:
    """At most 4 points per bucket of x (first, lowest, highest, last): the line keeps its shape."""
    if len(points) <= buckets * 4:
        return list(points)
    x0, x1 = points[0][0], points[-1][0]
    half = _half_span(x0, x1) or 1.0
    kept: list[tuple[float, float]] = []
    group: list[tuple[float, float]] = []
    current = None
    for point in points:
        bucket = min(buckets - 1, int((point[0] / 2 - x0 / 2) / half * buckets))
        if bucket != current and group:
            kept.extend(_bucket_extremes(group))
            group = []
        current = bucket
        group.append(point)
    kept.extend(_bucket_extremes(group))
    return kept


def _bucket_extremes(group: list[tuple[float, float]]) -> list[tuple[float, float]]:
    low = min(range(len(group)), key=lambda i: group[i][1])
    high = max(range(len(group)), key=lambda i: group[i][1])
    return [group[i] for i in sorted({0, low, high, len(group) - 1})]


def thin_stride(points: Sequence, limit: int) -> list:
    """Every k-th point so that at most `limit` remain (for scatter plots)."""
    if len(points) <= limit:
        return list(points)
    stride = math.ceil(len(points) / limit)
    return list(points[::stride])
