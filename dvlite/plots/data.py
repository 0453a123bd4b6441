"""Plot data files (CSV, TSV, JSON, YAML) read into tables, and the series a plot draws from them.

Everything here is untrusted input (files from other people's commits): sizes are bounded and
every malformed file is a one-line FormatError naming it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dvlite import yamldoc
from dvlite.errors import FormatError
from dvlite.plots.spec import STEP, Plot, PlotSpec, Series

MAX_BYTES = 32 * 1024 * 1024  # a plot data file
MAX_YAML_BYTES = 8 * 1024 * 1024  # YAML parses at about 1 MB/s
MAX_ROWS = 500_000
MAX_FIELDS = 1_000
MAX_CELLS = 5_000_000  # rows x fields
MAX_DEPTH = 8  # how deep a JSON/YAML object is searched for its list of records
MAX_SEARCH = 10_000  # objects searched for it
FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}

Value = int | float | str | bool | None
_END = object()
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d{1,18}")
_SPECIAL = {"nan": math.nan, "+nan": math.nan, "-nan": math.nan, "inf": math.inf,
            "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf, "-infinity": -math.inf}


@dataclass(frozen=True)
class Table:
    """The records of one data file, by column: every column has one value per row."""

    origin: str  # the file as messages name it, e.g. "eval/train.csv" or "eval/train.csv at HEAD"
    fields: tuple[str, ...]  # in the order the file first names them
    columns: tuple[tuple[Value, ...], ...]  # one per field

    @property
    def rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def column(self, name: str) -> tuple[Value, ...]:
        return self.columns[self.fields.index(name)]


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def data_format(path: str) -> str:
    """csv | tsv | json | yaml, by the file's extension."""
    ext = posixpath.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise FormatError(f"{path}: unsupported plot data format {ext or '(no extension)'!r}",
                          hint="plot data files are .csv, .tsv, .json, .yaml or .yml")
    return FORMATS[ext]


def read_table(path: str, origin: str = "", header: bool = True, want: Iterable[str] = ()) -> Table:
    """The table in the workspace file at `path`; `origin` names it in messages (default: path)."""
    origin = origin or path
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_BYTES:
                raise _too_big(origin)
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise FormatError(f"{origin}: not found") from None
    except IsADirectoryError:
        raise FormatError(f"{origin}: is a directory, not a plot data file") from None
    except OSError as exc:
        raise FormatError(f"{origin}: cannot read ({exc.strerror or exc})") from None
    return parse_table(data, path, origin, header=header, want=want)


def parse_table(data: bytes, path: str, origin: str = "", header: bool = True,
                want: Iterable[str] = ()) -> Table:
    """The table in `data`, the bytes of the file `path` (its extension gives the format).

    `origin` names the file in messages (default: `path`; e.g. "eval/train.csv at HEAD").
    `header=False` reads a CSV/TSV without a header row (fields are then "0", "1", ...).
    `want` names fields the caller needs: a JSON/YAML object holding several lists of records
    gives the first list that has them (as DVC does).
    """
    origin = origin or path
    fmt = data_format(path)
    if len(data) > MAX_BYTES:
        raise _too_big(origin)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{origin}: not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise FormatError(f"{origin}: holds NUL bytes, not text (byte {text.index(chr(0))})")
    if fmt in ("csv", "tsv"):
        return _parse_delimited(text, origin, "," if fmt == "csv" else "\t", header)
    if fmt == "yaml" and len(data) > MAX_YAML_BYTES:
        raise FormatError(f"{origin}: YAML plot data larger than "
                          f"{MAX_YAML_BYTES // (1024 * 1024)} MiB is too slow to read",
                          hint="write large plot data as CSV or JSON")
    doc = _parse_json(text, origin) if fmt == "json" else _parse_yaml(data, origin)
    return _table_from_records(_records(doc, origin, tuple(want)), origin)


def _too_big(origin: str) -> FormatError:
    return FormatError(f"{origin}: larger than {MAX_BYTES // (1024 * 1024)} MiB, too big to plot")


def _parse_json(text: str, origin: str):
    try:
        return json.loads(text)
    except RecursionError:
        raise FormatError(f"{origin}: invalid JSON (nested too deeply)") from None
    except ValueError as exc:
        raise FormatError(f"{origin}: invalid JSON ({str(exc).splitlines()[0][:120]})") from None


def _parse_yaml(data: bytes, origin: str):
    try:
        return yamldoc.load(data, origin)
    except RecursionError:
        raise FormatError(f"{origin}: invalid YAML (nested too deeply)") from None


def _cell(text: str) -> Value:
    """A CSV/TSV cell: a number when it reads as one, None when empty, else the text."""
    s = text.strip()
    if not s:
        return None
    if _NUMBER.fullmatch(s):
        return int(s) if _INTEGER.fullmatch(s) else float(s)
    return _SPECIAL.get(s.lower(), text)


def _parse_delimited(text: str, origin: str, delimiter: str, header: bool) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    names: list[str] | None = None
    rows: list[list[Value]] = []
    width = 0
    try:
        for raw in reader:
            if not raw or (len(raw) == 1 and not raw[0].strip()):
                continue  # blank line
            if header and names is None:
                names = _header_names(raw, origin)
                width = len(names)
                continue
            if names is not None and len(raw) > width:
                raise FormatError(f"{origin}: line {reader.line_num}: {len(raw)} values, "
                                  f"but the header names {width} fields")
            width = max(width, len(raw))
            _check_size(len(rows) + 1, width, origin)
            rows.append([_cell(v) for v in raw])
    except csv.Error as exc:
        raise FormatError(f"{origin}: line {reader.line_num}: {exc}") from None
    fields = names if names is not None else [str(i) for i in range(width)]
    columns = [tuple(row[i] if i < len(row) else None for row in rows) for i in range(len(fields))]
    return Table(origin, tuple(fields), tuple(columns))


def _header_names(raw: list[str], origin: str) -> list[str]:
    if len(raw) > MAX_FIELDS:
        raise FormatError(f"{origin}: more than {MAX_FIELDS} fields")
    # An unnamed cell is named by its position (pandas leaves its index column unnamed).
    names = [name.strip() or str(i) for i, name in enumerate(raw)]
    seen = set()
    for name in names:
        if name in seen:
            raise FormatError(f"{origin}: the header names the field {name!r} twice")
        seen.add(name)
    return names


def _check_size(rows: int, fields: int, origin: str) -> None:
    if rows > MAX_ROWS:
        raise FormatError(f"{origin}: more than {MAX_ROWS:,} rows, too many to plot")
    if fields > MAX_FIELDS:
        raise FormatError(f"{origin}: more than {MAX_FIELDS} fields")
    if rows * fields > MAX_CELLS:
        raise FormatError(f"{origin}: more than {MAX_CELLS:,} values, too many to plot")


def _record_lists(doc: dict):
    """Lists of objects inside an object, in document order (DVC searches the same way);
    the search stops after MAX_SEARCH values (YAML aliases can repeat one object endlessly)."""
    stack, visited = [iter(doc.values())], 0
    while stack and visited < MAX_SEARCH:
        value = next(stack[-1], _END)
        if value is _END:
            stack.pop()
            continue
        visited += 1
        if isinstance(value, list) and all(isinstance(v, dict) for v in value[:1000]):
            yield value
        elif isinstance(value, dict) and len(stack) <= MAX_DEPTH:
            stack.append(iter(value.values()))


def _records(doc, origin: str, want: tuple[str, ...]) -> list:
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict):
        kind = "empty" if doc is None else f"a {type(doc).__name__}"
        raise FormatError(f"{origin}: is {kind}; plot data is a list of records "
                          "or an object holding one")
    first = None
    for candidate in _record_lists(doc):
        first = candidate if first is None else first
        if not want or any(all(f in rec for f in want) for rec in candidate[:1000]):
            return candidate
    if first is None:
        raise FormatError(f"{origin}: holds no list of records",
                          hint="plot data is a list of objects, e.g. [{step: 0, loss: 0.9}, ...]")
    return first


def _scalar(value) -> Value:
    """A record's value as a cell: nested lists and objects cannot be plotted."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return None


def _table_from_records(records: list, origin: str) -> Table:
    if len(records) > MAX_ROWS:
        raise FormatError(f"{origin}: more than {MAX_ROWS:,} rows, too many to plot")
    columns: dict[str, list[Value]] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            kind = type(record).__name__
            raise FormatError(f"{origin}: record {i + 1} is a {kind}, not an object")
        for key, value in record.items():
            name = str(key)
            column = columns.get(name)
            if column is None:
                _check_size(i + 1, len(columns) + 1, origin)
                column = columns[name] = [None] * i
            elif len(column) > i:
                continue  # YAML keys 1 and "1" name the same field
            column.append(_scalar(value))
        for column in columns.values():
            if len(column) == i:
                column.append(None)
        _check_size(i + 1, len(columns), origin)
    return Table(origin, tuple(columns), tuple(tuple(c) for c in columns.values()))


def numeric_fields(table: Table) -> list[str]:
    """Fields whose values are all numbers (at least one; empty cells aside)."""
    out = []
    for name, column in zip(table.fields, table.columns):
        values = [v for v in column if v is not None]
        if values and all(is_number(v) for v in values):
            out.append(name)
    return out


def _missing_field(table: Table, name: str) -> FormatError:
    shown = ", ".join(table.fields[:20]) + (", ..." if len(table.fields) > 20 else "")
    return FormatError(f"{table.origin}: no field {name!r}", hint=f"its fields: {shown or 'none'}")


def choose_fields(table: Table, spec: PlotSpec) -> tuple[str, tuple[str, ...]]:
    """(x, ys) for a table: the spec's fields, else the row index and the last numeric field."""
    for name in ((spec.x,) if spec.x != STEP else ()) + spec.y:
        if name not in table.fields:
            raise _missing_field(table, name)
    if spec.y:
        return spec.x, spec.y
    candidates = [f for f in numeric_fields(table) if f != spec.x]
    if not candidates:
        raise FormatError(f"{table.origin}: no numeric field to plot",
                          hint="name the field with the plot's y option")
    return spec.x, (candidates[-1],)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def extract_points(table: Table, x: str, y: str) -> tuple[tuple[float | str, float], ...]:
    """(x, y) pairs in row order; rows with an empty, NaN or infinite value are left out."""
    if y not in table.fields:
        raise _missing_field(table, y)
    if x != STEP and x not in table.fields:
        raise _missing_field(table, x)
    xs: Sequence = range(table.rows) if x == STEP else table.column(x)
    numeric_x = all(is_number(v) for v in xs if v is not None)
    points = []
    for row, (xv, yv) in enumerate(zip(xs, table.column(y)), start=1):
        if yv is None or xv is None:
            continue
        if not is_number(yv):
            raise FormatError(f"{table.origin}: row {row}: {y} is {_show(yv)}, not a number")
        try:
            yf = float(yv)
            xv = float(xv) if numeric_x else _category(xv)
        except OverflowError:
            raise FormatError(f"{table.origin}: row {row}: a number too large to plot") from None
        if math.isfinite(yf) and (not numeric_x or math.isfinite(xv)):
            points.append((xv, yf))
    return tuple(points)


def finite(value) -> float | None:
    """A number as a float; None for anything else, NaN and the infinities."""
    if not is_number(value):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _category(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def build_plot(spec: PlotSpec, tables: Mapping[str, Table] | Sequence[tuple[str, Table]],
               notes: Sequence[str] = (), strict: bool = False) -> Plot:
    """The plot of `spec` over revisions (in the given order), one series per revision and y.

    Without explicit y, the fields are chosen from the first revision that has a numeric field,
    and the same fields are drawn for every revision. A revision whose table lacks them becomes
    a note on the chart, or, with `strict`, raises its FormatError.
    """
    items = list(tables.items()) if isinstance(tables, Mapping) else list(tables)
    notes = list(notes)
    x, ys = spec.x, spec.y
    if not ys:
        for revision, table in items:
            try:
                x, ys = choose_fields(table, spec)
                break
            except FormatError as exc:
                if strict:
                    raise
                notes.append(_note(revision, exc))
    series = []
    for revision, table in items if ys else ():
        try:
            series.extend(Series(revision, y, extract_points(table, x, y)) for y in ys)
        except FormatError as exc:
            if strict:
                raise
            notes.append(_note(revision, exc))
    return Plot(spec, x, tuple(ys), tuple(series), tuple(dict.fromkeys(notes)))


def _note(revision: str, exc: FormatError) -> str:
    return f"{revision}: {exc.message}" if revision else exc.message


def metric_plot(name: str, values: Sequence[tuple[str, object]], template: str = "bar",
                title: str = "") -> Plot:
    """One metric across revisions: x is the revision, a category (revisions without a value
    become notes)."""
    spec = PlotSpec(path=name, x="revision", y=(name,), template=template,
                    title=title or name, x_label="revision", y_label=name)
    points, notes = [], []
    for revision, value in values:
        number = finite(value)
        if number is not None:
            points.append((revision, number))
        else:
            notes.append(f"{revision}: no value" if value is None else
                         f"{revision}: {_show(value)} is not a number")
    return Plot(spec, "revision", (name,), (Series("", name, tuple(points)),), tuple(notes))
