"""Moving objects between the cache and a remote: what some outputs need, push, fetch.

The core works on a cache (`Cache`) and a remote (`Remote`) and nothing else, so that data
from another repository (`get`, `import`) moves the same way; `push`, `push_outputs` and
`fetch` choose the outputs and the remote of a repository. Nothing here knows of pipelines:
moving run records as well is `dvlite/sync.py`'s job.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from dvlite.data.reach import Revisions, kept_outputs
from dvlite.errors import IntegrityError
from dvlite.formats.manifest import Manifest
from dvlite.formats.packs import group_for_packs
from dvlite.progress import SILENT
from dvlite.readback import copy_and_read_back
from dvlite.outputs import Tracked, load_tracked, select
from dvlite.remotes import chunked, inventory
from dvlite.remotes.backend import Remote
from dvlite.remotes.config import choose
from dvlite.remotes.errors import local_disk_failure, run_jobs
from dvlite.remotes.inventory import Inventory
from dvlite.repo import Repo
from dvlite.storage import chunklists
from dvlite.storage.cache import Cache
from dvlite.storage.layout import CHUNKED_LAYOUT, object_key, pack_key

STREAM_ABOVE = 4 << 20


def _spread(digest: str) -> str:
    """Order objects so consecutive writes land in different fan-out directories: ext4 here
    creates files up to 1.7x faster that way (measured on journal-less ext4; see performance.md)."""
    return digest[2:]


def connect(repo: Repo, remote_name: str | None) -> Remote:
    """The remote a command uses, its layout known (invariant 12)."""
    remote = Remote(choose(repo.config, remote_name))
    remote.read_layout()
    return remote


# --- what outputs need ---------------------------------------------------------------------

@dataclass
class Needs:
    """The objects some outputs need: files first, then the manifests that list them."""

    files: dict[str, set[str]] = field(default_factory=dict)  # digest -> paths
    sizes: dict[str, int] = field(default_factory=dict)
    manifests: dict[str, set[str]] = field(default_factory=dict)  # manifest digest -> entry digests
    manifest_paths: dict[str, str] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, manifest digest)

    def need_file(self, digest: str, size: int, path: str) -> None:
        self.files.setdefault(digest, set()).add(path)
        self.sizes[digest] = size

    def paths_of(self, digest: str) -> list[str]:
        if digest in self.manifests:
            return [self.manifest_paths[digest]]
        return sorted(self.files.get(digest, ()))


def outputs_for(repo: Repo, targets: list[str], revs: Revisions) -> list[tuple[Tracked, str | None]]:
    chosen = select(repo, load_tracked(repo), targets)
    if revs.any:
        seen = {(t.rel, t.pointer, inner) for t, inner in chosen}
        for _where, t in kept_outputs(repo, revs):
            if (t.rel, t.pointer, None) not in seen:
                seen.add((t.rel, t.pointer, None))
                chosen.append((t, None))
    return chosen


def needs_of(outputs, manifest_of: Callable[[Tracked, str], Manifest | None]) -> Needs:
    needs = Needs()
    for t, inner in outputs:
        digest = t.pointer.digest.hex
        if t.pointer.kind == "file":
            needs.need_file(digest, t.pointer.size, t.rel)
            continue
        manifest = manifest_of(t, digest)
        if manifest is None:
            needs.unreadable.append((t.rel, digest))
            continue
        for e in manifest.entries:
            if inner is None or e.path == inner or e.path.startswith(inner + "/"):
                needs.need_file(e.digest, e.size, f"{t.rel}/{e.path}")
        needs.manifests[digest] = {e.digest for e in manifest.entries}
        needs.manifest_paths[digest] = t.rel
    return needs


def local_manifest(odb: Cache) -> Callable[[Tracked, str], Manifest | None]:
    def read(t: Tracked, digest: str) -> Manifest | None:
        try:
            return odb.manifest(digest, t.pointer_rel)
        except IntegrityError:
            return None

    return read


# --- push --------------------------------------------------------------------------------------

@dataclass
class PushResult:
    remote: str
    uploaded: int = 0
    uploaded_bytes: int = 0
    present: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (digest, reason)
    missing_locally: list[tuple[str, list[str]]] = field(default_factory=list)
    skipped_manifests: list[str] = field(default_factory=list)  # paths whose manifest waits
    run_records: int = 0  # run-cache records written (push --run-cache)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.missing_locally


def push(repo: Repo, targets: list[str], remote_name: str | None = None, jobs: int | None = None,
         revs: Revisions = Revisions(), callback=None) -> PushResult:
    return push_outputs(repo, outputs_for(repo, targets, revs), remote_name, jobs, callback)


def push_outputs(repo: Repo, outputs: list[tuple[Tracked, str | None]], remote_name: str | None = None,
                 jobs: int | None = None, callback=None, remote: Remote | None = None) -> PushResult:
    """Push what `outputs` need (e.g. the pointers of the commits a `git push` sends)."""
    remote = remote or Remote(choose(repo.config, remote_name))
    remote.require_writable()
    needs = needs_of(outputs, local_manifest(repo.odb))
    return push_needs(repo.odb, remote, needs, repo.index_dir, jobs or remote.default_jobs,
                      callback or SILENT)


def push_needs(odb: Cache, remote: Remote, needs: Needs, index_dir: str, jobs: int,
               callback) -> PushResult:
    result = PushResult(remote.name)
    for path, digest in needs.unreadable:
        result.missing_locally.append((digest, [path]))
    local_missing = odb.missing(needs.files)
    result.missing_locally += [(d, needs.paths_of(d)) for d in sorted(local_missing)]
    candidates = (set(needs.files) - local_missing) | set(needs.manifests)
    if not candidates:
        return result
    remote.read_layout()  # refuse a newer layout before writing anything
    present = inventory.inventory(remote, candidates, index_dir, jobs).holding(candidates)
    result.present = len(present)
    files = {d: needs.sizes[d] for d in sorted(set(needs.files) - local_missing - present, key=_spread)}
    callback.set_size(sum(files.values()))
    arrived = set(present)

    def done(digests: list[str], error: BaseException | None, sent: int | None = None) -> None:
        for digest in digests:
            if error is None:
                arrived.add(digest)
                result.uploaded += 1
                callback.relative_update(needs.sizes.get(digest, 0))
            else:
                result.failed.append((digest, str(error)))
        if error is None:  # what went over the wire (a chunked object: only its new chunks)
            result.uploaded_bytes += sum(needs.sizes.get(d, 0) for d in digests) if sent is None else sent

    upload(odb, remote, files, index_dir, jobs, done)
    # a manifest goes up only when every file it lists is there
    waiting = {d: entries for d, entries in needs.manifests.items() if d not in present}
    ready = {d: odb.size(d) for d, entries in waiting.items() if entries <= arrived}
    needs.sizes.update(ready)
    result.skipped_manifests = sorted(needs.manifest_paths[d] for d in waiting if d not in ready)
    upload(odb, remote, ready, index_dir, jobs, done)
    return result


def upload(odb: Cache, remote: Remote, sizes: dict[str, int], index_dir: str, jobs: int, done) -> None:
    """Small objects in packs, large ones as chunks (layout 3), the rest one by one;
    `done(digests, error[, bytes sent])` after each upload."""
    small = {d: s for d, s in sizes.items() if inventory.is_packable(s)}
    split = chunked.enabled(remote)
    pieces = [d for d in sizes if d not in small and split and chunked.chunkable(sizes[d])]
    large = [d for d in sizes if d not in small and d not in pieces]
    if large:
        remote.ensure_layout()

    def one(digest: str) -> None:
        remote.store_file(object_key(digest), odb.path(digest))

    for digest, error in run_jobs(jobs, one, large):
        done([digest], error)
    if pieces:
        pushed = chunked.push_objects(odb, remote, pieces, jobs)
        done(pushed.done, None, pushed.sent_bytes)
        for digest, error in pushed.failed:
            done([digest], error)
    groups = group_for_packs(small)
    for group, error in inventory.upload_packs(remote, odb, groups, index_dir, jobs):
        done(group, error)


# --- fetch -----------------------------------------------------------------------------------

@dataclass
class FetchResult:
    remote: str
    downloaded: int = 0
    downloaded_bytes: int = 0
    read_bytes: int = 0  # bytes requested from the remote: objects, pack ranges, manifests
    run_records: int = 0  # run-cache records fetched (--run-cache)
    missing_on_remote: list[tuple[str, list[str]]] = field(default_factory=list)
    corrupt_on_remote: list[tuple[str, str]] = field(default_factory=list)  # (digest, remote path)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (digest, reason) after retries

    @property
    def ok(self) -> bool:
        return not self.missing_on_remote and not self.corrupt_on_remote and not self.failed


class Source:
    """A remote being read into a cache; its pack indexes are loaded once, when first needed."""

    def __init__(self, odb: Cache, remote: Remote, index_dir: str, jobs: int | None):
        self.odb, self.remote, self.index_dir = odb, remote, index_dir
        self.jobs = jobs or remote.default_jobs
        self._inv: Inventory | None = None
        self._rebuild: chunked.Rebuild | None = None

    @property
    def inv(self) -> Inventory:
        if self._inv is None:
            self._inv = inventory.read_packs(self.remote, self.index_dir, self.jobs)
        return self._inv

    @property
    def rebuild(self) -> chunked.Rebuild:
        if self._rebuild is None:
            self._rebuild = chunked.Rebuild(self.odb, self.remote, self.jobs)
        return self._rebuild

    def where(self, digest: str) -> str:
        loc = self.inv.packed.get(digest)
        if loc is not None:
            return f"{self.remote.path(pack_key(loc.pack, 'pack'))} (object {digest})"
        return self.remote.path(object_key(digest))

    def download(self, digest: str, size: int) -> int:
        """One object into the cache, verified; the bytes read from the remote.
        FileNotFoundError when the remote lacks it. A large object is rebuilt from its chunks
        where the remote has them (else, or when a chunk is damaged, downloaded whole)."""
        loc = self.inv.packed.get(digest)
        if loc is not None:
            data = self.remote.load(pack_key(loc.pack, "pack"), loc.offset, loc.offset + loc.length)
            self.odb.put_verified(data, digest, self.where(digest))
            return loc.length
        may_chunk = (self.remote.read_layout() or 0) >= CHUNKED_LAYOUT
        if may_chunk and chunked.chunkable(size):
            try:
                return self.rebuild.fetch(digest)
            except FileNotFoundError:
                pass
            except chunked.ChunkedObjectError:
                with contextlib.suppress(FileNotFoundError):  # a whole copy may be there too
                    return self._whole(digest, size)
                raise
        try:
            return self._whole(digest, size)
        except FileNotFoundError:
            if may_chunk and not chunked.chunkable(size):  # chunked by a dvlite that cut smaller
                return self.rebuild.fetch(digest)
            raise

    def _whole(self, digest: str, size: int) -> int:
        origin = self.where(digest)
        if size < STREAM_ABOVE:
            data = self.remote.load(object_key(digest))
            self.odb.put_verified(data, digest, origin)
            return len(data)
        tmp = self.odb.temp_path(digest)
        found = None
        try:
            if self.remote.is_local_dir:
                # one copy inside the kernel, read back from the page cache as it is made:
                # hashed, and cut into chunks from CHUNK_ABOVE up (a later fetch of a newer
                # version then reuses them)
                got, found = _copy_local(self.remote.path(object_key(digest)), tmp, size)
            else:
                self.remote.fetch_file(object_key(digest), tmp)
                got = os.path.getsize(tmp)
            self.odb.adopt(tmp, digest, origin, getattr(found, "digest", found))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if found is not None and not isinstance(found, str):
            with contextlib.suppress(OSError):
                chunklists.save(self.odb.dir, found)  # its bytes matched: the list is true
        return got

    def manifest(self, t: Tracked, digest: str, result: FetchResult) -> Manifest | None:
        if not self.odb.contains(digest):
            try:
                result.read_bytes += self.download(digest, 0)
            except FileNotFoundError:
                return None
            except IntegrityError:
                result.corrupt_on_remote.append((digest, self.where(digest)))
                return None
        return local_manifest(self.odb)(t, digest)


def _copy_local(path: str, tmp: str, size: int):
    """Copy a local remote's object into `tmp` in the kernel, reading it back as it goes
    (digest, or chunk list from CHUNK_ABOVE up); a full local disk names `tmp`."""
    try:
        with open(path, "rb", buffering=0) as src, open(tmp, "x+b", buffering=0) as out:
            return copy_and_read_back(src.fileno(), out.fileno(), chunklists.scanner(size))
    except OSError as exc:
        disk = local_disk_failure(exc, tmp)
        if disk is not None:
            raise disk from exc
        raise


def fetch(repo: Repo, targets: list[str], remote_name: str | None = None, jobs: int | None = None,
          revs: Revisions = Revisions(), callback=None) -> FetchResult:
    return fetch_outputs(repo, outputs_for(repo, targets, revs), remote_name, jobs, callback)


def fetch_outputs(repo: Repo, outputs, remote_name: str | None = None, jobs: int | None = None,
                  callback=None, remote: Remote | None = None) -> FetchResult:
    """Bring what `outputs` need into the cache. A fetch that finds everything cached needs no
    remote at all (not even a configured one)."""
    lazy: list[Source] = [Source(repo.odb, remote, repo.index_dir, jobs)] if remote else []

    def source() -> Source:
        if not lazy:
            lazy.append(Source(repo.odb, connect(repo, remote_name), repo.index_dir, jobs))
        return lazy[0]

    result = FetchResult(remote.name if remote else (remote_name or ""))

    def manifest_of(t: Tracked, digest: str) -> Manifest | None:
        if repo.odb.contains(digest):
            return local_manifest(repo.odb)(t, digest)
        return source().manifest(t, digest, result)

    needs = needs_of(outputs, manifest_of)
    corrupt = {d for d, _ in result.corrupt_on_remote}
    result.missing_on_remote += [(d, [p]) for p, d in needs.unreadable if d not in corrupt]
    wanted = repo.odb.missing(needs.files)
    if wanted or lazy:
        transfer_in(source(), {d: needs.sizes[d] for d in wanted}, callback or SILENT,
                    result, needs.paths_of)
    return result


def fetch_objects(odb: Cache, remote: Remote, sizes: dict[str, int], index_dir: str,
                  jobs: int | None = None, callback=None) -> FetchResult:
    """Bring the objects `sizes` names (digest -> size) into the cache, verified."""
    result = FetchResult(remote.name)
    wanted = odb.missing(sizes)
    if wanted:
        transfer_in(Source(odb, remote, index_dir, jobs), {d: sizes[d] for d in wanted},
                    callback or SILENT, result, lambda d: [d])
    return result


def fetch_missing(repo: Repo, sizes: dict[str, int], remote_name: str | None = None) -> FetchResult:
    """Bring what the cache lacks of these objects from a repository's remote (contacted only
    when something is missing): for the API and the merge driver."""
    if not repo.odb.missing(sizes):
        return FetchResult(remote_name or "")
    return fetch_objects(repo.odb, connect(repo, remote_name), sizes, repo.index_dir)


def transfer_in(source: Source, sizes: dict[str, int], callback, result: FetchResult, paths_of) -> None:
    result.remote = source.remote.name
    callback.set_size(sum(sizes.values()))

    def record(digest: str, error: BaseException | None) -> None:
        if error is None:
            result.downloaded += 1
            result.downloaded_bytes += sizes[digest]
            callback.relative_update(sizes[digest])
        elif isinstance(error, chunked.ChunkedObjectError):  # says which chunk list and chunk
            result.corrupt_on_remote.append((digest, error.message))
        elif isinstance(error, IntegrityError):
            result.corrupt_on_remote.append((digest, source.where(digest)))
        elif isinstance(error, FileNotFoundError):
            result.missing_on_remote.append((digest, paths_of(digest)))
        else:
            result.failed.append((digest, str(error)))

    # No sync barrier: nothing durable names a fetched object (the pointers came from git),
    # and every object is verified whenever it is read, so one cut short by a crash is found
    # and fetched again (docs/design.md, Durability).
    with source.odb.batch():  # small objects land in local packs, not a file each
        _fetch_into(source, sizes, result, record)


def _fetch_into(source: Source, sizes: dict[str, int], result: FetchResult, record) -> None:
    packed = {d for d in sizes if d in source.inv.packed}
    outcomes: dict = {}

    def read(r) -> None:
        index = source.inv.indexes.get(r.pack)
        outcomes[r] = inventory.fetch_read(source.remote, source.odb, r, index)

    reads = inventory.fetch_reads(source.inv, packed)  # a whole pack is held while it is stored
    # from a local directory two pack reads at a time (8 MiB each, held until stored), so
    # reading, hashing and writing overlap (a fetch of 50,000 files on tmpfs: 1.25 s one at a
    # time, 0.87 s two); from a cloud one at a time: its client holds a response twice while
    # joining it, and two in flight made a pull from S3 no faster, only bigger (performance.md)
    for r, error in run_jobs(2 if source.remote.is_local_dir else 1, read, reads):
        result.read_bytes += r.end - r.start
        for digest, obj_error in (outcomes.pop(r) if error is None else
                                  [(d, error) for d, _, _ in r.objects]):
            record(digest, obj_error)
    loose = sorted((d for d in sizes if d not in packed), key=_spread)
    got: dict[str, int] = {}

    def one(digest: str) -> None:
        got[digest] = source.download(digest, sizes[digest])

    for digest, error in run_jobs(source.jobs, one, loose):
        result.read_bytes += got.pop(digest, 0)
        record(digest, error)
