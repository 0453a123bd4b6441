"""Moving objects between the cache and a remote: push, fetch, pull, status --cloud, gc --cloud."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dvlite import packstore
from dvlite.errors import IntegrityError
from dvlite.fsutil import sync_barrier
from dvlite.maintain import Revisions, kept_outputs, used_objects
from dvlite.manifest import Manifest
from dvlite.packs import group_for_packs
from dvlite.packstore import Inventory
from dvlite.remote import Remote, choose, run_jobs
from dvlite.repo import Repo
from dvlite.tracked import Tracked, load_tracked, select

STREAM_ABOVE = 4 << 20


def _spread(digest: str) -> str:
    """Order objects so consecutive writes land in different fan-out directories: ext4 here
    creates files up to 1.7x faster that way (measured on journal-less ext4; see performance.md)."""
    return digest[2:]


def _noop_callback():
    from fsspec.callbacks import NoOpCallback

    return NoOpCallback()


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


def _needs(outputs, manifest_of) -> Needs:
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
        entries = [
            e for e in manifest.entries
            if inner is None or e.path == inner or e.path.startswith(inner + "/")
        ]
        for e in entries:
            needs.need_file(e.digest, e.size, f"{t.rel}/{e.path}")
        needs.manifests[digest] = {e.digest for e in manifest.entries}
        needs.manifest_paths[digest] = t.rel
    return needs


def _local_manifest(repo: Repo):
    def read(t: Tracked, digest: str) -> Manifest | None:
        try:
            return Manifest.from_bytes(repo.odb.read_verified(digest), t.pointer_rel)
        except IntegrityError:
            return None

    return read


def index_cache(repo: Repo) -> str:
    return os.path.join(repo.dvlite_dir, "tmp", "pack-index")


def _inventory(repo: Repo, remote: Remote, candidates: set[str], jobs: int) -> Inventory:
    return packstore.inventory(remote, candidates, index_cache(repo), jobs)


# --- push -------------------------------------------------------------------------------------

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
         revs: Revisions = Revisions(), callback=None, run_cache: bool = False) -> PushResult:
    outputs = outputs_for(repo, targets, revs)
    if not run_cache:
        return push_outputs(repo, outputs, remote_name, jobs, callback)
    from dvlite import run

    outputs += [(t, None) for t in run.run_cache_outputs(repo)]
    result = push_outputs(repo, outputs, remote_name, jobs, callback)
    if result.ok:  # records go up after the objects they restore
        result.run_records = run.push_run_cache(repo, Remote(choose(repo.config, remote_name)))
    return result


def push_outputs(repo: Repo, outputs: list[tuple[Tracked, str | None]], remote_name: str | None = None,
                 jobs: int | None = None, callback=None) -> PushResult:
    """Push what `outputs` need (e.g. the pointers of the commits a `git push` sends)."""
    remote = Remote(choose(repo.config, remote_name))
    remote._require_writable()
    jobs = jobs or remote.default_jobs
    callback = callback or _noop_callback()
    needs = _needs(outputs, _local_manifest(repo))
    result = PushResult(remote.name)
    for path, digest in needs.unreadable:
        result.missing_locally.append((digest, [path]))
    local_missing = repo.odb.missing(needs.files)
    result.missing_locally += [(d, needs.paths_of(d)) for d in sorted(local_missing)]
    candidates = (set(needs.files) - local_missing) | set(needs.manifests)
    if not candidates:
        return result
    remote.read_layout()  # refuse a newer layout before writing anything
    present = _inventory(repo, remote, candidates, jobs).holding(candidates)
    result.present = len(present)
    files = {d: needs.sizes[d] for d in sorted(set(needs.files) - local_missing - present, key=_spread)}
    callback.set_size(sum(files.values()))
    arrived = set(present)

    def done(digests: list[str], error: BaseException | None) -> None:
        for digest in digests:
            if error is None:
                arrived.add(digest)
                result.uploaded += 1
                result.uploaded_bytes += needs.sizes.get(digest, 0)
                callback.relative_update(needs.sizes.get(digest, 0))
            else:
                result.failed.append((digest, str(error)))

    _upload(repo, remote, files, jobs, done)
    # a manifest goes up only when every file it lists is there
    waiting = {d: entries for d, entries in needs.manifests.items() if d not in present}
    ready = {d: repo.odb.size(d) for d, entries in waiting.items() if entries <= arrived}
    needs.sizes.update(ready)
    result.skipped_manifests = sorted(needs.manifest_paths[d] for d in waiting if d not in ready)
    _upload(repo, remote, ready, jobs, done)
    return result


def _upload(repo: Repo, remote: Remote, sizes: dict[str, int], jobs: int, done) -> None:
    """Small objects in packs, the rest one by one; `done(digests, error)` after each upload."""
    small = {d: s for d, s in sizes.items() if packstore.is_packable(s)}
    large = [d for d in sizes if d not in small]
    if large:
        remote.ensure_layout()

    def upload(digest: str) -> None:
        remote.upload(repo.odb.path(digest), digest)

    for digest, error in run_jobs(jobs, upload, large):
        done([digest], error)
    groups = group_for_packs(small)
    for group, error in packstore.upload_packs(remote, repo.odb, groups, index_cache(repo), jobs):
        done(group, error)


# --- fetch, pull --------------------------------------------------------------------------------

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


class _Source:
    """A remote being read from; its pack indexes are loaded once, when first needed."""

    def __init__(self, repo: Repo, remote: Remote, jobs: int | None):
        self.repo, self.remote = repo, remote
        self.jobs = jobs or remote.default_jobs
        self._inv: Inventory | None = None

    @property
    def inv(self) -> Inventory:
        if self._inv is None:
            self._inv = packstore.read_packs(self.remote, index_cache(self.repo), self.jobs)
        return self._inv

    def where(self, digest: str) -> str:
        loc = self.inv.packed.get(digest)
        if loc is not None:
            return f"{self.remote.pack_path(loc.pack, 'pack')} (object {digest})"
        return self.remote.object_path(digest)

    def download(self, digest: str, size: int) -> None:
        """One object into the cache, verified; FileNotFoundError when the remote lacks it."""
        loc = self.inv.packed.get(digest)
        if loc is not None:
            data = self.remote.read_range(self.remote.pack_path(loc.pack, "pack"),
                                          loc.offset, loc.offset + loc.length)
            self.repo.odb.put_verified(data, digest, self.where(digest))
            return
        origin = self.where(digest)
        if size >= STREAM_ABOVE:
            tmp = self.repo.odb.temp_path(digest)
            try:
                self.remote.get_object(digest, tmp)
                self.repo.odb.adopt(tmp, digest, origin)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            self.repo.odb.put_verified(self.remote.read_object(digest), digest, origin)

    def manifest(self, t: Tracked, digest: str, result: FetchResult) -> Manifest | None:
        if not self.repo.odb.contains(digest):
            try:
                self.download(digest, 0)
                result.read_bytes += self.repo.odb.size(digest)
            except FileNotFoundError:
                return None
            except IntegrityError:
                result.corrupt_on_remote.append((digest, self.where(digest)))
                return None
        return _local_manifest(self.repo)(t, digest)


def fetch(repo: Repo, targets: list[str], remote_name: str | None = None, jobs: int | None = None,
          revs: Revisions = Revisions(), callback=None, run_cache: bool = False) -> FetchResult:
    callback = callback or _noop_callback()
    outputs = outputs_for(repo, targets, revs)
    lazy: list[_Source] = []
    run_records = 0
    if run_cache:  # the records first: they say which outs to fetch
        from dvlite import run

        remote = Remote(choose(repo.config, remote_name))
        remote.read_layout()
        lazy.append(_Source(repo, remote, jobs))
        run_records = run.pull_run_cache(repo, remote)
        outputs += [(t, None) for t in run.run_cache_outputs(repo)]

    def connect() -> _Source:  # a fetch that finds everything cached needs no remote at all
        if not lazy:
            remote = Remote(choose(repo.config, remote_name))
            remote.read_layout()
            lazy.append(_Source(repo, remote, jobs))
        return lazy[0]

    result = FetchResult(remote_name or "", run_records=run_records)

    def manifest_of(t: Tracked, digest: str) -> Manifest | None:
        if repo.odb.contains(digest):
            return _local_manifest(repo)(t, digest)
        return connect().manifest(t, digest, result)

    needs = _needs(outputs, manifest_of)
    for path, digest in needs.unreadable:
        if digest not in {d for d, _ in result.corrupt_on_remote}:
            result.missing_on_remote.append((digest, [path]))
    wanted = repo.odb.missing(needs.files)
    if not wanted and not lazy:
        return result
    _transfer_in(connect(), {d: needs.sizes[d] for d in wanted}, callback, result, needs.paths_of)
    return result


def fetch_objects(repo: Repo, sizes: dict[str, int], remote_name: str | None = None,
                  jobs: int | None = None, callback=None) -> FetchResult:
    """Bring the objects `sizes` names (digest -> size) into the cache, verified; for the API."""
    result = FetchResult(remote_name or "")
    wanted = repo.odb.missing(sizes)
    if wanted:
        remote = Remote(choose(repo.config, remote_name))
        remote.read_layout()
        _transfer_in(_Source(repo, remote, jobs), {d: sizes[d] for d in wanted},
                     callback or _noop_callback(), result, lambda d: [d])
    return result


def _transfer_in(source: _Source, sizes: dict[str, int], callback, result: FetchResult,
                 paths_of) -> None:
    repo, remote = source.repo, source.remote
    result.remote = remote.name
    callback.set_size(sum(sizes.values()))

    def record(digest: str, error: BaseException | None) -> None:
        if error is None:
            result.downloaded += 1
            result.downloaded_bytes += sizes[digest]
            callback.relative_update(sizes[digest])
        elif isinstance(error, IntegrityError):
            result.corrupt_on_remote.append((digest, source.where(digest)))
        elif isinstance(error, FileNotFoundError):
            result.missing_on_remote.append((digest, paths_of(digest)))
        else:
            result.failed.append((digest, str(error)))

    with repo.odb.batch():  # small objects land in local packs, not a file each
        _fetch_into(source, sizes, result, record)
    if result.downloaded:
        sync_barrier(repo.odb.root)


def _fetch_into(source: _Source, sizes: dict[str, int], result: FetchResult, record) -> None:
    repo, remote = source.repo, source.remote
    packed = {d for d in sizes if d in source.inv.packed}
    outcomes: dict = {}

    def read(r) -> None:
        outcomes[r] = packstore.fetch_read(remote, repo.odb, r)

    reads = packstore.fetch_reads(source.inv, packed)  # a whole pack is held while it is stored
    for r, error in run_jobs(min(source.jobs, packstore.PACK_JOBS), read, reads):
        result.read_bytes += r.end - r.start
        for digest, obj_error in (outcomes.pop(r) if error is None else
                                  [(d, error) for d, _, _ in r.objects]):
            record(digest, obj_error)
    loose = sorted((d for d in sizes if d not in packed), key=_spread)
    for digest, error in run_jobs(source.jobs, lambda d: source.download(d, sizes[d]), loose):
        result.read_bytes += sizes[digest] if error is None else 0
        record(digest, error)


# --- status --cloud, gc --cloud ---------------------------------------------------------------

@dataclass(frozen=True)
class CloudStatus:
    path: str
    objects: int
    on_remote: int
    local: int
    state: str  # in sync | missing on remote | missing locally | missing everywhere | unknown


def cloud_status(repo: Repo, targets: list[str], remote_name: str | None = None,
                 jobs: int | None = None) -> tuple[str, list[CloudStatus]]:
    remote = Remote(choose(repo.config, remote_name))
    jobs = jobs or remote.default_jobs
    chosen = select(repo, load_tracked(repo), targets)
    per_output: list[tuple[str, set[str]]] = []
    read = _local_manifest(repo)
    for t, inner in chosen:
        needs = _needs([(t, inner)], read)
        per_output.append((t.rel, set(needs.files) | set(needs.manifests)
                           | ({t.pointer.digest.hex} if needs.unreadable else set())))
    everything = set().union(*(s for _, s in per_output)) if per_output else set()
    remote.read_layout()
    on_remote = _inventory(repo, remote, everything, jobs).holding(everything) if everything else set()
    local = everything - repo.odb.missing(everything)
    out = []
    for path, digests in per_output:
        r, lo = len(digests & on_remote), len(digests & local)
        if r == lo == len(digests):
            state = "in sync"
        elif r == len(digests):
            state = "missing locally"
        elif lo == len(digests):
            state = "missing on remote"
        elif not (digests & (on_remote | local)) or digests - (on_remote | local):
            state = "missing everywhere"
        else:
            state = "partly on each side"
        out.append(CloudStatus(path, len(digests), r, lo, state))
    return remote.name, out


@dataclass(frozen=True)
class CloudGcResult:
    remote: str
    unused: list[str]  # objects no kept revision needs, loose or packed
    unused_bytes: int
    repacked: list[str]  # packs rewritten without their unused objects
    dropped: list[str]  # packs holding only unused objects
    temp_files: list[str]
    removed: bool


def cloud_gc(repo: Repo, revs: Revisions, remote_name: str | None, force: bool,
             jobs: int | None = None) -> CloudGcResult:
    remote = Remote(choose(repo.config, remote_name))
    remote._require_writable()
    remote.read_layout()
    source = _Source(repo, remote, jobs)
    outputs = kept_outputs(repo, revs)
    for _where, t in outputs:  # manifests we lack locally are read from the remote
        digest = t.pointer.digest.hex
        if t.pointer.kind == "dir" and not repo.odb.contains(digest):
            try:
                source.download(digest, 0)
            except (FileNotFoundError, IntegrityError):
                pass
    used = used_objects(repo, outputs)
    if used.unreadable:
        path, digest = used.unreadable[0]
        raise IntegrityError(
            f"cannot read the manifest of {path} ({digest}) locally or on the remote; "
            "gc would not know what it keeps",
            hint="fetch or re-add that data first",
        )
    keep = set(used.users)
    inv = source.inv
    loose = remote.loose_sizes()
    unused = {d: size for d, size in loose.items() if d not in keep}
    plan = packstore.plan_repack(inv, keep)
    for pack in plan.dropped + plan.repacked:
        for digest, (_offset, length) in inv.indexes[pack].entries.items():
            if digest not in keep:
                unused[digest] = length
    temps = remote.temp_files()
    if force:
        for pack in plan.repacked:  # the replacement is complete before the old pack goes
            packstore.repack(remote, inv.indexes[pack], keep, index_cache(repo))
        for pack in plan.repacked + plan.dropped:
            packstore.remove_pack(remote, pack)
        list(run_jobs(source.jobs, remote.remove_object, sorted(set(loose) - keep)))
        list(run_jobs(source.jobs, remote.remove_path, temps))
    return CloudGcResult(remote.name, sorted(unused), sum(unused.values()), plan.repacked,
                         plan.dropped, temps, force)
