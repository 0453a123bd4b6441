"""Drift between two versions of a table, computed from their cached statistics alone.

Per column: for numbers and times the population stability index (PSI) over ten bins cut
at A's deciles and the Kolmogorov–Smirnov statistic (largest gap between the two
cumulative distributions); for strings and booleans PSI and the Jensen–Shannon distance
(base 2, between 0 and 1) over their value counts; for every column the change in null
rate, and for columns with few values (exact counts on both sides) the relative change in
distinct values. A metric above its threshold marks the column as drifted.

Distributions come from the statistics: exact value counts when a column has at most
1,000 distinct values, else 101 quantiles of a 10,000-row uniform sample (so KS is
resolved to about 0.01, and PSI to the sample's accuracy).
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, field

from dvlite.tables.stats import ColumnStats, TableStats

EPSILON = 1e-4  # the share given to an empty bin, so PSI stays finite
NUMERIC = ("number", "temporal")
CATEGORICAL = ("string", "boolean")


@dataclass(frozen=True)
class Thresholds:
    psi: float = 0.2
    ks: float = 0.1
    js: float = 0.1
    null_rate: float = 0.05  # absolute change in the share of nulls
    cardinality: float = 0.5  # relative change in distinct values (few-valued columns)


@dataclass(frozen=True)
class DriftSettings:
    default: Thresholds = Thresholds()
    columns: dict[str, Thresholds] = field(default_factory=dict)

    def for_column(self, name: str) -> Thresholds:
        return self.columns.get(name, self.default)


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str
    status: str  # ok | drift | added | removed | kind changed
    psi: float | None
    ks: float | None
    js: float | None
    null_rate_a: float | None
    null_rate_b: float | None
    distinct_a: int | None
    distinct_b: int | None
    reasons: list[str]  # each metric over its threshold: "psi 0.31 > 0.2"


@dataclass(frozen=True)
class DriftReport:
    a: str
    b: str
    rows_a: int
    rows_b: int
    columns: list[ColumnDrift]
    drifted: list[str]
    verdict: str  # "no drift" | "drift"


# --- distributions ------------------------------------------------------------------------

def _as_float(v) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if v in ("inf", "-inf", "nan"):
        return float(v)
    return None


def _shares(counts: dict, total: int) -> dict:
    return {k: c / total for k, c in counts.items()} if total else {}


def _categorical(col: ColumnStats, rows: int) -> dict | None:
    """Shares of each value among the non-null values; the unlisted rest as one bucket."""
    if col.values is None or (not col.values and not col.values_exact):
        return None
    non_null = rows - col.nulls
    counts = {("v", str(v)): c for v, c in col.values}
    rest = non_null - sum(counts.values())
    if rest > 0:
        counts[("rest",)] = rest
    return _shares(counts, non_null)


def psi(p: dict, q: dict) -> float:
    total = 0.0
    for k in set(p) | set(q):
        a, b = max(p.get(k, 0.0), EPSILON), max(q.get(k, 0.0), EPSILON)
        total += (b - a) * math.log(b / a)
    return total


def js_distance(p: dict, q: dict) -> float:
    def kl(x: dict, m: dict) -> float:
        return sum(v * math.log2(v / m[k]) for k, v in x.items() if v > 0)

    m = {k: (p.get(k, 0.0) + q.get(k, 0.0)) / 2 for k in set(p) | set(q)}
    return math.sqrt(max(0.0, (kl(p, m) + kl(q, m)) / 2))


def _cdf_from_quantiles(qs: list[float]):
    levels = len(qs) - 1

    def cdf(x: float) -> float:
        if x < qs[0]:
            return 0.0
        i = bisect.bisect_right(qs, x) - 1
        if i >= levels:
            return 1.0
        frac = (x - qs[i]) / (qs[i + 1] - qs[i]) if qs[i + 1] > qs[i] else 0.0
        return (i + frac) / levels

    return cdf


def _cdf_from_counts(points: list[tuple[float, int]]):
    total = sum(c for _, c in points) or 1
    xs, cum, run = [], [], 0
    for x, c in sorted(points):
        run += c
        xs.append(x)
        cum.append(run / total)

    def cdf(x: float) -> float:
        i = bisect.bisect_right(xs, x) - 1
        return 0.0 if i < 0 else cum[i]

    return cdf


def _numeric_points(col: ColumnStats) -> list[tuple[float, int]] | None:
    if not col.values_exact or col.values is None or col.kind != "number":
        return None
    points = [(_as_float(v), c) for v, c in col.values]
    return None if any(x is None or math.isnan(x) for x, _ in points) else points


def _numeric_metrics(a: ColumnStats, b: ColumnStats) -> tuple[float | None, float | None]:
    """(PSI, KS) of two numeric columns: exact for few-valued ones, else from quantiles."""
    pa_, pb_ = _numeric_points(a), _numeric_points(b)
    if pa_ is not None and pb_ is not None:
        fa, fb = _cdf_from_counts(pa_), _cdf_from_counts(pb_)
        xs = sorted({x for x, _ in pa_} | {x for x, _ in pb_})
        ks = max((abs(fa(x) - fb(x)) for x in xs), default=0.0)
        sa, sb = sum(c for _, c in pa_) or 1, sum(c for _, c in pb_) or 1
        return psi({x: c / sa for x, c in pa_}, {x: c / sb for x, c in pb_}), ks
    qa, qb = _quantile_values(a), _quantile_values(b)
    if qa is None or qb is None:
        return None, None
    fa, fb = _cdf_from_quantiles(qa), _cdf_from_quantiles(qb)
    ks = max(abs(fa(x) - fb(x)) for x in sorted(set(qa) | set(qb)))
    edges = sorted(set(qa[10:100:10]))
    cuts = [-math.inf] + edges + [math.inf]

    def bins(cdf) -> dict:
        return {i: (1.0 if hi == math.inf else cdf(hi)) - (0.0 if lo == -math.inf else cdf(lo))
                for i, (lo, hi) in enumerate(itertools.pairwise(cuts))}

    return psi(bins(fa), bins(fb)), ks


def _quantile_values(col: ColumnStats) -> list[float] | None:
    if not col.quantiles:
        return None
    qs = [_as_float(v) for v in col.quantiles]
    if any(q is None or not math.isfinite(q) for q in qs):
        return None
    return qs


# --- the report -----------------------------------------------------------------------------

def _null_rate(col: ColumnStats, rows: int) -> float | None:
    return col.nulls / rows if rows else None


def _over(name: str, value: float | None, limit: float, reasons: list[str]) -> None:
    if value is not None and value > limit:
        reasons.append(f"{name} {value:.3g} > {limit:g}")


def compare_column(a: ColumnStats, b: ColumnStats, rows_a: int, rows_b: int,
                   limits: Thresholds) -> ColumnDrift:
    psi_v = ks_v = js_v = None
    reasons: list[str] = []
    if a.kind != b.kind:
        return ColumnDrift(b.name, b.kind, "kind changed", None, None, None,
                           _null_rate(a, rows_a), _null_rate(b, rows_b), a.distinct, b.distinct,
                           [f"kind {a.kind} -> {b.kind}"])
    if rows_a - a.nulls > 0 and rows_b - b.nulls > 0:
        if a.kind in NUMERIC:
            psi_v, ks_v = _numeric_metrics(a, b)
        elif a.kind in CATEGORICAL:
            p, q = _categorical(a, rows_a), _categorical(b, rows_b)
            if p is not None and q is not None:
                psi_v, js_v = psi(p, q), js_distance(p, q)
    _over("psi", psi_v, limits.psi, reasons)
    _over("ks", ks_v, limits.ks, reasons)
    _over("js", js_v, limits.js, reasons)
    na, nb = _null_rate(a, rows_a), _null_rate(b, rows_b)
    if na is not None and nb is not None:
        _over("null rate change", abs(nb - na), limits.null_rate, reasons)
    if a.values_exact and b.values_exact and a.distinct:
        _over("distinct change", abs(b.distinct - a.distinct) / a.distinct, limits.cardinality, reasons)
    return ColumnDrift(b.name, b.kind, "drift" if reasons else "ok", psi_v, ks_v, js_v, na, nb,
                       a.distinct, b.distinct, reasons)


def compare(a: TableStats, b: TableStats, a_label: str, b_label: str,
            settings: DriftSettings = DriftSettings(), columns: list[str] | None = None) -> DriftReport:
    """Drift from version A to version B, for `columns` (default: every column)."""
    wanted = set(columns) if columns else None
    out: list[ColumnDrift] = []
    b_names = {c.name for c in b.columns}
    for col in b.columns:
        if wanted is not None and col.name not in wanted:
            continue
        old = a.column(col.name)
        if old is None:
            out.append(ColumnDrift(col.name, col.kind, "added", None, None, None, None,
                                   _null_rate(col, b.rows), None, col.distinct, []))
            continue
        out.append(compare_column(old, col, a.rows, b.rows, settings.for_column(col.name)))
    for col in a.columns:
        if col.name not in b_names and (wanted is None or col.name in wanted):
            out.append(ColumnDrift(col.name, col.kind, "removed", None, None, None,
                                   _null_rate(col, a.rows), None, col.distinct, None, []))
    drifted = [c.column for c in out if c.status in ("drift", "kind changed")]
    return DriftReport(a_label, b_label, a.rows, b.rows, out, drifted, "drift" if drifted else "no drift")
