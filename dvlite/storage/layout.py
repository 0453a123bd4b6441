"""Where things live inside a storage (the cache directory, or a remote's root).

    dvlite-remote.json     remotes only: {"format": "dvlite-remote", "layout": N}
    objects/ab/cdef…       one object per file, named by its digest (fan-out by 2 hex digits)
    packs/HEX.pack         small objects back to back (formats/packs.py), named by its digest
    packs/HEX.idx          where each object of that pack sits; written after the pack
    runs/KEY               run-cache records (pipelines/runcache.py), named by the run's key
    chunks/ab/cdef…        remotes, layout 3: a piece of a large object, named by its own digest
    chunklists/ab/cdef…    which chunks make object `abcdef…` (formats/chunks.py); on a remote
                           written after all its chunks; in the cache, beside a whole object
    projects/ID            cache only: a project that uses this cache (storage/projects.py)

Keys are built and recognised here and nowhere else.
"""

from __future__ import annotations

import re

OBJECTS = "objects"
PACKS = "packs"
RUNS = "runs"
CHUNKS = "chunks"
CHUNK_LISTS = "chunklists"
LAYOUT_FILE = "dvlite-remote.json"
PACKED_LAYOUT = 2  # a remote holding packs says at least this (raised before the first pack)
CHUNKED_LAYOUT = 3  # a remote holding chunk lists says at least this (raised before the first)
_HEX32 = re.compile(r"[0-9a-f]{32}")
_OBJECT_KEY = re.compile(r"objects/([0-9a-f]{2})/([0-9a-f]{30})")
_CHUNK_KEY = re.compile(r"(chunks|chunklists)/([0-9a-f]{2})/([0-9a-f]{30})")
_PACK_KEY = re.compile(r"packs/([0-9a-f]{32})\.(pack|idx)")


def is_digest(text: str) -> bool:
    return bool(_HEX32.fullmatch(text))


def object_key(hexdigest: str) -> str:
    return f"{OBJECTS}/{hexdigest[:2]}/{hexdigest[2:]}"


def chunk_key(hexdigest: str) -> str:
    return f"{CHUNKS}/{hexdigest[:2]}/{hexdigest[2:]}"


def chunklist_key(hexdigest: str) -> str:
    """Where the chunk list of object `hexdigest` lives."""
    return f"{CHUNK_LISTS}/{hexdigest[:2]}/{hexdigest[2:]}"


def chunked_of(key: str) -> tuple[str, str] | None:
    """("chunks" | "chunklists", digest) for a listed chunk or chunk-list key, else None."""
    m = _CHUNK_KEY.fullmatch(key)
    return (m[1], m[2] + m[3]) if m else None


def pack_key(pack: str, ext: str) -> str:
    return f"{PACKS}/{pack}.{ext}"


def run_key(key: str) -> str:
    return f"{RUNS}/{key}"


def digest_of(key: str) -> str | None:
    """The object a listed key holds, or None for anything that is not `objects/ab/cdef…`."""
    m = _OBJECT_KEY.fullmatch(key)
    return m[1] + m[2] if m else None


def pack_of(key: str) -> tuple[str, str] | None:
    """(pack digest, "pack" | "idx") for a key under packs/, else None."""
    m = _PACK_KEY.fullmatch(key)
    return (m[1], m[2]) if m else None


def record_of(key: str) -> str | None:
    """The run key of a `runs/KEY` key, or None."""
    head, _, name = key.partition("/")
    return name if head == RUNS and is_digest(name) else None
