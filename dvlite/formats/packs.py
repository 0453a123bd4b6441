"""Pack files: many small objects in one remote file, found through an index written after it.

    pack   b"DVLPACK1" + object bytes, back to back
    index  b"DVLIDX01" + pack digest (16 bytes) + pack size (u64) + count (u64)
           + count x (object digest 16 bytes, offset u64, length u64), sorted by digest
           + XXH3-128 of everything before (16 bytes)

Both are named by the pack's digest (`packs/<hex>.pack`, `packs/<hex>.idx`): a pack's
contents decide its name and its index, so two pushers never write different bytes under
one name. Pure values and functions: no I/O here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from dvlite.digest import hash_bytes
from dvlite.errors import IntegrityError

PACK_MAGIC = b"DVLPACK1"
INDEX_MAGIC = b"DVLIDX01"
PACK_BELOW = 1 << 20  # objects smaller than this travel in packs
PACK_TARGET = 8 << 20  # a remote pack is closed once it holds this many bytes (two in flight:
# 32 MiB packs put a push of 10,000 small files at 215 MiB, 8 MiB ones at about 120; performance.md)
CACHE_PACK_TARGET = 8 << 20  # packs in the cache: they are built in memory during add/fetch
MAX_PACK = 1 << 40  # no pack dvlite writes comes near; an index claiming more is damaged
MAX_INDEX = 64 << 20  # an index of ~2 million objects: read no bigger one
_HEAD = struct.Struct("<8s16sQQ")
_ENTRY = struct.Struct("<16sQQ")
_TRAILER = 16


class DamagedIndexError(IntegrityError):
    """A pack index that fails its checksum or its bounds: its pack's objects are unreachable."""


class PackedObject(NamedTuple):  # a tuple: tens of thousands are made per command
    pack: str  # the pack's hex digest
    offset: int
    length: int


@dataclass(frozen=True)
class PackIndex:
    pack: str
    pack_size: int
    entries: dict[str, tuple[int, int]]  # object hex digest -> (offset, length)

    def locate(self, hexdigest: str) -> PackedObject | None:
        location = self.entries.get(hexdigest)
        return PackedObject(self.pack, *location) if location is not None else None

    def to_bytes(self) -> bytes:
        body = bytearray(_HEAD.pack(INDEX_MAGIC, bytes.fromhex(self.pack), self.pack_size,
                                    len(self.entries)))
        for digest in sorted(self.entries):
            offset, length = self.entries[digest]
            body += _ENTRY.pack(bytes.fromhex(digest), offset, length)
        body += bytes.fromhex(hash_bytes(bytes(body)).hex)
        return bytes(body)

    @classmethod
    def from_bytes(cls, data: bytes, origin: str) -> PackIndex:
        def bad(why: str) -> DamagedIndexError:
            return DamagedIndexError(f"pack index {origin} is damaged ({why})")

        if len(data) < _HEAD.size + _TRAILER:
            raise bad("too short")
        body, trailer = data[:-_TRAILER], data[-_TRAILER:]
        if hash_bytes(body).hex != trailer.hex():
            raise bad("checksum mismatch")
        magic, pack, pack_size, count = _HEAD.unpack_from(body)
        if magic != INDEX_MAGIC:
            raise bad("not a dvlite pack index")
        if len(body) != _HEAD.size + count * _ENTRY.size:
            raise bad("wrong length")
        if pack_size > MAX_PACK:
            raise bad(f"pack size {pack_size} is not believable")
        entries = {
            d.hex(): (offset, length)
            for d, offset, length in _ENTRY.iter_unpack(memoryview(body)[_HEAD.size:])
        }
        if len(entries) != count:
            raise bad("an object is listed twice")
        lowest = len(PACK_MAGIC)
        if any(offset < lowest or offset + length > pack_size for offset, length in entries.values()):
            raise bad("an object lies outside its pack")
        return cls(pack.hex(), pack_size, entries)


def salvage_digests(data: bytes) -> set[str]:
    """The object digests a damaged index still seems to list (best effort, never trusted for
    offsets: only to know which objects to look for elsewhere)."""
    if len(data) < _HEAD.size + _TRAILER:
        return set()
    body = memoryview(data)[:len(data) - _TRAILER]
    whole = (len(body) - _HEAD.size) // _ENTRY.size * _ENTRY.size
    return {d.hex() for d, _o, _n in _ENTRY.iter_unpack(body[_HEAD.size:_HEAD.size + whole])}


@dataclass(frozen=True)
class Pack:
    digest: str
    data: bytes
    index: PackIndex


def build_pack(objects: Iterable[tuple[str, bytes]], as_bytes: bool = True) -> Pack:
    """One pack from (digest, bytes) pairs, in the order given. The objects are copied into
    one buffer as the iterable yields them, so the caller need not hold them all. `as_bytes`
    False leaves the pack in that buffer (a local write takes it; no second copy in memory)."""
    buf = bytearray(PACK_MAGIC)
    entries: dict[str, tuple[int, int]] = {}
    for digest, data in objects:
        if digest in entries:
            continue
        entries[digest] = (len(buf), len(data))
        buf += data
    data = bytes(buf) if as_bytes else buf  # some backends (adlfs) take only bytes
    del buf
    digest = hash_bytes(data).hex
    return Pack(digest, data, PackIndex(digest, len(data), entries))


def group_for_packs(sizes: dict[str, int], target: int = PACK_TARGET) -> Iterator[list[str]]:
    """Split objects into groups of about `target` bytes each, in the order given."""
    group: list[str] = []
    total = 0
    for digest, size in sizes.items():
        group.append(digest)
        total += size
        if total >= target:
            yield group
            group, total = [], 0
    if group:
        yield group


@dataclass(frozen=True)
class Read:
    """One request against a pack: bytes [start, end) holding some wanted objects."""

    pack: str
    start: int
    end: int
    objects: tuple[tuple[str, int, int], ...]  # (digest, offset, length)


def plan_reads(wanted: dict[str, PackedObject], pack_sizes: dict[str, int],
               whole_above: float = 0.5, gap: int = 256 << 10) -> list[Read]:
    """Requests that fetch `wanted`: a whole pack when most of it is wanted, else byte ranges,
    neighbours closer than `gap` merged into one range."""
    by_pack: dict[str, list[tuple[str, int, int]]] = {}
    for digest, loc in wanted.items():
        by_pack.setdefault(loc.pack, []).append((digest, loc.offset, loc.length))
    reads: list[Read] = []
    for pack, objs in sorted(by_pack.items()):
        objs.sort(key=lambda o: o[1])
        if sum(o[2] for o in objs) >= whole_above * pack_sizes[pack]:
            reads.append(Read(pack, 0, pack_sizes[pack], tuple(objs)))
            continue
        run = [objs[0]]
        for obj in objs[1:]:
            if obj[1] - (run[-1][1] + run[-1][2]) <= gap:
                run.append(obj)
            else:
                reads.append(Read(pack, run[0][1], run[-1][1] + run[-1][2], tuple(run)))
                run = [obj]
        reads.append(Read(pack, run[0][1], run[-1][1] + run[-1][2], tuple(run)))
    return reads


def slice_objects(read: Read, data: bytes) -> Iterator[tuple[str, bytes]]:
    """The wanted objects out of the bytes a Read returned (an object cut short by the end of
    `data` comes out short, and fails its digest)."""
    view = memoryview(data)
    for digest, offset, length in read.objects:
        start = offset - read.start
        yield digest, bytes(view[start:start + length])
