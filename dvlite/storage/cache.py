"""The local content-addressed object store: `objects/ab/cdef...` and `packs/HEX.pack|idx`.

Objects are written once, never modified: a loose one goes to a temp file while it is hashed,
then is renamed to its digest, so the bytes under a name are exactly the bytes hashed. Inside a
`batch()` (an `add` or `fetch` of many files) objects under 1 MiB go into ~8 MiB packs in the
remotes' format (packs.py): one file creation per pack, not per object. A pack's index is
written after the pack, both before any manifest or pointer names their objects (the caller's
sync barrier). Large objects have their chunk lists kept beside them (chunklists.py).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from dvlite.digest import ALGORITHM, Digest, hash_bytes, hash_file, new_hasher
from dvlite.errors import FormatError, IntegrityError
from dvlite.formats.manifest import Manifest
from dvlite.fsutil import (TMP_MARK, atomic_copy, atomic_write, read_limited, remove_file,
                           remove_temp_files, removed_on_failure, temp_name)
from dvlite.storage.layout import OBJECTS, PACKS
from dvlite.storage.local import LocalStorage

if TYPE_CHECKING:  # the pack and chunk modules load when first used: a no-op status needs none
    from dvlite.formats.packs import PackedObject, PackIndex

OBJECT_MODE = 0o444
SMALL = 4 << 20  # files below this are read in one call
MIN_PACK = 16  # fewer small objects than this in a batch are written loose


def _bad_pack(pack: str, why: str) -> IntegrityError:
    return IntegrityError(f"pack {pack} of the cache {why}",
                          hint="run `dvlite fsck --repair`, then `dvlite pull` (or add)")


class Cache(LocalStorage):
    """The local cache: a Storage over a directory, plus the fast paths of add and checkout."""

    name = "cache"

    def __init__(self, cache_dir: str, pack_small: bool = True, shared: bool = False):
        super().__init__(cache_dir)
        if shared:  # cache.shared = group: setgid, group-writable directories
            from dvlite.storage.shared import ensure_shared

            ensure_shared(cache_dir)
        self.objects_dir = os.path.join(cache_dir, OBJECTS)
        self.packs_dir = os.path.join(cache_dir, PACKS)
        self.pack_small = pack_small  # False: every object loose (e.g. to hardlink small files)
        self._dirs: set[str] = set()
        self._lock = threading.RLock()
        self._packed: dict[str, str] | None = None  # object -> its pack; loaded when needed
        self._indexes: dict[str, PackIndex] = {}
        self.damaged: dict[str, str] = {}  # pack -> why its index cannot be used
        self._fds: dict[str, int] = {}
        self._batch_depth = 0
        self._pending: dict[str, bytes] = {}
        self._pending_size = 0
        self._pack_below = self._pack_target = 0  # formats.packs' thresholds, set by batch()
        self._loose: set[str] | None = None  # loose objects, listed once per batch
        # loose objects this process hashed as it stored them (a fetch): a checkout in the
        # same command copies them without reading them back (the lock keeps others out)
        self.verified: set[str] = set()

    # --- objects --------------------------------------------------------------------------
    def path(self, hexdigest: str) -> str:
        """Where a loose object lives (packed objects have no path of their own)."""
        return os.path.join(self.objects_dir, hexdigest[:2], hexdigest[2:])

    def is_loose(self, hexdigest: str) -> bool:
        return self.size_if_loose(hexdigest) >= 0

    def contains(self, hexdigest: str) -> bool:
        # the pack indexes first once they are loaded (most objects of a many-file tree are
        # packed, and a lookup costs no stat); else a loose one first (no index read)
        packed = self._packed
        return ((packed is not None and hexdigest in packed) or hexdigest in self._pending
                or self.is_loose(hexdigest) or hexdigest in self._packed_index())

    # --- packs ------------------------------------------------------------------------------
    def _packed_index(self) -> dict[str, str]:
        if self._packed is None:
            with self._lock:
                if self._packed is None:
                    packed: dict[str, str] = {}
                    with contextlib.suppress(FileNotFoundError):
                        for entry in sorted(os.scandir(self.packs_dir), key=lambda e: e.name):
                            if entry.name.endswith(".idx") and not entry.name.startswith(TMP_MARK):
                                self._load_index(entry.path, packed)
                    self._packed = packed
        return self._packed

    def _locate(self, hexdigest: str) -> PackedObject | None:
        index = self._indexes.get(self._packed_index().get(hexdigest, ""))
        return index.locate(hexdigest) if index is not None else None

    def _load_index(self, path: str, into: dict[str, str]) -> None:
        """Load one index; a damaged one makes only its own pack's objects missing."""
        from dvlite.formats.packs import MAX_INDEX, DamagedIndexError, PackIndex

        pack = os.path.basename(path)[:-4]
        try:
            index = PackIndex.from_bytes(read_limited(path, MAX_INDEX, path), path)
        except (DamagedIndexError, FormatError) as exc:
            self.damaged[pack] = exc.message
            return
        try:
            size = os.stat(self.pack_path(index.pack, "pack")).st_size
        except FileNotFoundError:
            size = -1
        if size != index.pack_size:  # cut short, or gone: none of its objects can be trusted
            self.damaged[pack] = f"pack {self.pack_path(index.pack, 'pack')} holds {max(size, 0)} " \
                                 f"bytes, its index says {index.pack_size}"
            return
        self._indexes[index.pack] = index
        into.update(dict.fromkeys(index.entries, index.pack))  # (in C: 50,000 in 2 ms)

    def damaged_packs(self) -> dict[str, str]:
        """Packs whose index fails its checksum or bounds (pack digest -> why)."""
        self._packed_index()
        return dict(self.damaged)

    def orphan_packs(self) -> list[str]:
        """Pack files without an index: garbage of an interrupted write (or being written)."""
        try:
            names = {e.name for e in os.scandir(self.packs_dir) if not e.name.startswith(TMP_MARK)}
        except FileNotFoundError:
            return []
        return sorted(n[:-5] for n in names if n.endswith(".pack") and n[:-5] + ".idx" not in names)

    def pack_path(self, pack: str, ext: str) -> str:
        return os.path.join(self.packs_dir, f"{pack}.{ext}")

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Objects under 1 MiB stored meanwhile go into packs, written when full and at the end."""
        from dvlite.formats.packs import CACHE_PACK_TARGET, PACK_BELOW

        with self._lock:
            self._pack_below, self._pack_target = PACK_BELOW, CACHE_PACK_TARGET
            self._batch_depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._batch_depth -= 1
                if self._batch_depth == 0:
                    self._flush(final=True)
                    self._loose = None

    def _add_pending(self, hexdigest: str, data: bytes) -> None:
        with self._lock:
            if hexdigest in self._pending:
                return
            self._pending[hexdigest] = data
            self._pending_size += len(data)
            if self._pending_size >= self._pack_target:
                self._flush(final=False)

    def _flush(self, final: bool) -> None:
        pending, self._pending, self._pending_size = self._pending, {}, 0
        if not pending:
            return
        if final and len(pending) < MIN_PACK:  # a handful: not worth a pack
            for digest, data in pending.items():
                self._write_loose(digest, data, durable=False)
            return

        def drain():  # each object leaves `pending` as it is copied into the pack
            while pending:
                yield pending.popitem()

        self.write_pack(drain())

    def write_pack(self, objects: Iterable[tuple[str, bytes]]) -> PackIndex:
        from dvlite.formats.packs import build_pack

        pack = build_pack(objects, as_bytes=False)
        return self.install_pack(pack.index, pack.data)

    def install_pack(self, index: PackIndex, data) -> PackIndex:
        """Write a pack (its objects checked by the caller), then its index: stored from then."""
        os.makedirs(self.packs_dir, exist_ok=True)
        atomic_write(self.pack_path(index.pack, "pack"), data, mode=OBJECT_MODE, durable=False)
        atomic_write(self.pack_path(index.pack, "idx"), index.to_bytes(), mode=OBJECT_MODE,
                     durable=False)
        packed = self._packed_index()
        with self._lock:
            self._indexes[index.pack] = index
            packed.update(dict.fromkeys(index.entries, index.pack))
        return index

    def _read_packed(self, loc: PackedObject) -> bytes:
        with self._lock:
            fd = self._fds.get(loc.pack)
            if fd is None:
                try:
                    fd = os.open(self.pack_path(loc.pack, "pack"), os.O_RDONLY)
                except FileNotFoundError:
                    raise _bad_pack(loc.pack, "is missing") from None
                index = self._indexes.get(loc.pack)
                if index is None or os.fstat(fd).st_size != index.pack_size:
                    os.close(fd)
                    raise _bad_pack(loc.pack, "is not the size its index says")
                self._fds[loc.pack] = fd
        data = os.pread(fd, loc.length, loc.offset)  # within the pack: its index is checked
        if len(data) != loc.length:
            raise _bad_pack(loc.pack, "is shorter than its index says")
        return data

    def read(self, hexdigest: str, try_loose: bool = True) -> bytes:
        """An object's bytes, unverified; IntegrityError when the store lacks it."""
        if try_loose:
            try:
                with open(self.path(hexdigest), "rb") as f:
                    return f.read()
            except FileNotFoundError:
                pass
        if hexdigest in self._pending:
            return self._pending[hexdigest]
        loc = self._locate(hexdigest)
        if loc is None:
            raise IntegrityError(f"object {hexdigest} is not in the cache")
        return self._read_packed(loc)

    def open_object(self, hexdigest: str):
        """A binary file object of an object's bytes (unverified)."""
        try:
            return open(self.path(hexdigest), "rb")
        except FileNotFoundError:
            return io.BytesIO(self.read(hexdigest))

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def missing(self, hexdigests: Iterable[str]) -> set[str]:
        wanted = set(hexdigests)
        if len(wanted) > 512:  # one listing per fan-out dir beats a stat per object
            return wanted - self.all_objects()
        return {h for h in wanted if not self.contains(h)}

    def all_objects(self) -> set[str]:
        return set(self.iter_objects())

    def iter_objects(self) -> Iterator[str]:
        """Every object once: loose ones, then packed ones not also loose."""
        loose = set(self._iter_loose())
        yield from sorted(loose)
        yield from sorted(d for d in self._packed_index() if d not in loose)

    def _iter_loose(self) -> Iterator[str]:
        with contextlib.suppress(FileNotFoundError):
            for fan in sorted(os.scandir(self.objects_dir), key=lambda e: e.name):
                if len(fan.name) != 2 or not fan.is_dir():
                    continue
                for obj in os.scandir(fan.path):
                    if not obj.name.startswith(TMP_MARK):
                        yield fan.name + obj.name

    def mtime(self, hexdigest: str) -> float | None:
        """When an object (or the pack holding it) was last written; None if it is not here."""
        try:
            return os.stat(self.path(hexdigest)).st_mtime
        except FileNotFoundError:
            loc = self._locate(hexdigest)
        if loc is None:
            return None
        try:
            return os.stat(self.pack_path(loc.pack, "pack")).st_mtime
        except FileNotFoundError:
            return None

    def size_if_loose(self, hexdigest: str, packed_first: bool = False) -> int:
        """A loose object's size; -1 for a packed or missing one (packed objects are small).
        `packed_first`: one the pack indexes hold counts as packed, without a stat."""
        if packed_first and (hexdigest in self._packed_index() or hexdigest in self._pending):
            return -1
        try:
            return os.stat(self.path(hexdigest)).st_size
        except FileNotFoundError:
            return -1

    def size(self, hexdigest: str) -> int:
        try:
            return os.stat(self.path(hexdigest)).st_size
        except FileNotFoundError:
            if hexdigest in self._pending:
                return len(self._pending[hexdigest])
            loc = self._locate(hexdigest)
            if loc is None:
                raise
            return loc.length

    def _fan_dir(self, hexdigest: str) -> str:
        d = os.path.join(self.objects_dir, hexdigest[:2])
        if d not in self._dirs:
            os.makedirs(d, exist_ok=True)
            self._dirs.add(d)
        return d

    def put_bytes(self, data: bytes, durable: bool = False) -> Digest:
        """Store `data` loose (manifests and other objects read on their own)."""
        digest = hash_bytes(data)
        if not self.contains(digest.hex):
            self._write_loose(digest.hex, data, durable)
        return digest

    def _write_loose(self, hexdigest: str, data: bytes, durable: bool) -> None:
        self._fan_dir(hexdigest)
        atomic_write(self.path(hexdigest), data, mode=OBJECT_MODE, durable=durable)

    def _put_small(self, data: bytes, hexdigest: str, durable: bool) -> None:
        if self._batch_depth and self.pack_small and not durable and len(data) < self._pack_below:
            if not self._held_in_batch(hexdigest):
                self._add_pending(hexdigest, data)
        elif not self.contains(hexdigest):
            self._write_loose(hexdigest, data, durable)

    def _held_in_batch(self, hexdigest: str) -> bool:
        """`contains` for the many (mostly new) small objects of a batch: loose ones are listed
        once, not stat'ed one by one (0.2 s in 50,000); one stored since is stored again, packed."""
        if self._loose is None:
            self._loose = set(self._iter_loose())
        return hexdigest in self._packed_index() or hexdigest in self._pending or (
            hexdigest in self._loose and self.is_loose(hexdigest))

    def ingest_file(self, src: str, durable: bool = False) -> tuple[Digest, int, os.stat_result]:
        """(digest, size, stat once read) of `src`, stored. A small file is read once; a large
        one is copied in the kernel while another thread reads the copy back, hashes it and cuts
        its chunk list (from CHUNK_ABOVE): the digest is of the bytes stored, whatever `src` does."""
        with open(src, "rb", buffering=0) as f:
            fd = f.fileno()
            # read(n) allocates n bytes up front; size the first read by the file instead
            if os.fstat(fd).st_size < SMALL:
                first = f.readall()
                if len(first) < SMALL:
                    digest = hash_bytes(first)
                    self._put_small(first, digest.hex, durable)
                    return digest, len(first), os.fstat(fd)
            from dvlite.readback import copy_and_read_back
            from dvlite.storage import chunklists

            os.makedirs(self.objects_dir, exist_ok=True)
            with removed_on_failure(temp_name(os.path.join(self.objects_dir, "object"))) as tmp:
                with open(tmp, "w+b", buffering=0) as out:
                    size, found = copy_and_read_back(fd, out.fileno(),
                                                     chunklists.scanner(os.fstat(fd).st_size))
                    if durable:
                        os.fsync(out.fileno())
                    os.fchmod(out.fileno(), OBJECT_MODE)
                digest = Digest(ALGORITHM, found if isinstance(found, str) else found.digest)
                if self.contains(digest.hex):
                    os.unlink(tmp)
                else:
                    self._fan_dir(digest.hex)
                    os.replace(tmp, self.path(digest.hex))
            after = os.fstat(fd)
        if not isinstance(found, str):  # a ChunkList: the object is large enough to be cut
            chunklists.save(self.dir, found)
        return digest, size, after

    def put_verified(self, source, hexdigest: str, origin: str) -> int:
        """Store `source` (bytes or a binary file) as object `hexdigest` if its bytes hash to it.

        Nothing enters the store under a name its bytes do not match; returns the size.
        """
        if isinstance(source, (bytes, bytearray, memoryview)):
            if hash_bytes(bytes(source)).hex != hexdigest:
                raise IntegrityError(f"corrupt object {origin}: its bytes do not match its digest")
            self._put_small(bytes(source), hexdigest, durable=False)
            return len(source)
        h = new_hasher()
        size = 0

        def on_chunk(chunk: bytes) -> None:
            nonlocal size
            h.update(chunk)
            size += len(chunk)

        def check() -> None:
            if h.hexdigest() != hexdigest:
                raise IntegrityError(f"corrupt object {origin}: its bytes do not match its digest")

        self._fan_dir(hexdigest)
        atomic_copy(source, self.path(hexdigest), mode=OBJECT_MODE, on_chunk=on_chunk,
                    before_replace=check)
        return size

    def temp_path(self, hexdigest: str) -> str:
        """A temp file name beside where `hexdigest` will live (same filesystem)."""
        return temp_name(os.path.join(self._fan_dir(hexdigest), hexdigest[2:]))

    def adopt(self, tmp: str, hexdigest: str, origin: str, found: str | None = None) -> None:
        """Move a downloaded temp file into the store if its bytes hash to `hexdigest`
        (`found`: their digest, when the caller hashed them as they arrived)."""
        if (found or hash_file(tmp).hex) != hexdigest:
            raise IntegrityError(f"corrupt object {origin}: its bytes do not match its digest")
        os.chmod(tmp, OBJECT_MODE)
        os.replace(tmp, self.path(hexdigest))
        self.verified.add(hexdigest)

    def manifest(self, hexdigest: str, origin: str) -> Manifest:
        """A directory manifest, verified and validated (IntegrityError when it cannot be used)."""
        return Manifest.from_bytes(self.read_verified(hexdigest), origin)

    def read_verified(self, hexdigest: str) -> bytes:
        data = self.read(hexdigest)
        if hash_bytes(data).hex != hexdigest:
            raise IntegrityError(
                f"cache object {hexdigest} is corrupt", hint="run `dvlite fsck --repair`"
            )
        return data

    def verify(self, hexdigest: str) -> bool:
        try:
            return hash_file(self.path(hexdigest)).hex == hexdigest
        except FileNotFoundError:
            pass
        try:
            return hash_bytes(self.read(hexdigest)).hex == hexdigest
        except IntegrityError:
            return False

    def remove_many(self, hexdigests: Iterable[str]) -> None:
        """Delete objects; a pack that holds some of them is rewritten without them first."""
        from dvlite.storage import chunklists

        doomed = set(hexdigests)
        for digest in doomed:
            with contextlib.suppress(FileNotFoundError):
                remove_file(self.path(digest))
            with contextlib.suppress(FileNotFoundError):
                remove_file(chunklists.path(self.dir, digest))
        packed = self._packed_index()
        for pack, index in list(self._indexes.items()):
            if not doomed.intersection(index.entries):
                continue
            kept = [(d, self._read_packed(index.locate(d)))
                    for d, _ in sorted(index.entries.items(), key=lambda e: e[1][0])
                    if d not in doomed]
            if kept:
                self.write_pack(kept)  # the replacement is complete before the old pack goes
            self._drop_pack(pack)
        for digest in doomed:
            packed.pop(digest, None)
        self._reindex()

    def _drop_pack(self, pack: str) -> None:
        with self._lock:
            self._indexes.pop(pack, None)
        self._drop_fd(pack)
        for ext in ("idx", "pack"):  # the index first: a pack without one is invisible
            with contextlib.suppress(FileNotFoundError):
                remove_file(self.pack_path(pack, ext))

    def quarantine_pack(self, pack: str, corrupt_dir: str) -> None:
        """Move a pack with a damaged index (index first) into `corrupt_dir`, for inspection."""
        os.makedirs(corrupt_dir, exist_ok=True)
        self._drop_fd(pack)
        for ext in ("idx", "pack"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.pack_path(pack, ext), os.path.join(corrupt_dir, f"{pack}.{ext}"))
        self.damaged.pop(pack, None)
        self._reindex()

    def _drop_fd(self, pack: str) -> None:
        with self._lock:
            fd = self._fds.pop(pack, None)
            if fd is not None:
                os.close(fd)

    def _reindex(self) -> None:
        with self._lock:
            self._packed = None
            self._indexes = {}
            self.damaged = {}

    def quarantine(self, hexdigest: str, corrupt_dir: str) -> str:
        os.makedirs(corrupt_dir, exist_ok=True)
        dest = os.path.join(corrupt_dir, hexdigest)
        try:
            os.replace(self.path(hexdigest), dest)
            return dest
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        loc = self._locate(hexdigest)
        if loc is not None:  # keep its bytes for inspection, then drop it from its pack
            atomic_write(dest, self._read_packed(loc), mode=OBJECT_MODE, durable=False)
            self.remove_many([hexdigest])
        return dest

    def clean_temp_files(self) -> int:
        """Remove leftovers of interrupted writes (root and fan-out dirs)."""
        dirs = [self.objects_dir, self.packs_dir]
        with contextlib.suppress(FileNotFoundError):
            dirs += [e.path for e in os.scandir(self.objects_dir) if len(e.name) == 2 and e.is_dir()]
        return sum(remove_temp_files(d) for d in dirs)
