"""Validation contracts: parsing (every mistake names the file and line) and running them."""

from __future__ import annotations

import datetime
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dvlite.errors import FormatError
from dvlite.tables.checks import Baseline
from dvlite.tables.checks import validate
from dvlite.tables.contracts import load_contract, load_located, parse_checks
from dvlite.tables.formats import TableSource

CONTRACT = b"""\
version: 1
schema: at_least
columns:
  id: {type: int64, not_null: true, unique: true}
  score: {type: float, min: 0, max: 1}
  label: {allowed: [cat, dog]}
  email: {regex: '^[^@]+@[^@]+$'}
  day: date32
unique:
  - [user, day]
rows: {min: 3, max: 100}
previous: {max_row_drop: 10%, keep_columns: true}
drift:
  psi: 0.3
  columns:
    score: {ks: 0.2}
"""


def source(table: pa.Table, name: str = "t.parquet") -> TableSource:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    buf.seek(0)
    return TableSource.from_file(buf, name)


def test_the_full_format_parses():
    c = load_contract(CONTRACT, "c.yaml")
    assert [r.name for r in c.columns] == ["id", "score", "label", "email", "day"]
    assert c.columns[0].not_null and c.columns[0].unique and c.columns[0].line == 4
    assert (c.columns[1].min, c.columns[1].max) == (0, 1)
    assert c.unique == (("user", "day"), ("id",))
    assert (c.rows_min, c.rows_max, c.max_row_drop, c.keep_columns) == (3, 100, 10.0, True)
    assert c.drift.default.psi == 0.3 and c.drift.for_column("score").ks == 0.2
    assert c.drift.for_column("score").psi == 0.3  # per-column values start from the defaults
    assert not c.exact_columns


@pytest.mark.parametrize(("text", "message"), [
    (b"version: 1\ncolumns:\n  id: {type: int64, nott_null: true}\n",
     ("c.yaml, line 3: unknown check 'nott_null' in column 'id' (known: type, not_null, unique, "
      "min, max, allowed, regex)")),
    (b"version: 1\nchecks: {}\n", "c.yaml, line 2: unknown check 'checks' in a contract"),
    (b"columns: {}\n", "c.yaml, line 1: no version: write `version: 1` first"),
    (b"version: 2\n", "c.yaml, line 1: contract version 2 is not supported (this dvlite reads version 1)"),
    (b"version: 1\ncolumns:\n  id:\n    not_null: yes please\n",
     "c.yaml, line 4: not_null must be true or false, not 'yes please'"),
    (b"version: 1\ncolumns:\n  id: {min: [1]}\n", "c.yaml, line 3: min must be a number, a date or text"),
    (b"version: 1\nrows: {min: -1}\n", "c.yaml, line 2: rows.min must be a whole number >= 0, not -1"),
    (b"version: 1\nunique: id\n", "c.yaml, line 2: unique must be a list of columns or of column lists"),
    (b"version: 1\nschema: loose\n", "c.yaml, line 2: schema must be exact or at_least, not 'loose'"),
    (b"version: 1\nprevious: {max_row_drop: lots}\n",
     "c.yaml, line 2: previous.max_row_drop must be a number >= 0, not 'lots'"),
    (b"version: 1\ncolumns:\n  id: {allowed: []}\n", "c.yaml, line 3: allowed must be a non-empty list"),
    (b"version: 1\ndrift: {psi: -1}\n", "c.yaml, line 2: drift.psi must be a number >= 0, not -1"),
    (b"version: 1\nversion: 1\n", "c.yaml, line 2: duplicate key 'version'"),
    (b"version: 1\n  bad: [\n", "c.yaml, line 2: invalid YAML"),
])
def test_contract_mistakes_name_the_file_and_line(text, message):
    with pytest.raises(FormatError) as err:
        load_contract(text, "c.yaml")
    assert err.value.message.startswith(message)
    assert err.value.exit_code == 2


def test_unknown_types_and_bad_regexes_are_caught_when_parsing():
    with pytest.raises(FormatError, match=r"c\.yaml, line 3: unknown type 'inty'"):
        load_contract(b"version: 1\ncolumns:\n  id: {type: inty}\n", "c.yaml")
    with pytest.raises(FormatError, match=r"c\.yaml, line 4: invalid regex '\(unclosed'"):
        load_contract(b"version: 1\ncolumns:\n  id:\n    regex: '(unclosed'\n", "c.yaml")
    for ok in ("int64", "double", "timestamp[us]", "timestamp[ms, tz=UTC]", "integer", "string"):
        load_contract(f"version: 1\ncolumns:\n  id: {{type: '{ok}'}}\n".encode(), "c.yaml")


def test_hostile_yaml_is_refused_quickly():
    bomb = b"version: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n".encode()
        for p, c in zip("abcdefgh", "bcdefghi"))
    with pytest.raises(FormatError, match="too many or too deeply nested"):
        load_contract(bomb, "bomb.yaml")
    with pytest.raises(FormatError, match="nested"):
        load_contract(b"[" * 10_000, "deep.yaml")
    with pytest.raises(FormatError, match="too large"):
        load_contract(b"#" * (2 << 20), "big.yaml")


def test_checks_inline_and_by_file_keep_their_line_numbers():
    files = {"contracts/b.yaml": b"version: 1\ncolumns:\n  id: {unique: 3}\n"}

    def read(ref, at):
        return files[ref], ref

    def checks(inline: bytes):
        doc = load_located(b"stages: {}\nchecks:\n  data/a.parquet:\n    version: 1\n"
                           b"    columns: {id: {not_null: " + inline + b"}}\n"
                           b"  data/b.parquet: {file: contracts/b.yaml}\n", "dvlite.yaml")
        return parse_checks(doc.value["checks"], "dvlite.yaml", read)

    with pytest.raises(FormatError) as err:
        checks(b"maybe")
    assert err.value.message == ("dvlite.yaml (checks: data/a.parquet), line 5: not_null must be "
                                 "true or false, not 'maybe'")
    with pytest.raises(FormatError, match=r"^contracts/b\.yaml, line 3: unique must be true or false"):
        checks(b"true")
    files["contracts/b.yaml"] = b"version: 1\ncolumns:\n  id: {unique: true}\n"
    found = checks(b"true")
    assert sorted(found) == ["data/a.parquet", "data/b.parquet"]
    assert found["data/b.parquet"].origin == "contracts/b.yaml"
    assert found["data/b.parquet"].unique == (("id",),)


def test_validate_reports_every_check_with_failing_rows_and_samples():
    day = datetime.date(2024, 1, 1)
    t = pa.table({"id": [1, 2, 2, None], "score": [0.5, 1.5, float("nan"), 0.2],
                  "label": ["cat", "cow", None, "dog"], "email": ["a@b", "nope", "c@d", None],
                  "user": ["u", "u", "v", "u"], "day": [day] * 4})
    report = validate(source(t), load_contract(CONTRACT, "c.yaml"), Baseline("t@v1", ["id", "gone"], 10))
    assert not report.passed and report.rows == 4
    by = {(c.check, c.target): c for c in report.checks}
    assert by[("columns", "table")].passed
    assert by[("type", "id")].passed and by[("type", "score")].passed
    nn = by[("not_null", "id")]
    assert (nn.passed, nn.failing_rows) == (False, 1) and nn.sample[0]["row"] == 3
    rng = by[("range", "score")]
    assert rng.failing_rows == 2 and [s["row"] for s in rng.sample] == [1, 2]  # 1.5 and NaN
    assert by[("allowed", "label")].failing_rows == 1  # null is not checked, "cow" fails
    assert by[("regex", "email")].sample[0]["email"] == "nope"
    assert by[("unique", "user, day")].failing_rows == 3
    assert by[("unique", "id")].sample == [{"row": 1, "count": 2, "id": 2}]
    assert by[("rows", "table")].passed
    assert not by[("row_drop", "table")].passed and "10 -> 4 rows (-60.0 %" in by[("row_drop", "table")].detail
    assert by[("keep_columns", "table")].detail == "gone since t@v1: gone"


def test_a_passing_table_and_an_exact_schema():
    t = pa.table({"id": [1, 2, 3], "extra": ["x", "y", "z"]})
    at_least = load_contract(b"version: 1\ncolumns: {id: {type: integer, unique: true, min: 1}}\n", "c")
    assert validate(source(t), at_least).passed
    exact = load_contract(b"version: 1\nschema: exact\ncolumns: {id: int64, missing: string}\n", "c")
    report = validate(source(t), exact)
    assert not report.passed
    assert report.checks[0].detail == "missing: missing; not in the contract: extra"


def test_checks_that_cannot_apply_to_the_column_fail_clearly():
    t = pa.table({"n": [1, 2], "s": ["a", "b"]})
    c = load_contract(b"version: 1\ncolumns:\n  n: {regex: 'x', allowed: [a]}\n  s: {min: 1}\n", "c")
    by = {(r.check, r.target): r for r in validate(source(t), c).checks}
    assert by[("regex", "n")].detail == "regex needs a string column, found int64"
    assert "do not fit the column's type" in by[("allowed", "n")].detail
    assert by[("range", "s")].detail.startswith("cannot compare string with the contract's bounds")
    assert not any(r.passed for k, r in by.items() if k[0] in ("regex", "allowed", "range"))
