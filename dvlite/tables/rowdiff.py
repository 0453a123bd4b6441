"""Row differences between two versions of a table.

With key columns: rows added, removed and changed, which columns changed in how many rows,
and samples (old -> new values). A key must be present, non-null and unique in both
versions. Without a key: the two versions as multisets of rows (a row that appears twice
in A and once in B counts once as "only in A"), compared by a 64-bit hash of each row.

Both sides are split by a hash of the key into parts spilled to disk (see partition.py),
so memory stays near one part of each side whatever the table's size.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dvlite.errors import BadInputError
from dvlite.tables.formats import TableReader
from dvlite.tables.partition import Partitions, parts_for, row_numbers
from dvlite.tables.sketches import jsonable

SAMPLE = 10
MATCH_CHUNK = 1 << 18
A_ROW, B_ROW = "__dvlite_a", "__dvlite_b"
ROW_HASH, ROW_INDEX = "__dvlite_h", "__dvlite_i"


@dataclass(frozen=True)
class ChangedRow:
    key: dict
    changes: dict  # column -> [old, new]


@dataclass(frozen=True)
class KeyedDiff:
    key: list[str]
    added: int
    removed: int
    changed: int
    unchanged: int
    changed_columns: dict[str, int]  # column -> rows in which it changed
    added_sample: list[dict]  # keys of added rows
    removed_sample: list[dict]
    changed_sample: list[ChangedRow]
    not_compared: list[str]  # columns whose values cannot be compared (nested types)


@dataclass(frozen=True)
class MultisetDiff:
    columns: list[str]  # the columns rows were compared on (those both versions have)
    only_in_a: int
    only_in_b: int
    in_both: int
    only_in_a_sample: list[dict]
    only_in_b_sample: list[dict]


@dataclass
class _Tally:
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    columns: Counter = field(default_factory=Counter)
    added_sample: list = field(default_factory=list)
    removed_sample: list = field(default_factory=list)
    changed_sample: list = field(default_factory=list)
    not_compared: set = field(default_factory=set)


def _combine(arr):
    import pyarrow as pa

    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _plain_batch(batch):
    """Dictionary columns decoded: IPC files cannot hold a new dictionary per batch."""
    import pyarrow as pa

    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    arrays = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _check_key(reader: TableReader, key: list[str]) -> None:
    import pyarrow as pa

    names = reader.schema.names
    for k in key:
        if k not in names:
            raise BadInputError(f"key column {k!r} is not in {reader.source.label}",
                                hint=f"its columns: {', '.join(names[:20])}")
        t = reader.schema.field(k).type
        if pa.types.is_nested(t):
            raise BadInputError(f"key column {k!r} of {reader.source.label} has type {t}, "
                                "which cannot be a key")


def _spill(reader, columns, names, key, key_types, count, workdir, tag) -> Partitions:
    import pyarrow as pa
    import pyarrow.compute as pc

    from dvlite.tables.hashing import hash_rows

    parts = Partitions(count, workdir, tag)
    try:
        for batch in reader.batches(columns=columns):
            batch = _plain_batch(batch.rename_columns(names))
            if key_types:
                arrays = [pc.cast(batch.column(n), key_types[n]) if n in key_types else batch.column(n)
                          for n in names]
                batch = pa.RecordBatch.from_arrays(arrays, names=names)
            parts.add(batch, hash_rows([batch.column(k) for k in key]))
        parts.finish()
    except BaseException:
        parts.close()
        raise
    return parts


def _key_casts(a: TableReader, b: TableReader, key: list[str]) -> dict:
    """Key columns whose type differs: B's values are cast to A's type (safely) or refused."""
    import pyarrow as pa

    casts = {}
    for k in key:
        ta, tb = a.schema.field(k).type, b.schema.field(k).type
        if pa.types.is_dictionary(ta):
            ta = ta.value_type
        if ta != tb and not (pa.types.is_dictionary(tb) and tb.value_type == ta):
            casts[k] = ta
    return casts


def _check_unique(table, key: list[str], label: str) -> None:
    import pyarrow.compute as pc

    for k in key:
        if table[k].null_count:
            raise BadInputError(f"key column {k!r} has null values in {label}",
                                hint="a key must identify every row; choose other --key columns")
    counts = table.select(key).group_by(key).aggregate([([], "count_all")])
    if counts.num_rows == table.num_rows:
        return
    dup = counts.filter(pc.greater(counts["count_all"], 1)).slice(0, 1).to_pylist()[0]
    n = dup.pop("count_all")
    shown = ", ".join(f"{k}={jsonable(v)!r}" for k, v in dup.items())
    raise BadInputError(f"key ({', '.join(key)}) is not unique in {label}: {shown} appears {n} times",
                        hint="choose --key columns that identify each row")


def _differs(x, y):
    """A boolean array: where x and y differ (null vs value differs, NaN equals NaN), or None
    when the values cannot be compared."""
    import pyarrow as pa
    import pyarrow.compute as pc

    x, y = _combine(x), _combine(y)
    try:
        if x.type != y.type:
            x, y = _common_type(x, y)
        ne = pc.not_equal(x, y)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    differs = pc.or_(pc.fill_null(ne, False), pc.xor(pc.is_null(x), pc.is_null(y)))
    if pa.types.is_floating(x.type):
        both_nan = pc.fill_null(pc.and_(pc.is_nan(x), pc.is_nan(y)), False)
        differs = pc.and_not(differs, both_nan)
    return differs


def _common_type(x, y):
    """x and y cast to one type: B's to A's, else A's to B's, else both to text."""
    import pyarrow as pa

    failures = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
    try:
        return x, y.cast(x.type)
    except failures:
        pass
    try:
        return x.cast(y.type), y
    except failures:
        return x.cast(pa.string()), y.cast(pa.string())


def _row(table, i: int, columns: list[str]) -> dict:
    return {c: jsonable(table[c][i].as_py()) for c in columns}


def _compare_matched(sa, sb, key: list[str], values: list[str], tally: _Tally) -> None:
    import pyarrow.compute as pc

    any_changed, masks = None, {}
    for name in values:
        if name in tally.not_compared:
            continue
        d = _differs(sa[name], sb[name])
        if d is None:
            tally.not_compared.add(name)
            continue
        n = pc.sum(d).as_py() or 0
        if n:
            tally.columns[name] += n
            masks[name] = d
            any_changed = d if any_changed is None else pc.or_(any_changed, d)
    changed = 0 if any_changed is None else (pc.sum(any_changed).as_py() or 0)
    tally.changed += changed
    tally.unchanged += sa.num_rows - changed
    room = SAMPLE - len(tally.changed_sample)
    if changed and room > 0:
        for i in pc.indices_nonzero(any_changed).slice(0, room).to_pylist():
            changes = {c: [jsonable(sa[c][i].as_py()), jsonable(sb[c][i].as_py())]
                       for c, m in masks.items() if m[i].as_py()}
            tally.changed_sample.append(ChangedRow(_row(sa, i, key), changes))


def _compare_part(ta, tb, key, values, labels, tally: _Tally) -> None:
    import pyarrow.compute as pc

    _check_unique(ta, key, labels[0])
    _check_unique(tb, key, labels[1])
    ka = ta.select(key).append_column(A_ROW, row_numbers(0, ta.num_rows))
    kb = tb.select(key).append_column(B_ROW, row_numbers(0, tb.num_rows))
    joined = ka.join(kb, key, join_type="full outer")
    removed = joined.filter(pc.is_null(joined[B_ROW]))[A_ROW]
    added = joined.filter(pc.is_null(joined[A_ROW]))[B_ROW]
    tally.removed += len(removed)
    tally.added += len(added)
    for idx, table, sample in ((removed, ta, tally.removed_sample), (added, tb, tally.added_sample)):
        room = SAMPLE - len(sample)
        if room > 0 and len(idx):
            sample += [{k: jsonable(v) for k, v in r.items()}
                       for r in table.select(key).take(idx.slice(0, room)).to_pylist()]
    matched = joined.filter(pc.and_(pc.is_valid(joined[A_ROW]), pc.is_valid(joined[B_ROW])))
    for start in range(0, matched.num_rows, MATCH_CHUNK):
        m = matched.slice(start, MATCH_CHUNK)
        _compare_matched(ta.take(m[A_ROW]), tb.take(m[B_ROW]), key, values, tally)


def _sort_key(row: dict):
    return [(v is None, str(type(v)), v if v is not None else 0) for v in row.values()]


def keyed_diff(a: TableReader, b: TableReader, key: list[str], pairs: list[tuple[str, str]],
               workdir: str) -> KeyedDiff:
    """Rows added, removed and changed from `a` to `b`, matched by `key`.

    `pairs` are the (name in A, name in B) columns both versions hold; values are compared
    on those, and reported under B's name.
    """
    import pyarrow as pa

    if not key:
        raise BadInputError("a keyed diff needs at least one key column")
    _check_key(a, key)
    _check_key(b, key)
    values = [(x, y) for x, y in pairs if x not in key and y not in key]
    count = parts_for(max(a.estimated_bytes, b.estimated_bytes))
    labels = (a.source.label, b.source.label)
    names = key + [y for _, y in values]
    try:
        parts_a = _spill(a, key + [x for x, _ in values], names, key, {}, count, workdir, "a")
        parts_b = _spill(b, names, names, key, _key_casts(a, b, key), count, workdir, "b")
    except pa.ArrowInvalid as exc:
        raise BadInputError(f"the key columns of {labels[1]} cannot be compared with those of "
                            f"{labels[0]}: {exc}") from exc
    tally = _Tally()
    empty_a = _empty_schema(a, key + [x for x, _ in values], names, {})
    empty_b = _empty_schema(b, names, names, _key_casts(a, b, key))
    with parts_a, parts_b:
        for p in range(count):
            ta, tb = parts_a.load(p, empty_a), parts_b.load(p, empty_b)
            _compare_part(ta, tb, key, [y for _, y in values], labels, tally)
    return KeyedDiff(
        key=key, added=tally.added, removed=tally.removed, changed=tally.changed,
        unchanged=tally.unchanged, changed_columns=dict(tally.columns.most_common()),
        added_sample=sorted(tally.added_sample, key=_sort_key),
        removed_sample=sorted(tally.removed_sample, key=_sort_key),
        changed_sample=sorted(tally.changed_sample, key=lambda c: _sort_key(c.key)),
        not_compared=sorted(tally.not_compared),
    )


def _empty_schema(reader: TableReader, columns: list[str], names: list[str], casts: dict):
    """The schema of a side's spilled batches, for a side that had no rows at all."""
    import pyarrow as pa

    out = []
    for c, n in zip(columns, names, strict=True):
        t = reader.schema.field(c).type
        out.append(pa.field(n, casts.get(n, t.value_type if pa.types.is_dictionary(t) else t)))
    return pa.schema(out)


# --- without a key ----------------------------------------------------------------------

def _spill_hashes(reader: TableReader, columns: list[str], count: int, workdir: str, tag: str):
    import pyarrow as pa

    from dvlite.tables.hashing import hash_rows

    parts = Partitions(count, workdir, tag)
    rows = 0
    try:
        for batch in reader.batches(columns=columns):
            h = hash_rows([batch.column(c) for c in columns])
            small = pa.RecordBatch.from_arrays([h, row_numbers(rows, batch.num_rows)],
                                               names=[ROW_HASH, ROW_INDEX])
            parts.add(small, h)
            rows += batch.num_rows
        parts.finish()
    except BaseException:
        parts.close()
        raise
    return parts, rows


def _rows_at(reader: TableReader, indices: list[int], columns: list[str]) -> list[dict]:
    """The rows at these positions (sorted), read in one more pass that stops at the last."""
    wanted, out, offset = sorted(indices), [], 0
    for batch in reader.batches(columns=columns):
        end = offset + batch.num_rows
        for i in (i for i in wanted if offset <= i < end):
            out.append({k: jsonable(v) for k, v in batch.slice(i - offset, 1).to_pylist()[0].items()})
        offset = end
        if not wanted or offset > wanted[-1]:
            break
    return out


def multiset_diff(a: TableReader, b: TableReader, pairs: list[tuple[str, str]],
                  workdir: str) -> MultisetDiff:
    """How many rows only `a` holds and only `b` holds, comparing the paired columns."""
    import pyarrow.compute as pc

    if not pairs:  # nothing in common: every row is different
        return MultisetDiff([], _count_rows(a), _count_rows(b), 0, [], [])
    cols_a, cols_b = [x for x, _ in pairs], [y for _, y in pairs]
    rows_guess = max(a.num_rows or a.estimated_bytes // 8, b.num_rows or b.estimated_bytes // 8)
    count = parts_for(32 * rows_guess)
    parts_a, rows_a = _spill_hashes(a, cols_a, count, workdir, "a")
    with parts_a:
        parts_b, _ = _spill_hashes(b, cols_b, count, workdir, "b")
        with parts_b:
            only_a, only_b, idx_a, idx_b = 0, 0, [], []
            for p in range(count):
                ga, gb = (_grouped(parts.load(p, _hash_schema())) for parts in (parts_a, parts_b))
                j = ga.join(gb, ROW_HASH, join_type="full outer", left_suffix="_a", right_suffix="_b")
                diff = pc.subtract(pc.fill_null(j["n_a"], 0), pc.fill_null(j["n_b"], 0))
                only_a += pc.sum(pc.max_element_wise(diff, 0)).as_py() or 0
                only_b += pc.sum(pc.max_element_wise(pc.negate(diff), 0)).as_py() or 0
                idx_a += j.filter(pc.greater(diff, 0))["first_a"].slice(0, SAMPLE).to_pylist()
                idx_b += j.filter(pc.less(diff, 0))["first_b"].slice(0, SAMPLE).to_pylist()
    return MultisetDiff(
        columns=cols_b, only_in_a=only_a, only_in_b=only_b, in_both=rows_a - only_a,
        only_in_a_sample=_rows_at(a, sorted(idx_a)[:SAMPLE], cols_a) if idx_a else [],
        only_in_b_sample=_rows_at(b, sorted(idx_b)[:SAMPLE], cols_b) if idx_b else [],
    )


def _count_rows(reader: TableReader) -> int:
    if reader.num_rows is not None:
        return reader.num_rows
    first = reader.schema.names[:1]
    return sum(batch.num_rows for batch in reader.batches(columns=first)) if first else 0


def _hash_schema():
    import pyarrow as pa

    return pa.schema([(ROW_HASH, pa.uint64()), (ROW_INDEX, pa.int64())])


def _grouped(table):
    g = table.group_by(ROW_HASH).aggregate([(ROW_INDEX, "min"), (ROW_INDEX, "count")])
    return g.rename_columns([{f"{ROW_INDEX}_min": "first", f"{ROW_INDEX}_count": "n"}.get(n, n)
                             for n in g.column_names])
