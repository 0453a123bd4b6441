"""Running a contract against a table.

Schema checks come from the schema alone; every row check (not_null, range, allowed,
regex) and the uniqueness spills share one streaming pass over the batches; row counts
and the relative checks against the previous version come last. Each check reports how
many rows fail and a sample of them (row number from 0, and the row's first columns).
"""

from __future__ import annotations

from dataclasses import dataclass

from dvlite.tables.contracts import ColumnRule, Contract, matches_type
from dvlite.tables.formats import TableReader, TableSource, open_table
from dvlite.tables.partition import Partitions, parts_for, row_numbers
from dvlite.tables.sketches import jsonable

SAMPLE = 5
ROW_COLUMNS = 10  # columns of a failing row shown in a sample
ROW = "__dvlite_row"


@dataclass(frozen=True)
class CheckResult:
    check: str  # columns | type | not_null | range | allowed | regex | unique | rows | row_drop | keep_columns
    target: str  # the column(s) checked, or "table"
    passed: bool
    failing_rows: int
    detail: str
    sample: list[dict]


@dataclass(frozen=True)
class ValidationReport:
    source: str
    contract: str
    rows: int
    passed: bool
    checks: list[CheckResult]


@dataclass(frozen=True)
class Baseline:
    """What the relative checks need of the previous version."""

    label: str
    columns: list[str]
    rows: int


def baseline_of(source: TableSource) -> Baseline:
    with open_table(source) as reader:
        rows = reader.num_rows
        if rows is None:
            first = reader.schema.names[:1]
            rows = sum(b.num_rows for b in reader.batches(columns=first)) if first else 0
        return Baseline(source.label, list(reader.schema.names), rows)


def _plain(arr):
    import pyarrow as pa

    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _sample_row(batch, i: int, first: str) -> dict:
    names = [first] + [n for n in batch.schema.names if n != first][:ROW_COLUMNS - 1]
    row = batch.select(names).slice(i, 1).to_pylist()[0]
    return {k: jsonable(v) for k, v in row.items()}


class _RowCheck:
    """One check evaluated batch by batch: `failing(array)` marks the rows that fail."""

    def __init__(self, check: str, column: str, detail: str, failing):
        self.check, self.column, self.detail, self.failing = check, column, detail, failing
        self.count = 0
        self.sample: list[dict] = []

    def feed(self, batch, offset: int) -> None:
        import pyarrow.compute as pc

        mask = pc.fill_null(self.failing(_plain(batch.column(self.column))), False)
        n = pc.sum(mask).as_py() or 0
        if not n:
            return
        self.count += n
        room = SAMPLE - len(self.sample)
        for i in pc.indices_nonzero(mask).slice(0, max(room, 0)).to_pylist():
            self.sample.append({"row": offset + i, **_sample_row(batch, i, self.column)})

    def result(self) -> CheckResult:
        return CheckResult(self.check, self.column, self.count == 0, self.count,
                           self.detail if self.count == 0 else f"{self.count:,} row(s) fail: {self.detail}",
                           self.sample)


def _range_check(rule: ColumnRule, arrow_type) -> _RowCheck | CheckResult:
    import pyarrow as pa
    import pyarrow.compute as pc

    bounds = []
    try:
        for value, compare in ((rule.min, pc.less), (rule.max, pc.greater)):
            if value is not None:
                scalar = pa.scalar(value)
                if pa.types.is_temporal(arrow_type) and scalar.type != arrow_type:
                    scalar = scalar.cast(arrow_type)
                compare(pa.array([], arrow_type), scalar)  # can they be compared at all?
                bounds.append((compare, scalar))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        return CheckResult("range", rule.name, False, 0,
                           f"cannot compare {arrow_type} with the contract's bounds: "
                           f"{str(exc).splitlines()[0]}", [])

    def failing(arr):
        out = None
        for compare, scalar in bounds:
            m = compare(arr, scalar)
            out = m if out is None else pc.or_(out, m)
        if pa.types.is_floating(arr.type):  # NaN is in no range
            out = pc.or_(out, pc.is_nan(arr))
        return out

    lo = "-inf" if rule.min is None else rule.min
    hi = "inf" if rule.max is None else rule.max
    return _RowCheck("range", rule.name, f"values in [{lo}, {hi}]", failing)


def _allowed_check(rule: ColumnRule, arrow_type) -> _RowCheck | CheckResult:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        value_set = pa.array(list(rule.allowed))
        if value_set.type != arrow_type:
            value_set = value_set.cast(arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return CheckResult("allowed", rule.name, False, 0,
                           f"the allowed values do not fit the column's type {arrow_type}", [])
    shown = ", ".join(map(str, rule.allowed[:8])) + (", ..." if len(rule.allowed) > 8 else "")
    return _RowCheck("allowed", rule.name, f"values in {{{shown}}}",
                     lambda arr: pc.and_(pc.is_valid(arr), pc.invert(pc.is_in(arr, value_set=value_set))))


def _regex_check(rule: ColumnRule, arrow_type) -> _RowCheck | CheckResult:
    import pyarrow.compute as pc

    if not matches_type(arrow_type, "string"):
        return CheckResult("regex", rule.name, False, 0,
                           f"regex needs a string column, found {arrow_type}", [])
    return _RowCheck("regex", rule.name, f"values match {rule.regex!r}",
                     lambda arr: pc.invert(pc.match_substring_regex(arr, pattern=rule.regex)))


def _row_checks(contract: Contract, schema) -> tuple[list[_RowCheck], list[CheckResult]]:
    """The row checks to run, and the results already known (checks that cannot run)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    checks, known = [], []
    for rule in contract.columns:
        if rule.name not in schema.names:
            continue  # the columns check reports it
        t = schema.field(rule.name).type
        t = t.value_type if pa.types.is_dictionary(t) else t
        if rule.not_null:
            checks.append(_RowCheck("not_null", rule.name, "no nulls", pc.is_null))
        built = []
        if rule.min is not None or rule.max is not None:
            built.append(_range_check(rule, t))
        if rule.allowed is not None:
            built.append(_allowed_check(rule, t))
        if rule.regex is not None:
            built.append(_regex_check(rule, t))
        checks += [b for b in built if isinstance(b, _RowCheck)]
        known += [b for b in built if isinstance(b, CheckResult)]
    return checks, known


class _UniqueCheck:
    """A key spilled by hash into parts, then counted part by part."""

    def __init__(self, key: tuple[str, ...], parts: Partitions):
        self.key, self.parts = list(key), parts

    def feed(self, batch, offset: int) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        from dvlite.tables.hashing import hash_rows

        cols = [_plain(batch.column(k)) for k in self.key]
        sub = pa.RecordBatch.from_arrays(cols + [row_numbers(offset, batch.num_rows)],
                                         names=self.key + [ROW])
        valid = None
        for c in cols:  # rows with a null in the key are not compared (as in SQL)
            v = pc.is_valid(c)
            valid = v if valid is None else pc.and_(valid, v)
        if valid is not None and not pc.all(valid).as_py():
            sub = sub.filter(valid)
        self.parts.add(sub, hash_rows([sub.column(k) for k in self.key]))

    def result(self, schema) -> CheckResult:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.parts.finish()
        empty = pa.schema([pa.field(k, _plain_type(schema.field(k).type)) for k in self.key]
                          + [pa.field(ROW, pa.int64())])
        failing, sample = 0, []
        with self.parts:
            for p in range(self.parts.count):
                g = self.parts.load(p, empty).group_by(self.key).aggregate(
                    [(ROW, "min"), ([], "count_all")])
                dup = g.filter(pc.greater(g["count_all"], 1))
                failing += pc.sum(dup["count_all"]).as_py() or 0
                for row in dup.slice(0, SAMPLE - len(sample)).to_pylist():
                    sample.append({"row": row.pop(f"{ROW}_min"), "count": row.pop("count_all"),
                                   **{k: jsonable(v) for k, v in row.items()}})
        target = ", ".join(self.key)
        detail = "no duplicates" if not failing else f"{failing:,} row(s) share a value of ({target})"
        return CheckResult("unique", target, failing == 0, failing, detail,
                           sorted(sample, key=lambda r: r["row"]))


def _plain_type(t):
    import pyarrow as pa

    return t.value_type if pa.types.is_dictionary(t) else t


def _schema_checks(contract: Contract, schema) -> list[CheckResult]:
    names = schema.names
    wanted = [r.name for r in contract.columns]
    missing = [n for n in wanted if n not in names]
    extra = [n for n in names if n not in wanted] if contract.exact_columns else []
    parts = ([f"missing: {', '.join(missing)}"] if missing else []) + \
            ([f"not in the contract: {', '.join(extra)}"] if extra else [])
    out = [CheckResult("columns", "table", not parts, 0,
                       "; ".join(parts) or ("exactly the contract's columns" if contract.exact_columns
                                            else "all the contract's columns"), [])]
    for rule in contract.columns:
        if rule.type is None or rule.name not in names:
            continue
        actual = schema.field(rule.name).type
        ok = matches_type(actual, rule.type) or matches_type(_plain_type(actual), rule.type)
        out.append(CheckResult("type", rule.name, ok, 0,
                               f"{'is' if ok else 'expected'} {rule.type}" + ("" if ok else f", found {actual}"),
                               []))
    return out


def _count_checks(contract: Contract, rows: int, names: list[str],
                  previous: Baseline | None) -> list[CheckResult]:
    out = []
    if contract.rows_min is not None or contract.rows_max is not None:
        lo, hi = contract.rows_min, contract.rows_max
        ok = (lo is None or rows >= lo) and (hi is None or rows <= hi)
        wanted = (f"between {lo:,} and {hi:,}" if lo is not None and hi is not None
                  else f"at least {lo:,}" if lo is not None else f"at most {hi:,}")
        out.append(CheckResult("rows", "table", ok, 0, f"{rows:,} rows (expected {wanted})", []))
    if contract.max_row_drop is not None:
        if previous is None or previous.rows == 0:
            out.append(CheckResult("row_drop", "table", True, 0, "no previous version to compare with", []))
        else:
            change = (rows - previous.rows) / previous.rows * 100
            ok = -change <= contract.max_row_drop
            out.append(CheckResult("row_drop", "table", ok, 0,
                                   f"{previous.rows:,} -> {rows:,} rows ({change:+.1f} %; a drop of at "
                                   f"most {contract.max_row_drop:g} % allowed, vs {previous.label})", []))
    if contract.keep_columns:
        gone = [c for c in previous.columns if c not in names] if previous else []
        detail = ("no previous version to compare with" if previous is None else
                  f"gone since {previous.label}: {', '.join(gone)}" if gone else
                  f"every column of {previous.label} is still there")
        out.append(CheckResult("keep_columns", "table", not gone, 0, detail, []))
    return out


def validate(source: TableSource, contract: Contract, previous: Baseline | None = None,
             workdir: str | None = None) -> ValidationReport:
    """Run `contract` against the table; `workdir` is where uniqueness checks may spill."""
    with open_table(source) as reader:
        results = _schema_checks(contract, reader.schema)
        row_checks, known = _row_checks(contract, reader.schema)
        uniques: list[_UniqueCheck] = []
        rows = 0
        try:
            unique_known = _unique_checks(contract, reader, workdir, uniques)
            if row_checks or uniques or reader.num_rows is None:
                for batch in reader.batches(columns=_needed(row_checks, uniques, reader)):
                    for check in row_checks:
                        check.feed(batch, rows)
                    for u in uniques:
                        u.feed(batch, rows)
                    rows += batch.num_rows
            else:
                rows = reader.num_rows
            results += [c.result() for c in row_checks] + known
            results += [u.result(reader.schema) for u in uniques] + unique_known
        finally:
            for u in uniques:
                u.parts.close()
    results += _count_checks(contract, rows, list(reader.schema.names), previous)
    return ValidationReport(source.label, contract.origin, rows, all(r.passed for r in results), results)


def _needed(row_checks, uniques, reader: TableReader) -> list[str]:
    """The columns the checks read, plus the first few that samples show."""
    names = reader.schema.names
    wanted = {c.column for c in row_checks} | {k for u in uniques for k in u.key}
    if row_checks:
        wanted |= set(names[:ROW_COLUMNS])
    return [n for n in names if n in wanted] or names[:1]


def _unique_checks(contract: Contract, reader: TableReader, workdir: str | None,
                   run: list[_UniqueCheck]) -> list[CheckResult]:
    """Append the uniqueness checks that can run to `run`; return those that cannot."""
    known = []
    total = max(1, len(reader.schema.names))
    for key in dict.fromkeys(contract.unique):
        missing = [k for k in key if k not in reader.schema.names]
        if missing:
            known.append(CheckResult("unique", ", ".join(key), False, 0,
                                     f"no column {missing[0]!r} in the table", []))
            continue
        share = reader.estimated_bytes * (len(key) + 1) // total
        count = parts_for(share) if workdir else 1
        run.append(_UniqueCheck(key, Partitions(count, workdir or "", f"unique-{len(run)}")))
    return known
