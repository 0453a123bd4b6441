"""Bringing DVC's md5-named objects into dvlite's cache, verified, under their XXH3-128 digests.

An object's bytes come from the DVC cache, else from the workspace, else from the DVC remote.
They are checked against DVC's md5 before dvlite stores them. A corrupt object in the DVC cache
or on the remote (bytes that do not hash to their name) is an error naming it; a workspace
file that differs is only a workspace that moved on, and the next source is tried.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from dvlite.digest import ALGORITHM, Digest, hash_bytes
from dvlite.dvc import hashing
from dvlite.dvc.cache import SMALL, Found, FsStore, LocalStore
from dvlite.errors import DvliteError, IntegrityError
from dvlite.formats.manifest import Entry, Manifest
from dvlite.fsutil import check_inside, sync_barrier
from dvlite.storage.cache import Cache
from dvlite.storage.md5index import Known, Md5Index


@dataclass(frozen=True)
class Measured:
    """A path as dvlite records it (pointer or lock entry)."""

    kind: str  # file | dir
    digest: Digest
    size: int
    files: int


@dataclass
class Counts:
    cache: int = 0
    workspace: int = 0
    remote: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class _Bytes:
    """An object's bytes (small) or a local file holding them (large), and where they were."""

    source: str  # cache | workspace | remote
    data: bytes | None
    path: str | None
    xxh3: str
    size: int


def _native_rule(found_path: str) -> str:
    return hashing.MD5 if "/files/md5/" in found_path.replace(os.sep, "/") else hashing.LEGACY


@dataclass
class Importer:
    odb: Cache
    root: str  # the repository root (workspace paths are relative to it)
    cache: LocalStore
    remote: Callable[[], LocalStore | FsStore | None]  # made on first need
    tmp_dir: str
    callback: object  # fsspec Callback: relative_update(bytes) per object
    counts: Counts = field(default_factory=Counts)
    manifests: list = field(default_factory=list)
    index: Md5Index | None = None  # learns each md5 -> XXH3-128 link; known ones skip the search
    _remote: object = None
    _remote_made: bool = False

    # --- sources ------------------------------------------------------------------------
    def _remote_store(self):
        if not self._remote_made:
            self._remote, self._remote_made = self.remote(), True
        return self._remote

    def _check(self, store, found: Found, ok: bool, data: bytes | None, md5: str,
               hash_name: str, origin: str) -> bool:
        """True if the bytes are object md5; False if they are another valid object; else raise."""
        if ok:
            return True
        native = _native_rule(found.path)
        if native != hash_name:  # a record of the other DVC version: is it right by its own rule?
            if data is not None and hashing.bytes_match(data, md5, native):
                return False
            if data is None and md5 in hashing.hash_file(found.path, native).md5s:
                return False
        raise IntegrityError(f"corrupt object in {store.label}: {store.describe(found)} does not "
                             f"hash to its md5 ({origin})",
                             hint="delete it there (DVC fetches it again), then migrate again")

    def _from_local(self, path: str, md5: str, hash_name: str) -> _Bytes | None | bool:
        """The bytes at `path` if they are object `md5`; False if they are not; None if absent."""
        try:
            with open(path, "rb", buffering=0) as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    return None
                data = f.readall() if st.st_size < SMALL else None
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        if data is not None:
            if not hashing.bytes_match(data, md5, hash_name):
                return False
            return _Bytes("", data, None, hash_bytes(data).hex, len(data))
        hashes = hashing.hash_file(path, hash_name)
        if md5 not in hashes.md5s:
            return False
        return _Bytes("", None, path, hashes.xxh3, hashes.size)

    def _from_store(self, store, md5: str, hash_name: str, origin: str) -> _Bytes | None:
        for found in store.find_all(md5, False, hash_name):
            got = self._read_found(store, found, md5, hash_name, origin)
            if got is not None:
                return got
        return None

    def _read_found(self, store, found: Found, md5: str, hash_name: str, origin: str) -> _Bytes | None:
        if isinstance(store, LocalStore):
            got = self._from_local(found.path, md5, hash_name)
            if got is None or isinstance(got, _Bytes):
                return got
            data = store.read(found, SMALL) if found.size < SMALL else None
            self._check(store, found, False, data, md5, hash_name, origin)
            return None
        if found.size < SMALL:
            data = store.read(found, SMALL)
            ok = self._check(store, found, hashing.bytes_match(data, md5, hash_name), data, md5,
                             hash_name, origin)
            return _Bytes("remote", data, None, hash_bytes(data).hex, len(data)) if ok else None
        path, _ = store.local_path(found, self.tmp_dir)
        hashes = hashing.hash_file(path, hash_name)
        try:
            ok = self._check(store, Found(store, path, hashes.size), md5 in hashes.md5s, None,
                             md5, hash_name, origin)
        except BaseException:
            os.unlink(path)
            raise
        if not ok:
            os.unlink(path)
            return None
        return _Bytes("remote-tmp", None, path, hashes.xxh3, hashes.size)

    def _workspace(self, rel: str, md5: str, hash_name: str) -> _Bytes | None:
        path = os.path.join(self.root, *rel.split("/"))
        if not check_inside(os.path.realpath(path), self.root):
            return None  # through a symlink to outside: not the repository's data
        got = self._from_local(path, md5, hash_name)
        return got if isinstance(got, _Bytes) else None

    # --- files ----------------------------------------------------------------------------
    def _find_file(self, md5: str, hash_name: str, rel: str, origin: str) -> _Bytes | None:
        got = self._from_store(self.cache, md5, hash_name, origin)
        if got is not None:
            return _Bytes("cache", got.data, got.path, got.xxh3, got.size)
        got = self._workspace(rel, md5, hash_name)
        if got is not None:
            return _Bytes("workspace", got.data, got.path, got.xxh3, got.size)
        store = self._remote_store()
        got = None if store is None else self._from_store(store, md5, hash_name, origin)
        if got is None or got.source == "remote-tmp":
            return got
        return _Bytes("remote", got.data, got.path, got.xxh3, got.size)

    def _known(self, md5: str, is_dir: bool, hash_name: str) -> Known | None:
        """A link learned before whose object the cache holds (for a directory: every file too)."""
        if self.index is None:
            return None
        known = self.index.lookup([(md5, is_dir, hash_name)]).get((md5, is_dir, hash_name))
        if known is None or not self.odb.contains(known.digest):
            return None
        if is_dir:
            try:
                manifest = self.odb.manifest(known.digest, f"md5 {md5}.dir")
            except DvliteError:
                return None
            if self.odb.missing(e.digest for e in manifest.entries):
                return None
        return known

    def _learn(self, md5: str, is_dir: bool, hash_name: str, m: Measured) -> None:
        if self.index is not None:
            self.index.learn((md5, is_dir, hash_name), Known(m.kind, m.digest.hex, m.size, m.files))

    def file(self, md5: str, hash_name: str, rel: str, store: bool, origin: str) -> Measured | None:
        """The file object `md5` as dvlite records it; stored in the cache when `store`."""
        known = self._known(md5, False, hash_name)
        if known is not None:
            self.callback.relative_update(known.size)
            return Measured("file", Digest(ALGORITHM, known.digest), known.size, 1)
        got = self._find_file(md5, hash_name, rel, origin)
        if got is None:
            return None
        try:
            if store:
                self._store(got, origin)
        finally:
            if got.source == "remote-tmp":
                with contextlib.suppress(OSError):
                    os.unlink(got.path)
        source = "remote" if got.source.startswith("remote") else got.source
        setattr(self.counts, source, getattr(self.counts, source) + 1)
        self.counts.bytes += got.size
        self.callback.relative_update(got.size)
        measured = Measured("file", Digest(ALGORITHM, got.xxh3), got.size, 1)
        if store:
            self._learn(md5, False, hash_name, measured)
        return measured

    def _store(self, got: _Bytes, origin: str) -> None:
        if got.data is not None:
            self.odb.put_verified(got.data, got.xxh3, origin)
            return
        if self.odb.contains(got.xxh3):
            return
        digest, _ = self.odb.ingest_file(got.path)[:2]
        if digest.hex != got.xxh3:
            raise IntegrityError(f"{origin}: {got.path} changed while it was being migrated",
                                 hint="run migrate again")

    # --- directories ------------------------------------------------------------------------
    def _listing(self, md5: str, hash_name: str, rel: str) -> list | None:
        for found in self.cache.find_all(md5, True, hash_name):
            data = self.cache.read(found, hashing.MAX_LISTING)
            return hashing.verify_listing(data, md5, self.cache.describe(found))
        listing = self._workspace_listing(rel, md5, hash_name)
        if listing is not None:
            return listing
        store = self._remote_store()
        for found in store.find_all(md5, True, hash_name) if store is not None else ():
            data = store.read(found, hashing.MAX_LISTING)
            return hashing.verify_listing(data, md5, store.describe(found))
        return None

    def _workspace_listing(self, rel: str, md5: str, hash_name: str) -> list | None:
        """The directory as it is in the workspace, if DVC would give it this md5."""
        from dvlite.workspace.scan import scan_tree

        path = os.path.join(self.root, *rel.split("/"))
        if not os.path.isdir(path) or not check_inside(os.path.realpath(path), self.root):
            return None
        hashed = [(f.rel, hashing.hash_file(f.path, hash_name)) for f in scan_tree(path, self.root)]
        for choice in ("primary", "v2"):
            entries = [hashing.DirEntry(r, getattr(h, choice), h.size, None) for r, h in hashed]
            if hashing.dir_md5(entries) == md5:
                return entries
        return None

    def _executable(self, rel: str, recorded: bool | None) -> bool:
        try:
            st = os.stat(os.path.join(self.root, *rel.split("/")))
        except OSError:
            return bool(recorded)
        return bool(st.st_mode & stat.S_IXUSR) if stat.S_ISREG(st.st_mode) else bool(recorded)

    def directory(self, md5: str, hash_name: str, rel: str, store: bool, origin: str) -> Measured | None:
        """The directory whose listing is `md5`.dir, as dvlite records it; its files stored when
        `store` (and its manifest by `finish`). Missing: None, or Missing for a missing file."""
        known = self._known(md5, True, hash_name)
        if known is not None:
            return Measured("dir", Digest(ALGORITHM, known.digest), known.size, known.files)
        listing = self._listing(md5, hash_name, rel)
        if listing is None:
            return None
        entries = []
        for e in listing:
            inner = f"{rel}/{e.relpath}"
            m = self.file(e.md5, hash_name, inner, store, origin)
            if m is None:
                raise Missing(f"{inner} (md5 {e.md5})")
            entries.append(Entry(e.relpath, m.digest.hex, m.size, self._executable(inner, e.isexec)))
        manifest = Manifest.build(entries)
        measured = Measured("dir", manifest.digest(), manifest.size, len(entries))
        if store:
            self.manifests.append(manifest)
            self._learn(md5, True, hash_name, measured)
        return measured

    def measure(self, md5: str, is_dir: bool, hash_name: str, rel: str, store: bool,
                origin: str) -> Measured | None:
        if is_dir:
            return self.directory(md5, hash_name, rel, store, origin)
        return self.file(md5, hash_name, rel, store, origin)

    def finish(self) -> None:
        """Objects durable first, then the manifests that list them (call after the batch)."""
        sync_barrier(self.odb.objects_dir)
        for manifest in self.manifests:
            self.odb.put_bytes(manifest.to_bytes(), durable=True)
        self.manifests.clear()
        if self.index is not None:  # links last: they name objects the cache now holds
            self.index.save()


class Missing(Exception):
    """An object is in none of the places: the DVC cache, the workspace, the DVC remote."""
