"""Per-column statistics of a table in one streaming pass, and their cache by object digest.

For every column: nulls, a distinct-count estimate, min and max; for numbers also NaNs,
mean, standard deviation and 101 quantiles (0 %, 1 %, ..., 100 %) from a uniform row sample;
for every column with at most 1,000 distinct values their exact counts (strings with more
get approximate top values from the sample). Drift is computed from these alone, so a
history over many versions never reads the data again.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, fields

from dvlite.fsutil import atomic_write, makedirs
from dvlite.tables import sketches
from dvlite.tables.formats import TableReader, TableSource, open_table

STATS_VERSION = 1
STATS_BATCH_ROWS = 1 << 16
QUANTILE_LEVELS = 101
TOP_SHOWN = 20  # approximate top values kept for a string column with too many to count
_DIGEST = re.compile(r"^[0-9a-f]{32}$")
_MAX_FILE = 16 << 20


@dataclass(frozen=True)
class ColumnStats:
    name: str
    type: str  # the Arrow type, as pyarrow prints it
    kind: str  # number | temporal | string | boolean | binary | other
    nullable: bool
    nulls: int
    nans: int
    distinct: int
    distinct_exact: bool
    min: object  # JSON scalars (dates and times as ISO text); None when no values
    max: object
    mean: float | None
    std: float | None
    quantiles: list | None  # numbers and temporal (as their integer representation)
    values: list | None  # [value, count] pairs, most frequent first
    values_exact: bool  # `values` lists every distinct value with its exact count


@dataclass(frozen=True)
class TableStats:
    format: str
    rows: int
    sample_rows: int
    columns: tuple[ColumnStats, ...]

    def column(self, name: str) -> ColumnStats | None:
        return next((c for c in self.columns if c.name == name), None)

    def to_json(self) -> bytes:
        doc = {"version": STATS_VERSION, "format": self.format, "rows": self.rows,
               "sample_rows": self.sample_rows, "columns": [asdict(c) for c in self.columns]}
        return (json.dumps(doc, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> TableStats:
        """Parse a stats file; ValueError (or KeyError, TypeError) when it is not one."""
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != STATS_VERSION:
            raise ValueError("not a stats file of this version")
        names = {f.name for f in fields(ColumnStats)}
        columns = []
        for raw in doc["columns"]:
            if set(raw) != names:
                raise ValueError("column fields differ")
            columns.append(ColumnStats(**raw))
        return cls(str(doc["format"]), int(doc["rows"]), int(doc["sample_rows"]), tuple(columns))


def kind_of(arrow_type) -> str:
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_temporal(t) and getattr(t, "bit_width", 0) in (32, 64):
        return "temporal"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    return "other"


class _Column:
    """Everything gathered about one column during the pass."""

    def __init__(self, field):
        self.field = field
        self.kind = kind_of(field.type)
        self.nulls = 0
        self.nans = 0
        self.lo = self.hi = None
        self.distinct = sketches.DistinctSketch()
        self.counter = sketches.ValueCounter()
        self.moments = sketches.Moments()

    def add(self, arr) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        from dvlite.tables.hashing import hash_array

        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        self.nulls += arr.null_count
        valid = pc.drop_null(arr) if arr.null_count else arr
        if len(valid) == 0:
            return
        if pa.types.is_floating(valid.type):
            clean = valid.filter(pc.invert(pc.is_nan(valid)))
            if len(clean) < len(valid):
                self.nans += len(valid) - len(clean)
                self.distinct.add(hash_array(pa.array([float("nan")])))
            valid = clean
        if self.kind in ("number", "temporal", "string", "boolean") and len(valid):
            self._extremes(valid)
        # while the counter still counts, its distinct values are all the sketch needs
        distinct = self.counter.add(valid) if self.kind not in ("binary", "other") else None
        if self.kind != "other" and len(valid):
            self.distinct.add(hash_array(distinct if distinct is not None else valid))
        if self.kind == "number":
            floats = pc.cast(valid, pa.float64())
            self.moments.add(floats.filter(pc.is_finite(floats)))

    def _extremes(self, valid) -> None:
        import pyarrow.compute as pc

        mm = pc.min_max(valid)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is None:
            return
        self.lo = lo if self.lo is None or lo < self.lo else self.lo
        self.hi = hi if self.hi is None or hi > self.hi else self.hi


def _sampled(batch, columns: list[_Column]):
    """The batch's columns worth sampling, long strings cut to TEXT_CAP characters."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays, names = [], []
    for col in columns:
        if col.kind not in ("number", "temporal", "string", "boolean"):
            continue
        arr = batch.column(col.field.name)
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if col.kind == "string":
            arr = pc.utf8_slice_codeunits(arr, 0, sketches.TEXT_CAP)
        arrays.append(arr)
        names.append(col.field.name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _quantiles(values, kind: str) -> list | None:
    """QUANTILE_LEVELS evenly spaced quantiles (linear interpolation) of a sample column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if values is None:
        return None
    if kind == "temporal":
        values = values.view(pa.int64() if values.type.bit_width == 64 else pa.int32())
    floats = pc.cast(pc.drop_null(values), pa.float64())
    ordered = pc.take(floats, pc.array_sort_indices(floats))
    finite = [v for v in ordered.to_pylist() if not math.isnan(v)]
    if not finite:
        return None
    out, last = [], len(finite) - 1
    for i in range(QUANTILE_LEVELS):
        pos = last * i / (QUANTILE_LEVELS - 1)
        lo = int(pos)
        frac = pos - lo
        hi_value = finite[min(lo + 1, last)]
        out.append(finite[lo] + (hi_value - finite[lo]) * frac if frac else finite[lo])
    return [sketches.jsonable(v) for v in out]


def _top_from_sample(values, rows_seen: int, sample_rows: int) -> list:
    """Approximate [value, count] of the most frequent values, scaled up from the sample."""
    import pyarrow.compute as pc

    if values is None or sample_rows == 0:
        return []
    vc = pc.value_counts(pc.drop_null(values))
    pairs = sorted(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()),
                   key=lambda p: (-p[1], str(p[0])))[:TOP_SHOWN]
    scale = rows_seen / sample_rows
    return [[sketches.jsonable(v), round(c * scale)] for v, c in pairs if c > 1]


def _finish(col: _Column, sample, rows: int, sample_rows: int) -> ColumnStats:
    name = col.field.name
    values = col.counter.ranked()
    exact = values is not None
    if values is None and col.kind == "string":
        values = _top_from_sample(sample.column(name), rows, sample_rows)
    distinct, distinct_exact = col.distinct.estimate()
    if exact:  # the counter saw every value: its count is the true distinct count
        distinct, distinct_exact = len(values) + (1 if col.nans else 0), True
    mean, std = col.moments.result()
    numeric = col.kind in ("number", "temporal")
    return ColumnStats(
        name=name, type=str(col.field.type), kind=col.kind, nullable=col.field.nullable,
        nulls=col.nulls, nans=col.nans, distinct=distinct, distinct_exact=distinct_exact,
        min=sketches.jsonable(col.lo), max=sketches.jsonable(col.hi),
        mean=sketches.jsonable(mean), std=sketches.jsonable(std),
        quantiles=_quantiles(sample.column(name), col.kind) if numeric else None,
        values=values, values_exact=exact,
    )


def compute_stats(reader: TableReader) -> TableStats:
    """Statistics of every column, in one pass over the reader's batches."""
    columns = [_Column(f) for f in reader.schema]
    sample = sketches.RowSample()
    rows = 0
    for batch in reader.batches(batch_rows=STATS_BATCH_ROWS):
        rows += batch.num_rows
        for col in columns:
            col.add(batch.column(col.field.name))
        sample.add(_sampled(batch, columns))
    sample_rows = 0 if sample.table is None else sample.table.num_rows
    return TableStats(reader.source.format, rows, sample_rows,
                      tuple(_finish(c, sample, rows, sample_rows) for c in columns))


class StatsCache:
    """Statistics stored once per (object digest, format) as small JSON files in `directory`.

    A file that cannot be read, does not parse, or has another version is a miss: the
    statistics are computed again and the file replaced. Deleting the directory is safe.
    """

    def __init__(self, directory: str):
        self.directory = directory

    def path(self, digest: str, fmt: str) -> str:
        if not _DIGEST.match(digest):
            raise ValueError(f"bad digest {digest!r}")
        return os.path.join(self.directory, digest[:2], f"{digest[2:]}.{fmt}.json")

    def get(self, digest: str, fmt: str) -> TableStats | None:
        try:
            with open(self.path(digest, fmt), "rb") as f:
                data = f.read(_MAX_FILE + 1)
            if len(data) > _MAX_FILE:
                return None
            stats = TableStats.from_json(data)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return stats if stats.format == fmt else None

    def put(self, digest: str, fmt: str, stats: TableStats) -> None:
        path = self.path(digest, fmt)
        makedirs(os.path.dirname(path))
        atomic_write(path, stats.to_json(), durable=False)

    def stats(self, source: TableSource) -> TableStats:
        """The source's statistics: from the cache when its digest is known, else computed.

        An object read from the cache is verified before its statistics are stored, so
        the cache never holds statistics of corrupt bytes.
        """
        if source.digest is not None:
            cached = self.get(source.digest, source.format)
            if cached is not None:
                return cached
        with open_table(source) as reader:
            stats = compute_stats(reader)
        if source.digest is not None:
            source.check_intact()
            with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
                self.put(source.digest, source.format, stats)
        return stats
