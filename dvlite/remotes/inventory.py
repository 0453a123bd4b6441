"""What a remote holds, loose and packed, and moving packed objects to and from it.

Pack indexes are immutable and named by their pack's digest, so a copy kept under
`.dvlite/tmp/pack-index/` stays true forever: knowing what a remote holds costs one
listing of `packs/` plus a download of each index not seen before.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dvlite.digest import hash_bytes
from dvlite.errors import FormatError, IntegrityError
from dvlite.formats.packs import (
    MAX_INDEX,
    PACK_BELOW,
    DamagedIndexError,
    PackedObject,
    PackIndex,
    Read,
    build_pack,
    plan_reads,
    slice_objects,
)
from dvlite.fsutil import atomic_write, read_limited
from dvlite.remotes.backend import Remote
from dvlite.remotes.errors import run_jobs
from dvlite.storage.cache import Cache
from dvlite.storage.base import Listed
from dvlite.storage.layout import (CHUNK_LISTS, CHUNKED_LAYOUT, PACKED_LAYOUT, chunked_of,
                                  digest_of, object_key, pack_key, pack_of)

FEW = 32  # up to this many loose candidates, ask for each; beyond, list the remote
PACK_JOBS = 1  # packs in flight at once: each is held in memory while it travels (two put a
# push of 10,000 small files to S3 above DVC's peak, and were no faster here: performance.md)


@dataclass
class Inventory:
    packed: dict[str, PackedObject] = field(default_factory=dict)
    pack_sizes: dict[str, int] = field(default_factory=dict)
    indexes: dict[str, PackIndex] = field(default_factory=dict)
    loose: set[str] = field(default_factory=set)
    chunked: set[str] = field(default_factory=set)  # objects held as a chunk list (layout 3)
    damaged: dict[str, str] = field(default_factory=dict)  # pack -> why it cannot be used

    def has(self, digest: str) -> bool:
        return digest in self.packed or digest in self.loose or digest in self.chunked

    def holding(self, digests: set[str]) -> set[str]:
        return {d for d in digests if self.has(d)}


def read_remote_index(remote: Remote, pack: str) -> PackIndex:
    """A pack's index as the remote holds it (bounded, verified, naming this pack)."""
    key = pack_key(pack, "idx")
    path = remote.path(key)
    index = PackIndex.from_bytes(remote.read_small(key, MAX_INDEX), path)
    if index.pack != pack:
        raise DamagedIndexError(f"pack index {path} describes pack {index.pack}, not {pack}")
    return index


def _cached_index(remote: Remote, pack: str, index_cache: str, version: str | None) -> PackIndex:
    """The pack's index from the copy kept locally, unless the remote's listing says its index
    was rewritten since (a damaged or replaced index must not hide behind a good copy)."""
    local = os.path.join(index_cache, f"{pack}.idx")
    marker = local + ".version"
    try:
        kept = read_limited(marker, 4096, marker).decode() if version is not None else None
        if kept == version:
            return PackIndex.from_bytes(read_limited(local, MAX_INDEX, local), local)
    except (FileNotFoundError, IntegrityError, FormatError, UnicodeDecodeError):
        pass
    index = read_remote_index(remote, pack)
    os.makedirs(index_cache, exist_ok=True)
    atomic_write(local, index.to_bytes(), durable=False)  # a cache: lost, it is fetched again
    atomic_write(marker, (version or "").encode(), durable=False)
    return index


def pack_files(remote: Remote) -> dict[str, dict[str, Listed]]:
    """pack digest -> {"pack": Listed, "idx": Listed} from one listing of `packs/`; names that
    are not a pack's are ignored."""
    out: dict[str, dict[str, Listed]] = {}
    for key, listed in remote.list("packs").items():
        found = pack_of(key)
        if found is not None:
            out.setdefault(found[0], {})[found[1]] = listed
    return out


def loose_sizes(remote: Remote) -> dict[str, int]:
    """digest -> size of every loose object, from one listing of `objects/`."""
    out = {}
    for key, listed in remote.list("objects").items():
        digest = digest_of(key)
        if digest is not None:
            out[digest] = listed.size or 0
    return out


def read_packs(remote: Remote, index_cache: str, jobs: int) -> Inventory:
    """Every usable pack of the remote. A pack whose index is damaged, or whose size is not what
    its index says (truncated), is left out: its objects count as absent, so `push` uploads them
    again and `fetch` reports them missing instead of failing on the whole remote."""
    inv = Inventory()
    files = pack_files(remote)
    packs = sorted(p for p, exts in files.items() if "idx" in exts)

    def load(pack: str) -> PackIndex | str:
        try:
            return _cached_index(remote, pack, index_cache, files[pack]["idx"].version)
        except (DamagedIndexError, FormatError) as exc:
            return exc.message

    with ThreadPoolExecutor(max(1, min(jobs, 16))) as pool:
        loaded = list(pool.map(load, packs))
    for pack, index in zip(packs, loaded):
        if isinstance(index, str):
            inv.damaged[pack] = index
        elif _size(files[pack]) not in (index.pack_size, None):  # None: the listing gives none
            inv.damaged[pack] = (f"pack {remote.path(pack_key(pack, 'pack'))} holds "
                                 f"{_size(files[pack]) or 0} bytes, its index says {index.pack_size}")
        else:
            remember(inv, index)
    return inv


def _size(exts: dict[str, Listed]) -> int | None:
    """The size a listing gives the pack file (0 when the pack is not there at all)."""
    listed = exts.get("pack")
    return 0 if listed is None else listed.size


def inventory(remote: Remote, candidates: set[str], index_cache: str, jobs: int) -> Inventory:
    """What the remote holds among `candidates` (packed: all of it; loose: what was asked)."""
    inv = read_packs(remote, index_cache, jobs)
    inv.chunked = chunked_objects(remote)
    rest = {d for d in candidates if d not in inv.packed and d not in inv.chunked}
    if remote.kind == "http" or len(rest) <= FEW:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            found = list(pool.map(lambda d: remote.exists(object_key(d)), sorted(rest)))
        inv.loose = {d for d, ok in zip(sorted(rest), found) if ok}
    else:
        inv.loose = set(loose_sizes(remote)) & rest
    return inv


def chunked_objects(remote: Remote) -> set[str]:
    """Objects the remote holds as chunk lists: one listing of `chunklists/`, on a remote whose
    layout says it may have some (3)."""
    if (remote.read_layout() or 0) < CHUNKED_LAYOUT:
        return set()
    out = set()
    for key in remote.list(CHUNK_LISTS):
        found = chunked_of(key)
        if found is not None and found[0] == CHUNK_LISTS:
            out.add(found[1])
    return out


def remember(inv: Inventory, index: PackIndex) -> None:
    inv.indexes[index.pack] = index
    inv.pack_sizes[index.pack] = index.pack_size
    for digest, (offset, length) in index.entries.items():
        inv.packed[digest] = PackedObject(index.pack, offset, length)


# --- writing ---------------------------------------------------------------------------------

def is_packable(size: int) -> bool:
    return size < PACK_BELOW


def write_pack(remote: Remote, objects: Iterable[tuple[str, bytes]], index_cache: str) -> PackIndex:
    """Upload one pack, then its index: a reader never sees an index before its pack."""
    # S3 and a local directory take the build buffer as it is: no second copy in memory
    pack = build_pack(objects, as_bytes=remote.protocol not in ("s3", "s3a", "file", "local"))
    remote.ensure_layout(PACKED_LAYOUT)
    remote.store(pack_key(pack.digest, "pack"), pack.data)
    body = pack.index.to_bytes()
    remote.store(pack_key(pack.digest, "idx"), body)
    with contextlib.suppress(OSError):
        os.makedirs(index_cache, exist_ok=True)
        atomic_write(os.path.join(index_cache, f"{pack.digest}.idx"), body, durable=False)
    return pack.index


def upload_packs(remote: Remote, odb: Cache, groups: Iterable[list[str]], index_cache: str,
                 jobs: int) -> Iterator[tuple[list[str], BaseException | None]]:
    """Pack each group of cached objects and upload it; yield (group, error or None)."""
    def one(group: list[str]) -> None:
        write_pack(remote, ((digest, odb.read(digest)) for digest in group), index_cache)

    yield from run_jobs(min(jobs, PACK_JOBS), one, groups)


# --- reading -------------------------------------------------------------------------------------

def fetch_reads(inv: Inventory, wanted: set[str]) -> list[Read]:
    return plan_reads({d: inv.packed[d] for d in wanted}, inv.pack_sizes)


def fetch_read(remote: Remote, odb: Cache, read: Read, index: PackIndex | None = None
               ) -> list[tuple[str, BaseException | None]]:
    """Fetch one planned read; store each object it holds, verified; (digest, error) for each.
    A pack cut short spoils only the objects past its end. A whole pack of wanted objects
    (`index`: the remote's index of it) becomes a cache pack as it is, once every object in
    it matches its name: no copy of each object into a new pack (invariant 29)."""
    path = remote.path(pack_key(read.pack, "pack"))
    data = remote.load(pack_key(read.pack, "pack"), read.start, read.end)
    if index is not None and odb.pack_small and _adoptable(read, index, data):
        odb.install_pack(index, data)
        return [(digest, None) for digest, _o, _n in read.objects]
    out: list[tuple[str, BaseException | None]] = []
    for digest, body in slice_objects(read, data):
        try:
            odb.put_verified(body, digest, f"{path} (object {digest})")
            out.append((digest, None))
        except IntegrityError as exc:
            out.append((digest, exc))
    return out


def _adoptable(read: Read, index: PackIndex, data: bytes) -> bool:
    """Whether `data` is the whole pack `index` describes, every object in it wanted and
    hashing to its name (otherwise each object is checked and stored on its own)."""
    if read.start != 0 or len(data) != index.pack_size or len(read.objects) != len(index.entries):
        return False
    if hash_bytes(data).hex != index.pack:  # named by its bytes, as the cache's own packs
        return False
    view = memoryview(data)
    return all(index.entries.get(digest) == (offset, length)
               and hash_bytes(view[offset:offset + length]).hex == digest
               for digest, offset, length in read.objects)


# --- garbage collection ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RepackPlan:
    repacked: list[str]  # packs holding some unused objects: rewritten with the rest
    dropped: list[str]  # packs holding only unused objects


def plan_repack(inv: Inventory, keep: set[str]) -> RepackPlan:
    repacked, dropped = [], []
    for pack, index in sorted(inv.indexes.items()):
        live = sum(1 for d in index.entries if d in keep)
        if live == 0:
            dropped.append(pack)
        elif live < len(index.entries):
            repacked.append(pack)
    return RepackPlan(repacked, dropped)


def repack(remote: Remote, index: PackIndex, keep: set[str], index_cache: str) -> None:
    """Write a new pack of the kept objects of `index`'s pack; the old one is left in place."""
    path = remote.path(pack_key(index.pack, "pack"))
    data = remote.load(pack_key(index.pack, "pack"))
    objects = []
    for digest, (offset, length) in sorted(index.entries.items(), key=lambda e: e[1][0]):
        if digest not in keep:
            continue
        body = data[offset:offset + length]
        if hash_bytes(body).hex != digest:
            raise IntegrityError(f"corrupt object in {path} ({digest}): not repacking it",
                                 hint="push the data again from a machine that has it")
        objects.append((digest, body))
    write_pack(remote, objects, index_cache)


def remove_pack(remote: Remote, pack: str) -> None:
    """The index goes first: a pack without an index is invisible, never half-visible."""
    remote.delete(pack_key(pack, "idx"))
    remote.delete(pack_key(pack, "pack"))
