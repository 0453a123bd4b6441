"""The table library on tables written with pyarrow: formats and their bad inputs, schema
and row diffs, statistics and their cache, drift."""

from __future__ import annotations

import io
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from pyarrow import feather

from dvlite.errors import BadInputError, FormatError, IntegrityError
from dvlite.tables import partition, rowdiff
from dvlite.tables.drift import DriftSettings, Thresholds, compare
from dvlite.tables.formats import TableSource, detect_format, open_table
from dvlite.tables.schema import Column, columns_of, diff_columns
from dvlite.tables.stats import StatsCache, TableStats, compute_stats

TABLE = pa.table({"id": [1, 2, 3], "name": ["a", "b", None], "x": [0.5, None, 2.5]})


def parquet_bytes(table: pa.Table, **kwargs) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    return buf.getvalue()


def read_all(source: TableSource) -> pa.Table:
    with open_table(source) as reader:
        return pa.Table.from_batches(list(reader.batches()), schema=reader.schema)


def stats_of(table: pa.Table, name: str = "t.parquet") -> TableStats:
    with open_table(TableSource.from_file(io.BytesIO(parquet_bytes(table)), name)) as reader:
        return compute_stats(reader)


# --- formats --------------------------------------------------------------------------------

def test_format_by_extension_and_override():
    assert detect_format("a/b.PARQUET") == "parquet"
    assert detect_format("x.feather") == detect_format("x.arrow") == "ipc"
    assert detect_format("x.ndjson") == "jsonl"
    assert detect_format("x.txt", "csv") == "csv"
    assert detect_format("x.parquet", "feather") == "ipc"
    with pytest.raises(BadInputError, match=r"x\.txt: not a table by its name"):
        detect_format("x.txt")
    with pytest.raises(BadInputError, match="unknown table format 'excel'"):
        detect_format("x.csv", "excel")


def _write_every_format(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in
             ("t.parquet", "t.feather", "t.arrows", "t.csv", "t.tsv", "t.jsonl")}
    pq.write_table(TABLE, paths["t.parquet"])
    feather.write_feather(TABLE, paths["t.feather"])
    with pa.ipc.new_stream(paths["t.arrows"], TABLE.schema) as w:
        w.write_table(TABLE)
    pacsv.write_csv(TABLE, paths["t.csv"])
    pacsv.write_csv(TABLE, paths["t.tsv"], pacsv.WriteOptions(delimiter="\t"))
    paths["t.jsonl"].write_text('{"id": 1, "name": "a", "x": 0.5}\n{"id": 2, "name": "b", "x": null}\n'
                                '{"id": 3, "name": null, "x": 2.5}\n')
    return paths


def test_every_format_reads_the_same_rows_from_a_path_and_a_file_object(tmp_path):
    for name, path in _write_every_format(tmp_path).items():
        from_path = read_all(TableSource.from_path(str(path)))
        with open(path, "rb") as f:
            from_file = read_all(TableSource.from_file(f, name))
            assert not f.closed  # a borrowed file is the caller's to close
        for t in (from_path, from_file):
            assert t.column("id").to_pylist() == [1, 2, 3], name
            assert t.column("x").to_pylist() == [0.5, None, 2.5], name


def test_a_second_pass_over_a_streaming_format_reopens_it(tmp_path):
    path = _write_every_format(tmp_path)["t.csv"]
    with open_table(TableSource.from_path(str(path))) as reader:
        first = sum(b.num_rows for b in reader.batches())
        second = sum(b.num_rows for b in reader.batches(columns=["id"]))
    assert first == second == 3


@pytest.mark.parametrize(("content", "looks"), [
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "a PNG image"),
    (b"id,name\n1,a\n", "text"),
    (b"", "an empty file"),
    (b"PK\x03\x04" + bytes(50), "a zip archive"),
])
def test_a_file_that_is_not_parquet_is_named_with_its_detected_type(tmp_path, content, looks):
    path = tmp_path / "data.parquet"
    path.write_bytes(content)
    with pytest.raises(FormatError) as err:
        read_all(TableSource.from_path(str(path), label="data.parquet@v1"))
    assert err.value.exit_code == 2
    assert err.value.message == (f"data.parquet@v1: not a table in Parquet format "
                                 f"(its content looks like {looks})")


def test_binary_content_named_csv_is_not_a_table(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(FormatError, match=r"x\.csv: not a table in CSV format \(its content looks like a PNG image\)"):
        read_all(TableSource.from_path(str(path), label="x.csv"))


def test_a_ragged_csv_row_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"a,b\n1,2\n3,4,5\n6,7\n")
    with pytest.raises(FormatError) as err:
        read_all(TableSource.from_path(str(path), label="r.csv@HEAD"))
    assert err.value.message == "r.csv@HEAD (CSV): ragged row: expected 2 columns, got 3: '3,4,5'"
    assert "\n" not in err.value.message


def test_truncated_and_corrupt_parquet_are_integrity_errors(tmp_path):
    table = pa.table({"id": pa.array(range(50_000)), "s": pc.cast(pa.array(range(50_000)), pa.string())})
    data = parquet_bytes(table)
    cases = {"truncated": data[: len(data) // 2], "footer": data[:-10] + b"\x00" * 10}
    damaged = bytearray(data)
    for i in range(100, 20_000, 7):  # inside the first column's pages
        damaged[i] ^= 0xFF
    cases["pages"] = bytes(damaged)
    for name, content in cases.items():
        path = tmp_path / f"{name}.parquet"
        path.write_bytes(content)
        with pytest.raises(IntegrityError) as err:
            read_all(TableSource.from_path(str(path)))
        assert err.value.exit_code == 4, name
        assert err.value.message.startswith(f"{path} (Parquet): truncated or corrupt: "), name


def test_a_failing_read_of_a_cache_object_says_the_object_is_corrupt(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(parquet_bytes(TABLE)[:-20])
    src = TableSource("t.parquet@v1", "parquet", lambda: path.open("rb"), str(path), "0" * 32, verify=lambda: False)
    with pytest.raises(IntegrityError, match=r"t\.parquet@v1: the cached object is corrupt"):
        read_all(src)


def test_a_json_line_nested_too_deeply_is_refused_not_a_crash(tmp_path):
    """pyarrow's JSON parser crashes the process on a line nested ~15,000 deep."""
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n")
    code = ("import sys\n"
            "from dvlite.errors import FormatError\n"
            "from dvlite.tables.formats import TableSource, open_table\n"
            "try:\n"
            "    with open_table(TableSource.from_path(sys.argv[1], label='deep.jsonl')) as r:\n"
            "        list(r.batches())\n"
            "except FormatError as exc:\n"
            "    print(exc.message)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "deep.jsonl (JSON lines): a line is nested too deeply to read"
    wide = tmp_path / "wide.jsonl"  # many brackets, little depth: read as usual
    wide.write_text('{"a": [' + ", ".join(["[1]"] * 2000) + "]}\n")
    assert read_all(TableSource.from_path(str(wide))).num_rows == 1


def test_an_unknown_column_is_a_bad_input():
    src = TableSource.from_file(io.BytesIO(parquet_bytes(TABLE)), "t.parquet")
    with open_table(src) as reader, pytest.raises(BadInputError, match="no column 'nope'"):
        reader.batches(columns=["nope"])


# --- schema diff ----------------------------------------------------------------------------

def test_schema_diff_added_removed_types_nullability_and_order():
    a = [Column("id", "int64", False), Column("x", "double", True), Column("gone", "string", True),
         Column("n", "int32", True)]
    b = [Column("x", "double", False), Column("id", "int64", False), Column("n", "int64", True),
         Column("new", "bool", True)]
    d = diff_columns(a, b)
    assert [c.name for c in d.removed] == ["gone"]
    assert [c.name for c in d.added] == ["new"]
    assert d.renamed == []
    assert [(t.name, t.old, t.new) for t in d.type_changed] == [("n", "int32", "int64")]
    assert [(n.name, n.old, n.new) for n in d.nullability_changed] == [("x", True, False)]
    assert d.reordered and d.changed


def test_a_rename_is_reported_only_when_unambiguous():
    a = [Column("id", "int64", False), Column("old_name", "string", True)]
    b = [Column("id", "int64", False), Column("new_name", "string", True)]
    d = diff_columns(a, b)
    assert [(r.old, r.new) for r in d.renamed] == [("old_name", "new_name")]
    assert not d.added and not d.removed
    assert d.pairs(a, b) == [("id", "id"), ("old_name", "new_name")]
    # two removed strings, one added: which one was renamed is a guess, so none is
    a2 = a + [Column("other", "string", True)]
    d2 = diff_columns(a2, b)
    assert d2.renamed == [] and {c.name for c in d2.removed} == {"old_name", "other"}
    # same type, other nullability: not a rename either
    d3 = diff_columns(a, [Column("id", "int64", False), Column("new_name", "string", False)])
    assert d3.renamed == []


# --- row diffs --------------------------------------------------------------------------------

def _readers(a: pa.Table, b: pa.Table):
    ra = open_table(TableSource.from_file(io.BytesIO(parquet_bytes(a)), "t.parquet", label="t.parquet@A"))
    rb = open_table(TableSource.from_file(io.BytesIO(parquet_bytes(b)), "t.parquet", label="t.parquet@B"))
    return ra, rb


def _keyed(a, b, key, tmp_path):
    ra, rb = _readers(a, b)
    with ra, rb:
        ca, cb = columns_of(ra.schema), columns_of(rb.schema)
        return rowdiff.keyed_diff(ra, rb, key, diff_columns(ca, cb).pairs(ca, cb), str(tmp_path))


def test_keyed_diff_counts_rows_and_columns_with_old_and_new_values(tmp_path):
    a = pa.table({"id": [1, 2, 3, 4, 5], "v": [1.0, 2.0, math.nan, None, 5.0],
                  "s": ["a", "b", "c", "d", "e"]})
    b = pa.table({"id": [2, 3, 4, 5, 6], "v": [2.0, math.nan, 4.0, 5.5, 6.0],
                  "s": ["b", "c", "d", "E", "f"]})
    d = _keyed(a, b, ["id"], tmp_path)
    assert (d.added, d.removed, d.changed, d.unchanged) == (1, 1, 2, 2)  # NaN equals NaN
    assert d.changed_columns == {"v": 2, "s": 1}
    assert d.added_sample == [{"id": 6}] and d.removed_sample == [{"id": 1}]
    assert [(c.key, c.changes) for c in d.changed_sample] == [
        ({"id": 4}, {"v": [None, 4.0]}),
        ({"id": 5}, {"v": [5.0, 5.5], "s": ["e", "E"]}),
    ]


def test_keyed_diff_with_a_compound_key_and_a_widened_key_type(tmp_path):
    a = pa.table({"day": pa.array([1, 1, 2], pa.int32()), "user": ["u", "v", "u"], "n": [1, 2, 3]})
    b = pa.table({"day": pa.array([1, 1, 2], pa.int64()), "user": ["u", "v", "u"], "n": [1, 9, 3]})
    d = _keyed(a, b, ["day", "user"], tmp_path)
    assert (d.added, d.removed, d.changed) == (0, 0, 1)
    assert d.changed_sample[0].key == {"day": 1, "user": "v"}


@pytest.mark.parametrize(("a", "b", "message"), [
    (pa.table({"id": [1, 2]}), pa.table({"key": [1, 2]}), "key column 'id' is not in t.parquet@B"),
    (pa.table({"id": [1, 1, 2], "v": [1, 2, 3]}), pa.table({"id": [1, 2], "v": [1, 2]}),
     "key (id) is not unique in t.parquet@A: id=1 appears 2 times"),
    (pa.table({"id": [1, 2]}), pa.table({"id": [1, None]}), "key column 'id' has null values in t.parquet@B"),
])
def test_a_bad_key_names_the_version(tmp_path, a, b, message):
    with pytest.raises(BadInputError) as err:
        _keyed(a, b, ["id"], tmp_path)
    assert err.value.message == message and err.value.exit_code == 2


def test_spilled_parts_give_the_same_diff_and_are_removed(tmp_path, monkeypatch):
    n = 20_000
    ids = pa.array(range(n))
    a = pa.table({"id": ids, "v": pc.cast(ids, pa.float64()), "s": pc.cast(ids, pa.string())})
    b = a.filter(pc.not_equal(pc.bit_wise_and(ids, 15), 3))  # 1/16 removed
    b = b.set_column(1, "v", pc.if_else(pc.equal(pc.bit_wise_and(b["id"], 31), 5), -1.0, b["v"]))
    in_memory = _keyed(a, b, ["id"], tmp_path / "one")
    monkeypatch.setattr(partition, "PART_BYTES", 16 << 10)  # force many parts on disk
    work = tmp_path / "many"
    spilled = _keyed(a, b, ["id"], work)
    assert (spilled.removed, spilled.changed, spilled.unchanged) == (n // 16, n // 32, n - n // 16 - n // 32)
    assert (in_memory.removed, in_memory.changed, in_memory.unchanged) == \
        (spilled.removed, spilled.changed, spilled.unchanged)
    assert list(work.iterdir()) == []  # the parts' directories are gone


def test_an_empty_version_with_a_narrower_key_type_in_many_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(partition, "PART_BYTES", 64)
    a = pa.table({"id": pa.array(range(100), pa.int64()), "v": list(range(100))})
    b = pa.table({"id": pa.array([], pa.int32()), "v": pa.array([], pa.int64())})
    d = _keyed(a, b, ["id"], tmp_path)
    assert (d.removed, d.added, d.changed) == (100, 0, 0)


def test_multiset_diff_counts_duplicates_and_samples_rows(tmp_path):
    a = pa.table({"x": [1, 1, 2, 3], "y": ["a", "a", "b", None]})
    b = pa.table({"x": [1, 2, 3, 4], "y": ["a", "b", None, "d"]})
    ra, rb = _readers(a, b)
    with ra, rb:
        d = rowdiff.multiset_diff(ra, rb, [("x", "x"), ("y", "y")], str(tmp_path))
    assert (d.only_in_a, d.only_in_b, d.in_both) == (1, 1, 3)
    assert d.only_in_a_sample == [{"x": 1, "y": "a"}]
    assert d.only_in_b_sample == [{"x": 4, "y": "d"}]


# --- statistics -----------------------------------------------------------------------------

def test_stats_of_numbers_strings_booleans_and_dates():
    import datetime

    values = [1.5, None, -2.0, math.nan, 4.25, 10.0]
    t = pa.table({
        "x": values,
        "cat": ["a", "b", "a", None, "a", "c"],
        "flag": [True, False, True, True, None, True],
        "day": [datetime.date(2024, 1, d) for d in (5, 1, 9, 2, 3, 4)],
    })
    st = stats_of(t)
    x = st.column("x")
    finite = [v for v in values if v is not None and not math.isnan(v)]
    assert (st.rows, x.nulls, x.nans, x.min, x.max) == (6, 1, 1, -2.0, 10.0)
    assert x.mean == pytest.approx(statistics.mean(finite))
    assert x.std == pytest.approx(statistics.stdev(finite))
    assert x.quantiles[0] == -2.0 and x.quantiles[-1] == 10.0 and len(x.quantiles) == 101
    cat = st.column("cat")
    assert (cat.kind, cat.nulls, cat.distinct, cat.distinct_exact) == ("string", 1, 3, True)
    assert cat.values == [["a", 3], ["b", 1], ["c", 1]] and cat.values_exact
    assert st.column("flag").values == [[True, 4], [False, 1]]
    day = st.column("day")
    assert (day.kind, day.min, day.max) == ("temporal", "2024-01-01", "2024-01-09")


def test_distinct_estimate_and_approximate_top_values_of_a_large_column():
    n = 200_000
    ids = pa.array(range(n))
    text = pc.binary_join_element_wise(pa.repeat(pa.scalar("user-"), n), pc.cast(ids, pa.string()), "")
    hot = pc.if_else(pc.less(pc.bit_wise_and(ids, 7), 2), pa.scalar("hot"), text)  # a quarter "hot"
    st = stats_of(pa.table({"id": ids, "text": text, "hot": hot}))
    for name, true in (("id", n), ("text", n), ("hot", n * 3 // 4 + 1)):
        col = st.column(name)
        assert not col.distinct_exact
        assert abs(col.distinct - true) / true < 0.06, (name, col.distinct)
    hot = st.column("hot")
    assert not hot.values_exact and hot.values[0][0] == "hot"
    assert abs(hot.values[0][1] - n / 4) / (n / 4) < 0.1  # scaled up from the row sample
    assert st.sample_rows == 10_000


def test_stats_json_round_trips_and_the_cache_ignores_damaged_files(tmp_path):
    st = stats_of(TABLE)
    assert TableStats.from_json(st.to_json()) == st
    assert json.loads(st.to_json())["version"] == 1
    cache = StatsCache(str(tmp_path / "stats"))
    digest = "ab" + "c" * 30
    assert cache.get(digest, "parquet") is None
    cache.put(digest, "parquet", st)
    assert cache.get(digest, "parquet") == st
    assert cache.get(digest, "csv") is None  # another format of the same bytes is another entry
    path = Path(cache.path(digest, "parquet"))
    for damage in (b"{not json", b'{"version": 99}', json.dumps({"version": 1}).encode()):
        path.write_bytes(damage)
        assert cache.get(digest, "parquet") is None
    with pytest.raises(ValueError):
        cache.path("../../etc/passwd", "parquet")


def test_cache_stats_computes_once_per_digest_and_never_caches_a_corrupt_object(tmp_path):
    data = parquet_bytes(TABLE)
    cache = StatsCache(str(tmp_path))
    opened = []

    def opener():
        opened.append(1)
        return io.BytesIO(data)

    src = TableSource("t.parquet@v1", "parquet", opener, None, "12" * 16, verify=lambda: True)
    assert cache.stats(src).rows == 3
    assert cache.stats(src).rows == 3
    assert len(opened) == 1
    bad = TableSource("t.parquet@v2", "parquet", opener, None, "34" * 16, verify=lambda: False)
    with pytest.raises(IntegrityError, match="cached object is corrupt"):
        cache.stats(bad)
    assert cache.get("34" * 16, "parquet") is None


def test_stats_stream_a_few_million_rows_in_bounded_memory(tmp_path):
    """The streaming check: statistics of 3 million rows of ~200 bytes (a 77 MiB file that
    decodes to 620 MiB; reading it whole peaks near 1.2 GiB) in a child process stay far
    below what holding the table would take."""
    path = tmp_path / "big.parquet"
    n, chunk = 3_000_000, 500_000
    pad = pa.scalar("x" * 190)
    with pq.ParquetWriter(path, pa.schema([("id", pa.int64()), ("x", pa.float64()),
                                           ("s", pa.string())])) as w:
        for start in range(0, n, chunk):
            ids = pa.array(range(start, start + chunk))
            text = pc.binary_join_element_wise(pa.repeat(pad, chunk), pc.cast(ids, pa.string()), "")
            w.write_table(pa.table({"id": ids, "x": pc.random(chunk, initializer=start), "s": text}))
    # VmHWM is this process's own peak (ru_maxrss would include the parent's RSS at fork)
    code = ("import sys\n"
            "from dvlite.tables.formats import TableSource, open_table\n"
            "from dvlite.tables.stats import compute_stats\n"
            "with open_table(TableSource.from_path(sys.argv[1])) as r:\n"
            "    st = compute_stats(r)\n"
            "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
            "print(st.rows, st.column('id').max, hwm)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         check=True, timeout=600).stdout.split()
    rows, top, peak_kib = int(out[0]), int(out[1]), int(out[2])
    assert (rows, top) == (n, n - 1)
    assert peak_kib < 450 * 1024, f"peak RSS {peak_kib // 1024} MiB"


# --- drift ----------------------------------------------------------------------------------

def _numbers(seed: int, scale: float = 1.0, shift: float = 0.0, n: int = 50_000) -> pa.Array:
    return pc.add(pc.multiply(pc.random(n, initializer=seed), scale), shift)


def test_no_drift_between_samples_of_one_distribution():
    a = stats_of(pa.table({"x": _numbers(1), "c": pc.cast(pc.floor(pc.multiply(_numbers(2), 5)), pa.string())}))
    b = stats_of(pa.table({"x": _numbers(3), "c": pc.cast(pc.floor(pc.multiply(_numbers(4), 5)), pa.string())}))
    report = compare(a, b, "A", "B")
    assert report.verdict == "no drift" and report.drifted == []
    x = next(c for c in report.columns if c.column == "x")
    assert x.psi < 0.02 and x.ks < 0.05


def test_a_shifted_number_and_a_reweighted_category_drift():
    cats = pa.array(["a", "b", "c", "d"])
    pick = pc.cast(pc.floor(pc.multiply(_numbers(2), 4)), pa.int64())
    a = stats_of(pa.table({"x": _numbers(1), "c": pc.take(cats, pick), "n": _numbers(5)}))
    skew = pc.cast(pc.floor(pc.multiply(pc.power(_numbers(6), 3), 4)), pa.int64())  # mostly "a"
    nulls = pc.if_else(pc.less(_numbers(7), 0.2), pa.scalar(None, pa.float64()), _numbers(8))
    b = stats_of(pa.table({"x": _numbers(3, shift=0.3), "c": pc.take(cats, skew), "n": nulls}))
    report = compare(a, b, "A", "B")
    by = {c.column: c for c in report.columns}
    assert by["x"].status == "drift" and by["x"].ks == pytest.approx(0.3, abs=0.03)
    assert by["x"].psi > 0.2
    assert by["c"].status == "drift" and by["c"].js > 0.1
    assert by["n"].status == "drift" and any(r.startswith("null rate change") for r in by["n"].reasons)
    assert report.verdict == "drift" and set(report.drifted) == {"x", "c", "n"}
    loose = DriftSettings(Thresholds(psi=10, ks=1, js=1, null_rate=1), {"x": Thresholds(ks=0.2)})
    relaxed = compare(a, b, "A", "B", loose)
    assert relaxed.drifted == ["x"]


def test_drift_reports_added_removed_and_kind_changes():
    a = stats_of(pa.table({"keep": [1, 2], "gone": [1, 2], "k": [1, 2]}))
    b = stats_of(pa.table({"keep": [1, 2], "new": [1, 2], "k": ["1", "2"]}))
    by = {c.column: c.status for c in compare(a, b, "A", "B").columns}
    assert by == {"keep": "ok", "new": "added", "gone": "removed", "k": "kind changed"}
