"""64-bit hashes of column values and rows, for distinct-count sketches and partitioning.

Fixed-width values (numbers, dates, times) are mixed with the murmur3 finaliser in
pyarrow compute, without a Python loop; strings and binary values go through xxhash's
XXH3-64 (about 0.15 s per million values). Nulls hash to one constant, -0.0 to what 0.0
does. The hashes are stable across runs and machines: the statistics cache relies on it.
"""

from __future__ import annotations

import json
from functools import cache

import xxhash

NULL_HASH = 0x9E3779B97F4A7C15
_M1, _M2, _ROW = 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x100000001B3


@cache
def _consts():
    import pyarrow as pa

    u64 = pa.uint64()
    return {name: pa.scalar(value, u64) for name, value in
            (("m1", _M1), ("m2", _M2), ("s33", 33), ("null", NULL_HASH), ("row", _ROW))}


def mix(x):
    """The murmur3 64-bit finaliser over a uint64 array (wrapping arithmetic)."""
    import pyarrow.compute as pc

    c = _consts()
    x = pc.bit_wise_xor(x, pc.shift_right(x, c["s33"]))
    x = pc.multiply(x, c["m1"])
    x = pc.bit_wise_xor(x, pc.shift_right(x, c["s33"]))
    x = pc.multiply(x, c["m2"])
    return pc.bit_wise_xor(x, pc.shift_right(x, c["s33"]))


def _as_uint64(arr):
    """Fixed-width values reinterpreted as uint64 bits, or None for other types."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_floating(t):
        floats = pc.add(pc.cast(arr, pa.float64()), pa.scalar(0.0))  # -0.0 + 0.0 is 0.0
        return floats.view(pa.int64()).view(pa.uint64())
    if pa.types.is_boolean(t):
        return pc.cast(arr, pa.uint64())
    if pa.types.is_integer(t):
        return pc.cast(arr, pa.int64(), safe=False).view(pa.uint64()) if t != pa.uint64() else arr
    if pa.types.is_temporal(t):
        width = t.bit_width
        as_int = arr.view(pa.int64() if width == 64 else pa.int32())
        return pc.cast(as_int, pa.int64()).view(pa.uint64())
    return None


def _python_values(arr) -> list[bytes]:
    import pyarrow as pa

    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        arr = arr.cast(pa.binary() if not pa.types.is_large_string(t) else pa.large_binary())
        return arr.to_pylist()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return arr.to_pylist()
    return [json.dumps(v, default=str, sort_keys=True).encode() for v in arr.to_pylist()]


def hash_array(arr):
    """One uint64 hash per value of a pyarrow Array (nulls included, as NULL_HASH)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    bits = _as_uint64(arr)
    if bits is not None:
        hashed = mix(pc.fill_null(bits, pa.scalar(0, pa.uint64())))
    else:
        digest = xxhash.xxh3_64_intdigest
        values = _python_values(arr)
        hashed = pa.array([0 if v is None else digest(v) for v in values], pa.uint64())
    if arr.null_count:
        hashed = pc.if_else(pc.is_valid(arr), hashed, _consts()["null"])
    return hashed


def hash_rows(columns: list) -> object:
    """One uint64 hash per row over several equally long arrays, in their order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    c = _consts()
    h = None
    for col in columns:
        value = hash_array(col)
        h = value if h is None else mix(pc.bit_wise_xor(pc.multiply(h, c["row"]), value))
    if h is None:
        raise ValueError("hash_rows needs at least one column")
    return h if isinstance(h, pa.Array) else pa.array(h)
