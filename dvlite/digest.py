"""Algorithm-tagged digests and streaming hashing."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import xxhash

from dvlite.errors import FormatError

ALGORITHM = "xxh3-128"
CHUNK = 1 << 20  # 1 MiB reads keep big files I/O bound, not call bound
_HEX = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, order=True)
class Digest:
    algo: str
    hex: str

    @classmethod
    def parse(cls, algo: str, hexdigest: str) -> Digest:
        if algo != ALGORITHM:
            raise FormatError(f"unknown hash algorithm {algo!r} (expected {ALGORITHM})")
        if not isinstance(hexdigest, str) or not _HEX.match(hexdigest):
            raise FormatError(f"bad {algo} digest {hexdigest!r}")
        return cls(algo, hexdigest)

    def __str__(self) -> str:
        return self.hex


def hash_bytes(data: bytes) -> Digest:
    return Digest(ALGORITHM, xxhash.xxh3_128_hexdigest(data))


def new_hasher():
    return xxhash.xxh3_128()


def finish(hasher) -> Digest:
    return Digest(ALGORITHM, hasher.hexdigest())


def hash_file(path: str | os.PathLike) -> Digest:
    with open(path, "rb", buffering=0) as f:
        return hash_stream(f)


def hash_stream(f) -> Digest:
    if os.fstat(f.fileno()).st_size < CHUNK:  # the common small-file case: one read, one call
        first = f.readall()
        if len(first) < CHUNK:
            return hash_bytes(first)
    else:
        first = f.read(CHUNK)
    h = new_hasher()
    h.update(first)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while n := f.readinto(buf):
        h.update(view[:n])
    return finish(h)


def hash_fd(fd: int) -> Digest:
    """The digest of everything in `fd` from offset 0, whatever its file position."""
    h = new_hasher()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    offset = 0
    while n := os.preadv(fd, [buf], offset):
        h.update(view[:n])
        offset += n
    return finish(h)
