"""Chunked objects: content-defined chunk boundaries (FastCDC) and the chunk-list format.

A large object is stored on a remote as chunks (`chunks/ab/cdef…`, each named by the XXH3-128
digest of its bytes) plus one chunk list (`chunklists/ab/cdef…`, named by the object's digest)
that says which chunks, in which order, make the object:

    b"DVLCHK01" + object digest (16 bytes) + object size (u64) + count (u64)
    + count x (chunk digest 16 bytes, chunk length u64), in the object's byte order
    + XXH3-128 of everything before (16 bytes)

Offsets are implied (each chunk starts where the one before ends); the lengths must add up to
the object's size. Reading never depends on how the boundaries were found: a later dvlite may
cut differently, and only sharing between versions suffers. Pure values and functions: the
chunker reads through a function it is given and does no I/O of its own.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dvlite.digest import hash_bytes, new_hasher
from dvlite.errors import IntegrityError

LIST_MAGIC = b"DVLCHK01"
# FastCDC 2020 (pyfastcdc, its default gear table), normalised chunking level 2: chunks of
# 512 KiB-4 MiB, 1.2 MiB on average, cut at about 6.8 GiB/s here. An edit costs about two
# chunks: 2 MiB-average chunks sent 14.8 MiB for the Parquet rewrite of the benchmark, these
# 11.1 MiB (and 1.2 MiB, not 6.3, for 1 MiB changed in 2 GiB): docs/performance.md.
AVG_CHUNK = 1 << 20
MIN_CHUNK = 512 << 10
MAX_CUT = 4 << 20
NORMALISATION = 2
CHUNK_ABOVE = 64 << 20  # objects this big (and bigger) travel as chunks
MAX_CHUNK = 64 << 20  # a chunk list naming a bigger chunk is refused: each is held in memory
MAX_OBJECT = 1 << 50
MAX_LIST = 64 << 20  # bytes of a chunk list: ~2.8 million chunks
BLOCK = 12 << 20  # the buffer of a stream being cut (RSS): a refill reads BLOCK - MAX_CUT or more
_HEAD = struct.Struct("<8s16sQQ")
_ENTRY = struct.Struct("<16sQ")
_TRAILER = 16


class DamagedChunkListError(IntegrityError):
    """A chunk list that fails its checksum or its bounds: its object cannot be rebuilt."""


@dataclass(frozen=True)
class ChunkList:
    digest: str  # the whole object's hex digest
    size: int
    chunks: tuple[tuple[str, int], ...]  # (chunk hex digest, length), in byte order

    def spans(self) -> Iterator[tuple[str, int, int]]:
        """(chunk digest, offset in the object, length) for every chunk, in order."""
        offset = 0
        for digest, length in self.chunks:
            yield digest, offset, length
            offset += length

    def to_bytes(self) -> bytes:
        body = bytearray(_HEAD.pack(LIST_MAGIC, bytes.fromhex(self.digest), self.size,
                                    len(self.chunks)))
        for digest, length in self.chunks:
            body += _ENTRY.pack(bytes.fromhex(digest), length)
        body += bytes.fromhex(hash_bytes(bytes(body)).hex)
        return bytes(body)

    @classmethod
    def from_bytes(cls, data: bytes, origin: str, digest: str | None = None) -> ChunkList:
        """Parse and check a chunk list; `digest`: the object it must describe."""
        def bad(why: str) -> DamagedChunkListError:
            return DamagedChunkListError(f"chunk list {origin} is damaged ({why})",
                                         hint="push the object again from a clone that has it")

        if len(data) > MAX_LIST:
            raise bad("too long")
        if len(data) < _HEAD.size + _TRAILER:
            raise bad("too short")
        body, trailer = data[:-_TRAILER], data[-_TRAILER:]
        if hash_bytes(body).hex != trailer.hex():
            raise bad("checksum mismatch")
        magic, obj, size, count = _HEAD.unpack_from(body)
        if magic != LIST_MAGIC:
            raise bad("not a dvlite chunk list, or a newer version of one")
        if len(body) != _HEAD.size + count * _ENTRY.size:
            raise bad("wrong length")
        if digest is not None and obj.hex() != digest:
            raise bad(f"it describes object {obj.hex()}, not {digest}")
        if size > MAX_OBJECT:
            raise bad(f"object size {size} is not believable")
        chunks = tuple((d.hex(), n) for d, n in _ENTRY.iter_unpack(memoryview(body)[_HEAD.size:]))
        if any(not 0 < n <= MAX_CHUNK for _d, n in chunks):
            raise bad(f"a chunk is empty or bigger than {MAX_CHUNK} bytes")
        if sum(n for _d, n in chunks) != size:
            raise bad("its chunks do not add up to the object's size")
        return cls(obj.hex(), size, chunks)


def _cutter():
    import pyfastcdc  # compiled (Cython): imported only by the commands that chunk

    return pyfastcdc.FastCDC(AVG_CHUNK, min_size=MIN_CHUNK, max_size=MAX_CUT,
                             normalized_chunking=NORMALISATION)


def cut_stream(readinto: Callable[[memoryview], int], size_hint: int = 0) -> ChunkList | None:
    """Hash a whole stream and cut it into chunks, reading it once through `readinto(view)`
    (fills a prefix of `view`, returns how many bytes; 0 at the end). Returns the chunk list,
    whose `digest` is the whole stream's."""
    cdc = _cutter()
    whole = new_hasher()
    buf = bytearray(min(BLOCK, max(size_hint, MAX_CUT) + MAX_CUT))
    view = memoryview(buf)
    held = 0  # bytes at the front of buf not yet cut (the start of an unfinished chunk)
    chunks: list[tuple[str, int]] = []
    total = 0
    end = False
    while not end:
        n = held
        while n < len(buf):  # fill the buffer: a cut needs MAX_CUT bytes after the chunk start
            got = readinto(view[n:])
            if got <= 0:
                end = True
                break
            whole.update(view[n:n + got])
            n += got
        total += n - held
        start = 0
        for chunk in cdc.cut_buf(view[:n]):
            stop = chunk.offset + chunk.length
            if stop == n and not end:  # may end only because the buffer does: cut it again
                break
            chunks.append((hash_bytes(chunk.data).hex, chunk.length))
            start = stop
        held = n - start
        view[:held] = view[start:n]  # at most MAX_CUT bytes move
    digest = whole.hexdigest()
    return ChunkList(digest, total, tuple(chunks))
