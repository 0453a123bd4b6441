"""Data from any fsspec URL: `import-url`, `get-url`; and `update` of every import (those of
repositories through repos.update_import).

Nothing is downloaded before the URL is surveyed (listing.survey: bounded, every name checked).
An import records the URL and the backend's version marker (ETag, version id, checksum, mtime,
size; for a directory the digest of its listing), never the options used to reach it (they may
hold credentials), so `update` downloads again only when the marker changed. Downloads go
through a temp file into the cache, hashed from the bytes stored. `--to-remote` streams each
file to the remote instead, hashed on the way: a small one in one PUT under its digest, a large
one under a temp name that is renamed once its digest is known; the manifest goes after its
files (invariant 9), the pointer last.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from dvlite.digest import ALGORITHM, Digest, hash_bytes, new_hasher
from dvlite.errors import BadInputError, DvliteError, IntegrityError
from dvlite.formats.manifest import Entry, Manifest
from dvlite.formats.pointer import SUFFIX, Pointer, UrlSource
from dvlite.fsutil import TMP_MARK, atomic_write, sync_barrier, temp_name
from dvlite.outputs import Tracked
from dvlite.remotes.errors import run_jobs
from dvlite.repo import Repo
from dvlite.sources.listing import Item, Location, Survey, connect, default_name, survey
from dvlite.sources.repos import (
    ImportResult,
    canonical_url,
    check_new_output,
    current_umask,
    from_root,
    materialise,
    rewrite_pointer,
    update_import,
)

SMALL = 4 << 20  # files below this are read into memory in one go
CHUNK = 4 << 20


# --- downloading ------------------------------------------------------------------------------

def _stream(loc: Location, item: Item, write: Callable[[bytes], object]) -> int:
    """Every byte of a file through `write`; the count. More bytes than the survey said are
    refused (a server that sends without end must not fill the disk or the memory)."""
    size = 0
    with loc.fs.open(item.path, "rb") as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            if item.size is not None and size > item.size:
                raise BadInputError(f"{loc.url}: {item.rel or item.path} grew while it was "
                                    "downloaded", hint="run the command again")
            write(chunk)
    return size


def _jobs(loc: Location) -> int:
    return 4 if loc.protocol in ("file", "local") else 8


def _each(loc: Location, items: tuple[Item, ...], fn: Callable[[Item], object], jobs: int) -> None:
    for item, error in run_jobs(jobs, fn, items):
        if isinstance(error, FileNotFoundError):
            what = item.rel or item.path
            raise BadInputError(f"{loc.url}: {what} vanished during the download") from error
        if error is not None:
            raise error


def _write_file(loc: Location, item: Item, dest: str, umask: int) -> int:
    """Download one file to `dest` atomically; its size."""
    mode = (0o777 if item.executable else 0o666) & ~umask
    sizes: list[int] = []

    def write(out) -> None:
        sizes.append(_stream(loc, item, out.write))

    loc.call(lambda: atomic_write(dest, writer=write, mode=mode, durable=False))
    return sizes[-1]


def _to_cache(repo: Repo, loc: Location, item: Item, tmp_dir: str) -> Entry:
    """One file into the cache, hashed from the bytes stored."""
    if item.size is not None and item.size < SMALL:  # bounded by its size: read into memory
        parts: list[bytes] = []
        loc.call(lambda: (parts.clear(), _stream(loc, item, parts.append)))
        data = b"".join(parts)
        digest = hash_bytes(data).hex
        repo.odb.put_verified(data, digest, loc.url)  # small objects go into the batch's packs
        return Entry(item.rel, digest, len(data), item.executable)
    tmp = temp_name(os.path.join(tmp_dir, "download"))
    try:
        _write_file(loc, item, tmp, 0o077)
        digest, size = repo.odb.ingest_file(tmp)[:2]
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return Entry(item.rel, digest.hex, size, item.executable)


def _into_cache(repo: Repo, loc: Location, found: Survey) -> list[Entry]:
    entries: list[Entry] = []
    tmp_root = os.path.join(repo.dvlite_dir, "tmp")
    os.makedirs(tmp_root, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=TMP_MARK + "url-", dir=tmp_root) as tmp, \
            repo.odb.batch():
        _each(loc, found.items, lambda item: entries.append(_to_cache(repo, loc, item, tmp)),
              _jobs(loc))
    sync_barrier(repo.odb.objects_dir)  # objects are durable before what names them
    return sorted(entries, key=lambda e: e.path)


# --- --to-remote: straight to the default remote ----------------------------------------------

def _up(loc: Location, store, item: Item) -> Entry:
    """Stream one file to the remote, hashing it on the way; its entry."""
    from dvlite.storage.layout import OBJECTS, object_key

    seen = [0]
    with loc.call(lambda: loc.fs.open(item.path, "rb")) as f:
        def read(n: int) -> bytes:
            try:
                data = f.read(n)
            except Exception as exc:
                raise loc.error(exc) from exc
            seen[0] += len(data)
            if item.size is not None and seen[0] > item.size:
                raise BadInputError(f"{loc.url}: {item.rel or item.path} grew while it was "
                                    "uploaded", hint="run the command again")
            return data

        first = read(SMALL)
        if len(first) < SMALL:
            digest = hash_bytes(first).hex
            if not store.exists(object_key(digest)):
                store.store(object_key(digest), first)
            return Entry(item.rel, digest, len(first), item.executable)
        tmp = f"{store.root}/{OBJECTS}/{TMP_MARK}{secrets.token_hex(8)}"
        try:
            digest, size = _upload(store, tmp, first, read)
            _adopt(store, tmp, object_key(digest))
        except BaseException:
            with contextlib.suppress(DvliteError):
                store.delete_temp(tmp[len(store.root) + 1:])
            raise
    return Entry(item.rel, digest, size, item.executable)


def _upload(store, tmp: str, first: bytes, read: Callable[[int], bytes]) -> tuple[str, int]:
    """Write a stream to the remote's `tmp`, hashing what is written: (digest, size). A write
    is never retried (a half-sent chunk sent again would put other bytes than were hashed);
    the size the remote then reports must be the size hashed."""
    from dvlite.remotes.errors import classify

    if store.kind == "filesystem":
        store.call(lambda: store.fs.makedirs(tmp.rsplit("/", 1)[0], exist_ok=True))
    h = new_hasher()
    size = 0
    try:
        with store.call(lambda: store.fs.open(tmp, "wb")) as out:
            chunk = first
            while chunk:
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
                chunk = read(CHUNK)
    except DvliteError:
        raise
    except Exception as exc:
        raise classify(exc, store.cfg) from exc
    stored = store.call(lambda: store.fs.info(tmp)).get("size")
    if stored != size:
        raise IntegrityError(f"remote {store.name!r}: {stored} bytes arrived of {size} sent")
    return h.hexdigest(), size


def _adopt(store, tmp: str, key: str) -> None:
    """Give an uploaded temp file its object's name, unless the remote has that object already
    (the same bytes): then the temp file goes."""
    if store.exists(key):
        store.delete_temp(tmp[len(store.root) + 1:])
        return
    final = store.path(key)
    if store.kind == "filesystem":
        store.call(lambda: store.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True))
    if store.protocol == "webdav":  # fsspec's webdav mv copies; MOVE is a rename
        store.call(lambda: store.fs.client.move(tmp, final, overwrite=True))
    else:
        store.call(lambda: store.fs.mv(tmp, final))


def _to_remote(repo: Repo, loc: Location, found: Survey, remote_name: str | None) -> list[Entry]:
    from dvlite.remotes.transfer import connect as connect_remote
    from dvlite.storage.layout import object_key

    store = connect_remote(repo, remote_name)
    store.require_writable()
    store.ensure_layout()
    entries: list[Entry] = []
    _each(loc, found.items, lambda item: entries.append(_up(loc, store, item)),
          min(store.default_jobs, 8))
    entries.sort(key=lambda e: e.path)
    if found.kind == "dir":  # the manifest after every file it lists (invariant 9)
        data = Manifest.build(entries).to_bytes()
        store.store(object_key(hash_bytes(data).hex), data)
    return entries


# --- import-url, update -----------------------------------------------------------------------

def _pointer(repo: Repo, loc: Location, found: Survey, url: str, to_remote: bool,
             remote_name: str | None) -> Pointer:
    entries = (_to_remote(repo, loc, found, remote_name) if to_remote
               else _into_cache(repo, loc, found))
    source = UrlSource.of(url, found.version())
    if found.kind == "file":
        e = entries[0]
        return Pointer("file", Digest(ALGORITHM, e.digest), e.size, 1, source)
    manifest = Manifest.build(entries)
    digest = repo.odb.put_bytes(manifest.to_bytes(), durable=True)
    return Pointer("dir", digest, manifest.size, len(manifest.entries), source)


def import_url(repo: Repo, url: str, out: str | None, to_remote: bool = False,
               remote_name: str | None = None, options: dict | None = None) -> ImportResult:
    """Bring a URL's file or directory into the cache (or, `to_remote`, straight into the
    remote) and track it at `out`, the pointer recording the URL and its version marker."""
    from dvlite.gitignore import add_ignore

    out_rel = check_new_output(repo, out or default_name(url))
    loc = connect(url, options)
    found = survey(loc)
    pointer = _pointer(repo, loc, found, canonical_url(url), to_remote, remote_name)
    repo.write(out_rel + SUFFIX, pointer.to_bytes())
    ignore = add_ignore(repo, out_rel)
    if not to_remote:
        materialise(repo, out_rel, None)
    return ImportResult(out_rel, out_rel + SUFFIX, pointer.kind, pointer.files, pointer.size,
                        pointer.source, True, ignore)


def update(repo: Repo, targets: list[str], rev: str | None, remote: str | None = None,
           to_remote: bool = False, fs_options: dict | None = None, jobs: int | None = None
           ) -> list[ImportResult]:
    """Bring imports up to date: repository imports move to `rev` (default: the revision each
    recorded); URL imports are downloaded again when their version marker changed. Unchanged
    ones are kept."""
    from dvlite.outputs import load_tracked, select

    chosen = [t for t, _ in select(repo, load_tracked(repo), targets)]
    if targets:
        plain = [t.rel for t in chosen if t.pointer.source is None]
        if plain:
            raise BadInputError(f"{plain[0]} was not made by `dvlite import` or `import-url`; "
                                "nothing to update")
        by_url = [t.rel for t in chosen if isinstance(t.pointer.source, UrlSource)]
        if rev is not None and by_url:
            raise BadInputError(f"--rev does not apply to {by_url[0]}, an import of a URL")
    results = []
    with tempfile.TemporaryDirectory(prefix="dvlite-update-") as workdir:
        for t in chosen:
            if isinstance(t.pointer.source, UrlSource):
                results.append(update_one(repo, t, to_remote, remote, fs_options or {}))
            elif t.pointer.source is not None:
                results.append(update_import(repo, t, rev, remote, workdir, jobs))
    return results


def update_one(repo: Repo, t: Tracked, to_remote: bool, remote_name: str | None,
               options: dict) -> ImportResult:
    """Download a URL import again if its version marker changed (or says too little)."""
    old = t.pointer.source
    loc = connect(from_root(repo, old.url), options)
    found = survey(loc)
    new = t.pointer
    if found.version() != old.marker or found.weak:
        new = _pointer(repo, loc, found, old.url, to_remote, remote_name)
    changed = rewrite_pointer(repo, t, new, check_out=not to_remote)
    return ImportResult(t.rel, t.pointer_rel, new.kind, new.files, new.size, new.source,
                        changed, None)


# --- get-url ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class GetUrlResult:
    url: str
    out: str
    kind: str  # file | dir
    files: int
    size: int


def get_url(url: str, out: str | None, force: bool = False,
            options: dict | None = None) -> GetUrlResult:
    """Download a URL's file or directory to `out`: whole or not at all; an existing `out` is
    replaced only with `force`."""
    out = out or default_name(url)
    if os.path.lexists(out) and not force:
        raise BadInputError(f"{out} already exists", hint="remove it, give another OUT, or use --force")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise BadInputError(f"no such directory: {parent}")
    loc = connect(url, options)
    found = survey(loc)
    staging = tempfile.mkdtemp(prefix=TMP_MARK + "get-url-", dir=parent)
    umask = current_umask()
    try:
        sizes: list[int] = []
        if found.kind == "file":
            target = os.path.join(staging, "file")
            sizes.append(_write_file(loc, found.items[0], target, umask))
        else:
            target = os.path.join(staging, "dir")

            def one(item: Item) -> None:
                dest = os.path.join(target, *item.rel.split("/"))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                sizes.append(_write_file(loc, item, dest, umask))

            os.makedirs(target)
            _each(loc, found.items, one, _jobs(loc))
            os.chmod(target, 0o777 & ~umask)
        _swap_in(target, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return GetUrlResult(url, out, found.kind, len(found.items), sum(sizes))


def _swap_in(new: str, out: str) -> None:
    """Put `new` at `out`; what was there (only with --force) is moved aside first, then removed."""
    aside = None
    if os.path.lexists(out):
        aside = temp_name(out)
        os.rename(out, aside)
    try:
        os.rename(new, out)
    except BaseException:
        if aside is not None:
            os.rename(aside, out)
        raise
    if aside is not None:
        if os.path.isdir(aside) and not os.path.islink(aside):
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.unlink(aside)
