"""Chunk lists kept beside large cache objects: how a remote stores them (formats/chunks.py),
computed while `add` copies the object in, so `push` reads only the chunks a remote lacks and
`fetch` finds the chunks an older version already holds.

They are derived data (`chunklists/ab/cdef…` in the cache): a lost or damaged one is cut again
from its object, whose bytes must hash to its name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from dvlite.digest import new_hasher
from dvlite.errors import FormatError, IntegrityError
from dvlite.formats.chunks import CHUNK_ABOVE, MAX_LIST, ChunkList, cut_stream
from dvlite.fsutil import TMP_MARK, atomic_write, read_limited
from dvlite.storage.layout import CHUNK_LISTS, OBJECTS

MODE = 0o444


def path(cache_dir: str, hexdigest: str) -> str:
    return os.path.join(cache_dir, CHUNK_LISTS, hexdigest[:2], hexdigest[2:])


def _object_path(cache_dir: str, hexdigest: str) -> str:
    return os.path.join(cache_dir, OBJECTS, hexdigest[:2], hexdigest[2:])


def hash_read(readinto) -> str:
    """The digest of everything `readinto` yields."""
    h = new_hasher()
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    while n := readinto(view):
        h.update(view[:n])
    return h.hexdigest()


def scanner(size: int) -> Callable:
    """What reads a large object back while it is copied in: its digest, or from CHUNK_ABOVE
    up its chunk list (which carries the digest)."""
    if size >= CHUNK_ABOVE:
        return lambda readinto: cut_stream(readinto, size)
    return hash_read


def save(cache_dir: str, chunks: ChunkList) -> None:
    """Keep an object's chunk list beside it (not fsynced: it can always be cut again)."""
    where = path(cache_dir, chunks.digest)
    if os.path.exists(where):
        return
    os.makedirs(os.path.dirname(where), exist_ok=True)
    atomic_write(where, chunks.to_bytes(), mode=MODE, durable=False)


def kept(cache_dir: str, hexdigest: str) -> ChunkList | None:
    """The chunk list kept for an object, if there is a sound one."""
    where = path(cache_dir, hexdigest)
    try:
        return ChunkList.from_bytes(read_limited(where, MAX_LIST, where), where, hexdigest)
    except (OSError, IntegrityError, FormatError):
        return None


def of_object(cache_dir: str, hexdigest: str) -> ChunkList:
    """A loose object's chunk list: the one kept beside it, or cut now from its bytes (which
    must hash to its name: IntegrityError otherwise)."""
    found = kept(cache_dir, hexdigest)
    if found is not None:
        return found
    try:
        with open(_object_path(cache_dir, hexdigest), "rb", buffering=0) as f:
            found = cut_stream(f.readinto, os.fstat(f.fileno()).st_size)
    except FileNotFoundError:
        raise IntegrityError(f"object {hexdigest} is not in the cache") from None
    if found.digest != hexdigest:
        raise IntegrityError(f"cache object {hexdigest} is corrupt", hint="run `dvlite fsck --repair`")
    with contextlib.suppress(OSError):
        save(cache_dir, found)
    return found


def _listed(cache_dir: str):
    """The digest of every object with a chunk list kept in the cache."""
    with contextlib.suppress(FileNotFoundError):
        for fan in os.scandir(os.path.join(cache_dir, CHUNK_LISTS)):
            for entry in os.scandir(fan.path):
                if not entry.name.startswith(TMP_MARK):
                    yield fan.name + entry.name


def local_chunks(cache_dir: str) -> dict[str, tuple[str, int, int]]:
    """chunk digest -> (loose object, offset, length) over every chunk list kept in the cache
    whose object is there too: the pieces a chunked download need not fetch."""
    out: dict[str, tuple[str, int, int]] = {}
    for hexdigest in _listed(cache_dir):
        if not os.path.exists(_object_path(cache_dir, hexdigest)):
            continue
        chunks = kept(cache_dir, hexdigest)
        for chunk, offset, length in chunks.spans() if chunks else ():
            out.setdefault(chunk, (hexdigest, offset, length))
    return out


def sharing(cache_dir: str, wanted: set[str], skip: set[str]) -> list[tuple[str, set[str]]]:
    """(object, the chunks of `wanted` its kept list names) for every object not in `skip`
    whose list names any, most shared first: the older versions of what a push sends."""
    out = []
    for hexdigest in _listed(cache_dir):
        chunks = None if hexdigest in skip else kept(cache_dir, hexdigest)
        shared = {c for c, _n in chunks.chunks} & wanted if chunks else set()
        if shared:
            out.append((hexdigest, shared))
    return sorted(out, key=lambda found: -len(found[1]))
