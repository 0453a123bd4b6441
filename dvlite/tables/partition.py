"""Rows split into hash partitions, spilled to Arrow IPC files, so big tables fit in memory
one part at a time (a grace hash join: equal keys always land in the same part).

One part stays in memory; more parts are written under a private directory inside the
`workdir` the caller gives, removed again on close.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from typing import Self

PART_BYTES = 32 << 20  # decoded bytes of one side's part held in memory at a time
MAX_PARTS = 1024


def parts_for(estimated_bytes: int) -> int:
    """How many parts (a power of two) keep each near PART_BYTES."""
    wanted = max(1, math.ceil(estimated_bytes / PART_BYTES))
    return min(MAX_PARTS, 1 << (wanted - 1).bit_length())


def row_numbers(start: int, n: int):
    """An int64 array start, start+1, ..., start+n-1 (without a Python loop)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if n == 0:
        return pa.array([], pa.int64())
    ones = pa.repeat(pa.scalar(1, pa.int64()), n)
    return pc.add(pc.cumulative_sum(ones), pa.scalar(start - 1, pa.int64()))


class Partitions:
    """Batches routed by a uint64 hash per row into `count` parts."""

    def __init__(self, count: int, workdir: str, name: str):
        self.count = count
        self.name = name
        self._memory: list = []
        self._writers: dict = {}
        self._dir = None
        self._schema = None
        if count > 1:
            os.makedirs(workdir, exist_ok=True)
            self._dir = tempfile.mkdtemp(prefix=f"{name}-", dir=workdir)

    def add(self, batch, hashes) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self._schema = batch.schema
        if self.count == 1:
            self._memory.append(batch)
            return
        part = pc.bit_wise_and(pc.shift_right(hashes, pa.scalar(40, pa.uint64())),
                               pa.scalar(self.count - 1, pa.uint64()))
        order = pc.array_sort_indices(part)
        ordered = batch.take(order)
        counts = pc.value_counts(part.take(order))
        start = 0
        for p, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()):
            self._writer(p, batch.schema).write_batch(ordered.slice(start, n))
            start += n

    def _writer(self, part: int, schema):
        import pyarrow as pa

        writer = self._writers.get(part)
        if writer is None:
            path = os.path.join(self._dir, f"{part}.arrow")
            writer = self._writers[part] = pa.ipc.new_file(path, schema)
        return writer

    def finish(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def load(self, part: int, schema):
        """Part `part` as a Table; empty with the batches' schema (or `schema`, when no batch
        came at all) when no row landed there."""
        import pyarrow as pa

        if self.count == 1:
            return pa.Table.from_batches(self._memory, schema=self._schema or schema)
        if part not in self._writers:
            return (self._schema or schema).empty_table()
        # no `with`: the table's buffers point into the map, which lives as long as they do
        return pa.ipc.open_file(pa.memory_map(os.path.join(self._dir, f"{part}.arrow"))).read_all()

    def close(self) -> None:
        self._memory = []
        for writer in self._writers.values():
            with contextlib.suppress(OSError, ValueError):  # closed already, or the disk failed
                writer.close()
        self._writers = {}
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
