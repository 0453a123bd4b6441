"""Small mergeable summaries of a column seen one batch at a time.

- `DistinctSketch`: k minimum values (KMV) of 64-bit hashes; exact below k distinct values,
  else an estimate with a relative standard error of about 1/sqrt(k) (1.6 % for k = 4096).
- `RowSample`: a uniform sample of k rows (bottom-k of a seeded random key per row), the
  same rows for every column; quantiles and drift come from it.
- `ValueCounter`: exact counts of every distinct value while there are at most `cap` of
  them; beyond that it gives up (top values then come from the row sample).
- `Moments`: count, mean and the sum of squared deviations, merged batch by batch with
  Chan's parallel formula (numerically stable).
"""

from __future__ import annotations

import datetime
import decimal
import math

KMV_K = 4096
SAMPLE_ROWS = 10_000
VALUE_CAP = 1000
TEXT_CAP = 200  # characters of a string value kept in counts and samples
SAMPLE_KEY = "__dvlite_sample_key"


class DistinctSketch:
    def __init__(self, k: int = KMV_K):
        self.k = k
        self.kept = None  # the smallest distinct hashes seen, at most k (uint64 Array)
        self.tau: int | None = None  # the largest kept hash once k are kept

    def add(self, hashes) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.tau is not None:
            hashes = hashes.filter(pc.less(hashes, pa.scalar(self.tau, pa.uint64())))
        if len(hashes) == 0:
            return
        merged = pc.unique(hashes if self.kept is None else pa.concat_arrays([self.kept, hashes]))
        if len(merged) >= self.k:
            merged = merged.take(pc.select_k_unstable(merged, self.k, [("v", "ascending")]))
            self.tau = pc.max(merged).as_py()
        self.kept = merged

    def estimate(self) -> tuple[int, bool]:
        """(distinct count, whether it is exact)."""
        if self.kept is None:
            return 0, True
        if self.tau is None:
            return len(self.kept), True
        return round((self.k - 1) / ((self.tau + 1) / 2.0**64)), False


class RowSample:
    """Bottom-k sampling: every row gets a seeded random key; the k smallest keys are kept."""

    def __init__(self, k: int = SAMPLE_ROWS):
        self.k = k
        self.table = None
        self.tau: float | None = None
        self._seed = 0

    def add(self, batch) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        keys = pc.random(batch.num_rows, initializer=self._seed)
        self._seed += 1
        table = pa.Table.from_batches([batch]).append_column(SAMPLE_KEY, keys)
        if self.tau is not None:
            table = table.filter(pc.less(keys, self.tau))
        if table.num_rows == 0:
            return
        merged = table if self.table is None else pa.concat_tables([self.table, table])
        if merged.num_rows >= self.k:
            merged = merged.take(pc.select_k_unstable(merged, self.k, [(SAMPLE_KEY, "ascending")]))
            self.tau = pc.max(merged[SAMPLE_KEY]).as_py()
        self.table = merged.combine_chunks()

    def column(self, name: str):
        return None if self.table is None else self.table[name].combine_chunks()


def jsonable(value):
    """A value as a JSON scalar: dates and times as ISO text, long strings cut."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value[:TEXT_CAP // 2].hex()
    if isinstance(value, str) and len(value) > TEXT_CAP:
        return value[:TEXT_CAP] + "…"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)[:TEXT_CAP]


class ValueCounter:
    def __init__(self, cap: int = VALUE_CAP):
        self.cap = cap
        self.counts: dict | None = {}

    def add(self, values):
        """Count the values; return the distinct values of this batch while counting, else None."""
        import pyarrow.compute as pc

        if self.counts is None or len(values) == 0:
            return None
        vc = pc.value_counts(values)
        if len(vc) > self.cap:
            self.counts = None
            return None
        distinct = vc.field("values")
        for value, count in zip(distinct.to_pylist(), vc.field("counts").to_pylist()):
            key = jsonable(value)
            self.counts[key] = self.counts.get(key, 0) + count
        if len(self.counts) > self.cap:
            self.counts = None
        return distinct

    def ranked(self) -> list[list] | None:
        """[value, count] pairs, most frequent first (ties by value), or None when given up."""
        if self.counts is None:
            return None
        return [[v, c] for v, c in sorted(self.counts.items(), key=lambda vc: (-vc[1], str(vc[0])))]


class Moments:
    def __init__(self):
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, values) -> None:
        """Merge the finite values of a float64 array."""
        import pyarrow.compute as pc

        n_b = len(values)
        if n_b == 0:
            return
        mean_b = pc.mean(values).as_py()
        m2_b = pc.variance(values, ddof=0).as_py() * n_b
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n

    def result(self) -> tuple[float | None, float | None]:
        """(mean, sample standard deviation); None where undefined."""
        if self.n == 0:
            return None, None
        std = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None
        return self.mean, std
