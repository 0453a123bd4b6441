"""Validation contracts: what a table must satisfy, parsed from YAML with line numbers.

The format (version 1) is documented in docs/data-quality.md. Every mistake in a contract
is a FormatError naming the file and line: unknown checks, values of the wrong type,
unknown Arrow types, regular expressions RE2 cannot compile. `validate` (re-exported from
checks.py) runs a contract against a table.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from dvlite.errors import FormatError
from dvlite.tables.drift import DriftSettings, Thresholds

CONTRACT_VERSION = 1
MAX_BYTES = 1 << 20
MAX_NODES = 100_000
MAX_DEPTH = 32
TOP_KEYS = ("version", "schema", "columns", "unique", "rows", "previous", "drift")
COLUMN_KEYS = ("type", "not_null", "unique", "min", "max", "allowed", "regex")
FAMILIES = {
    "integer": "is_integer", "float": "is_floating", "floating": "is_floating",
    "number": None, "numeric": None, "string": None, "binary": None, "boolean": "is_boolean",
    "bool": "is_boolean", "temporal": "is_temporal", "timestamp": "is_timestamp",
    "date": "is_date", "time": "is_time", "duration": "is_duration", "decimal": "is_decimal",
    "list": "is_list", "struct": "is_struct", "map": "is_map", "dictionary": "is_dictionary",
}


# --- YAML with line numbers -----------------------------------------------------------------

@dataclass(frozen=True)
class Located:
    """A YAML value with the line it starts on: dicts and lists hold Located values."""

    value: object
    line: int


def load_located(data: bytes, origin: str) -> Located:
    """Parse one YAML document, keeping line numbers; bounded in size, depth and nodes."""
    if len(data) > MAX_BYTES:
        raise FormatError(f"{origin}: too large for a contract ({len(data)} bytes, at most {MAX_BYTES})")
    try:
        node = yaml.compose(data, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise FormatError(f"{origin}{where}: invalid YAML: {problem}") from exc
    except RecursionError:
        raise FormatError(f"{origin}: nested too deeply") from None
    if node is None:
        return Located(None, 1)
    return _Converter(origin).convert(node, 0)


class _Converter:
    def __init__(self, origin: str):
        self.origin = origin
        self.nodes = 0
        self.constructor = yaml.constructor.SafeConstructor()

    def convert(self, node, depth: int) -> Located:
        line = node.start_mark.line + 1
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise FormatError(f"{self.origin}, line {line}: too many or too deeply nested values")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Located] = {}
            for key_node, value_node in node.value:
                key = self.convert(key_node, depth + 1)
                if not isinstance(key.value, (str, int)) or isinstance(key.value, bool):
                    raise FormatError(f"{self.origin}, line {key.line}: a key must be text")
                if str(key.value) in out:
                    raise FormatError(f"{self.origin}, line {key.line}: duplicate key {key.value!r}")
                out[str(key.value)] = self.convert(value_node, depth + 1)
            return Located(out, line)
        if isinstance(node, yaml.SequenceNode):
            return Located([self.convert(n, depth + 1) for n in node.value], line)
        try:
            return Located(self.constructor.construct_object(node, deep=True), line)
        except (yaml.YAMLError, ValueError) as exc:
            raise FormatError(f"{self.origin}, line {line}: invalid value: {exc}") from exc


# --- the contract -------------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnRule:
    name: str
    line: int
    type: str | None = None
    not_null: bool = False
    unique: bool = False
    min: object = None
    max: object = None
    allowed: tuple | None = None
    regex: str | None = None


@dataclass(frozen=True)
class Contract:
    origin: str  # the file (and for inline contracts the path under `checks:`)
    exact_columns: bool  # schema: exact (no other columns) instead of at_least
    columns: tuple[ColumnRule, ...]
    unique: tuple[tuple[str, ...], ...]  # single and compound keys
    rows_min: int | None
    rows_max: int | None
    max_row_drop: float | None  # percent of the previous version's rows
    keep_columns: bool  # no column of the previous version may disappear
    drift: DriftSettings


class _Parser:
    def __init__(self, origin: str):
        self.origin = origin

    def fail(self, at: Located, message: str) -> FormatError:
        return FormatError(f"{self.origin}, line {at.line}: {message}")

    def mapping(self, at: Located, what: str, known: tuple[str, ...]) -> dict[str, Located]:
        if not isinstance(at.value, dict):
            raise self.fail(at, f"{what} must be a mapping")
        for key, value in at.value.items():
            if key not in known:
                raise self.fail(value, f"unknown check {key!r} in {what} (known: {', '.join(known)})")
        return at.value

    def boolean(self, at: Located, what: str) -> bool:
        if not isinstance(at.value, bool):
            raise self.fail(at, f"{what} must be true or false, not {at.value!r}")
        return at.value

    def number(self, at: Located, what: str, minimum: float = 0.0) -> float:
        value = at.value
        if isinstance(value, str) and value.strip().endswith("%") and what.endswith("max_row_drop"):
            value = _float_or_none(value.strip()[:-1])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise self.fail(at, f"{what} must be a number >= {minimum:g}, not {at.value!r}")
        return float(value)

    def count(self, at: Located, what: str) -> int:
        if isinstance(at.value, bool) or not isinstance(at.value, int) or at.value < 0:
            raise self.fail(at, f"{what} must be a whole number >= 0, not {at.value!r}")
        return at.value

    def scalar(self, at: Located, what: str):
        ok = (int, float, str, datetime.date, datetime.datetime)
        if isinstance(at.value, bool) or not isinstance(at.value, ok):
            raise self.fail(at, f"{what} must be a number, a date or text, not {at.value!r}")
        return at.value

    def names(self, at: Located, what: str) -> tuple[str, ...]:
        items = at.value if isinstance(at.value, list) else [at]
        out = []
        for item in items:
            if not isinstance(item.value, str) or not item.value:
                raise self.fail(item, f"{what} must name columns, not {item.value!r}")
            out.append(item.value)
        return tuple(out)


def _keys(at: Located) -> tuple[str, ...]:
    """The keys of a free-form mapping (column names, paths); mapping() rejects non-mappings."""
    return tuple(at.value) if isinstance(at.value, dict) else ()


def _float_or_none(text: str):
    try:
        return float(text)
    except ValueError:
        return None


def _check_type_name(p: _Parser, at: Located) -> str:
    name = at.value
    if not isinstance(name, str) or not name.strip():
        raise p.fail(at, f"type must be an Arrow type name, not {name!r}")
    if name in FAMILIES or "<" in name or "[" in name:
        return name
    import pyarrow as pa

    try:
        pa.type_for_alias(name)
    except (ValueError, KeyError):
        raise p.fail(at, f"unknown type {name!r} (an Arrow type such as int64, double, string, "
                         f"timestamp[us], or a family: {', '.join(sorted(FAMILIES))})") from None
    return name


def _check_regex(p: _Parser, at: Located) -> str:
    if not isinstance(at.value, str):
        raise p.fail(at, f"regex must be text, not {at.value!r}")
    import pyarrow as pa
    import pyarrow.compute as pc

    try:  # pyarrow matches with RE2; compile the pattern now, not halfway through a table
        pc.match_substring_regex(pa.array([""], pa.string()), pattern=at.value)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise p.fail(at, f"invalid regex {at.value!r}: {str(exc).splitlines()[0]}") from None
    return at.value


def _column(p: _Parser, name: str, at: Located) -> ColumnRule:
    if isinstance(at.value, str):  # `id: int64` is short for `id: {type: int64}`
        return ColumnRule(name, at.line, type=_check_type_name(p, at))
    if at.value is None:
        return ColumnRule(name, at.line)
    m = p.mapping(at, f"column {name!r}", COLUMN_KEYS)
    allowed = None
    if "allowed" in m:
        if not isinstance(m["allowed"].value, list) or not m["allowed"].value:
            raise p.fail(m["allowed"], "allowed must be a non-empty list of values")
        allowed = tuple(p.scalar(v, "an allowed value") for v in m["allowed"].value)
    return ColumnRule(
        name, at.line,
        type=_check_type_name(p, m["type"]) if "type" in m else None,
        not_null=p.boolean(m["not_null"], "not_null") if "not_null" in m else False,
        unique=p.boolean(m["unique"], "unique") if "unique" in m else False,
        min=p.scalar(m["min"], "min") if "min" in m else None,
        max=p.scalar(m["max"], "max") if "max" in m else None,
        allowed=allowed,
        regex=_check_regex(p, m["regex"]) if "regex" in m else None,
    )


def _thresholds(p: _Parser, at: Located, base: Thresholds, what: str) -> Thresholds:
    keys = ("psi", "ks", "js", "null_rate", "cardinality")
    m = p.mapping(at, what, keys + (("columns",) if what == "drift" else ()))
    values = {k: p.number(m[k], f"{what}.{k}") for k in keys if k in m}
    return Thresholds(**{**base.__dict__, **values})


def _drift(p: _Parser, at: Located | None) -> DriftSettings:
    if at is None:
        return DriftSettings()
    default = _thresholds(p, at, Thresholds(), "drift")
    columns = {}
    raw = at.value.get("columns")
    if raw is not None:
        for name, value in p.mapping(raw, "drift.columns", _keys(raw)).items():
            columns[name] = _thresholds(p, value, default, f"drift.columns.{name}")
    return DriftSettings(default, columns)


def _version(p: _Parser, doc: Located, top: dict) -> None:
    if "version" not in top:
        raise p.fail(doc, f"no version: write `version: {CONTRACT_VERSION}` first")
    v = top["version"]
    if v.value != CONTRACT_VERSION or isinstance(v.value, bool):
        raise p.fail(v, f"contract version {v.value!r} is not supported (this dvlite reads "
                        f"version {CONTRACT_VERSION})")


def parse_contract(doc: Located, origin: str) -> Contract:
    """A Contract from a parsed YAML mapping."""
    p = _Parser(origin)
    top = p.mapping(doc, "a contract", TOP_KEYS)
    _version(p, doc, top)
    exact = False
    if "schema" in top:
        if top["schema"].value not in ("exact", "at_least"):
            raise p.fail(top["schema"], f"schema must be exact or at_least, not {top['schema'].value!r}")
        exact = top["schema"].value == "exact"
    cols = p.mapping(top["columns"], "columns", _keys(top["columns"])) \
        if "columns" in top and top["columns"].value is not None else {}
    rules = tuple(_column(p, name, value) for name, value in cols.items())
    unique = []
    if "unique" in top:
        if not isinstance(top["unique"].value, list):
            raise p.fail(top["unique"], "unique must be a list of columns or of column lists")
        unique = [p.names(item, "unique") for item in top["unique"].value]
    rows = p.mapping(top["rows"], "rows", ("min", "max")) if "rows" in top else {}
    prev = p.mapping(top["previous"], "previous", ("max_row_drop", "keep_columns")) \
        if "previous" in top else {}
    return Contract(
        origin=origin, exact_columns=exact, columns=rules,
        unique=tuple(unique) + tuple((r.name,) for r in rules if r.unique),
        rows_min=p.count(rows["min"], "rows.min") if "min" in rows else None,
        rows_max=p.count(rows["max"], "rows.max") if "max" in rows else None,
        max_row_drop=p.number(prev["max_row_drop"], "previous.max_row_drop")
        if "max_row_drop" in prev else None,
        keep_columns=p.boolean(prev["keep_columns"], "previous.keep_columns")
        if "keep_columns" in prev else False,
        drift=_drift(p, top.get("drift")),
    )


def load_contract(data: bytes, origin: str) -> Contract:
    """A Contract from the bytes of a contract file."""
    return parse_contract(load_located(data, origin), origin)


def parse_checks(section: Located, origin: str,
                 read_file: Callable[[str, Located], tuple[bytes, str]]) -> dict[str, Contract]:
    """The `checks:` section of dvlite.yaml: path -> contract, inline or `{file: PATH}`.

    `read_file(path, where)` returns the bytes and display name of a contract file; the
    caller decides where such paths may point.
    """
    p = _Parser(origin)
    if section.value is None:
        return {}
    out: dict[str, Contract] = {}
    for path, value in p.mapping(section, "checks", _keys(section)).items():
        if isinstance(value.value, dict) and set(value.value) == {"file"}:
            ref = value.value["file"]
            if not isinstance(ref.value, str) or not ref.value:
                raise p.fail(ref, "file must be a path to a contract file")
            data, name = read_file(ref.value, ref)
            out[path] = load_contract(data, name)
        else:
            out[path] = parse_contract(value, f"{origin} (checks: {path})")
    return out


def matches_type(arrow_type, wanted: str) -> bool:
    """Whether a pyarrow type is the named type or belongs to the named family."""
    import pyarrow as pa

    t = arrow_type
    if wanted in ("number", "numeric"):
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    if wanted == "string":
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    if wanted == "binary":
        return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
    if FAMILIES.get(wanted):
        return getattr(pa.types, FAMILIES[wanted])(t)
    if str(t) == wanted or re.sub(r"\s", "", str(t)) == re.sub(r"\s", "", wanted):
        return True
    try:
        return pa.type_for_alias(wanted) == t
    except (ValueError, KeyError):
        return False
