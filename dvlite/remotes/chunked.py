"""Large objects on remotes as content-defined chunks plus a chunk list (layout 3).

`push` sends only the chunks a remote lacks, then the chunk list, so a 1 MiB change in a
2 GiB file costs a few MiB on the wire and in the remote. `fetch` rebuilds an object from the
chunks of older versions already in the cache plus the chunks it downloads, into a temp file
in the cache, and renames it into place only once its bytes hash to the object's name.

Order (as for packs, invariants 8, 9, 13): the layout file says 3 before the first chunk list
is written; every chunk is on the remote before the chunk list that names it; an interrupted
push leaves chunks without a list, which the next push finds there and does not send again.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field

from dvlite.digest import hash_bytes, hash_fd, new_hasher
from dvlite.errors import FormatError, IntegrityError
from dvlite.formats.chunks import CHUNK_ABOVE, MAX_LIST, ChunkList, DamagedChunkListError
from dvlite.fsutil import removed_on_failure, temp_name
from dvlite.remotes import backend
from dvlite.remotes.backend import Remote
from dvlite.remotes.errors import local_disk_failure, run_jobs
from dvlite.remotes.inventory import chunked_objects
from dvlite.storage import chunklists
from dvlite.storage.cache import Cache
from dvlite.storage.layout import CHUNKED_LAYOUT, chunk_key, chunked_of, chunklist_key

FEW = 32  # up to this many chunks, ask for each; beyond, list `chunks/`
CHUNK_JOBS = 2  # chunks in flight: each (8 MiB at most as cut here; a list may say up to
# formats.chunks.MAX_CHUNK) is held in memory (memory at or below DVC's: performance.md)


class ChunkedObjectError(IntegrityError):
    """A chunked object on a remote that cannot be rebuilt: its list names a chunk the remote
    lacks, or a chunk's bytes do not match its name."""


def enabled(remote: Remote) -> bool:
    """Whether objects go to this remote as chunks: this dvlite reads layout 3, and the remote
    can store (HTTP remotes are read-only)."""
    return backend.LAYOUT >= CHUNKED_LAYOUT and remote.kind != "http"


def chunkable(size: int) -> bool:
    return size >= CHUNK_ABOVE


def may_hold_chunked(remote: Remote) -> bool:
    return (remote.read_layout() or 0) >= CHUNKED_LAYOUT


def _chunks_present(remote: Remote, wanted: set[str], jobs: int, cache_dir: str,
                    pushing: set[str]) -> set[str]:
    """The chunks of `wanted` the remote holds. A chunk list on a remote means every chunk it
    names is there (invariant 28), so the older versions kept in the cache answer for most of
    them with one question each; the rest are asked for one by one when few, else `chunks/`
    is listed."""
    if not wanted or not may_hold_chunked(remote):
        return set()
    present: set[str] = set()
    for obj, shared in chunklists.sharing(cache_dir, wanted, pushing)[:FEW]:
        if not shared <= present and remote.exists(chunklist_key(obj)):
            present |= shared
    rest = wanted - present
    if len(rest) <= FEW:
        order = sorted(rest)
        return present | {d for d, ok in _asked(remote, order, jobs) if ok}
    listed = {found[1] for key in remote.list("chunks")
              if (found := chunked_of(key)) is not None and found[0] == "chunks"}
    return present | (rest & listed)


def _asked(remote: Remote, digests: list[str], jobs: int):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, min(jobs, 16))) as pool:
        yield from zip(digests, pool.map(lambda d: remote.exists(chunk_key(d)), digests))


# --- push ------------------------------------------------------------------------------------

@dataclass
class ChunkedPush:
    """What a chunked push did: objects whose chunk list is on the remote, bytes sent."""

    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, BaseException]] = field(default_factory=list)
    sent_bytes: int = 0
    sent_chunks: int = 0


def push_objects(odb: Cache, remote: Remote, digests: list[str], jobs: int) -> ChunkedPush:
    """Send each object as chunks the remote lacks, then its chunk list. A chunk list goes up
    only when every chunk it names is on the remote."""
    result = ChunkedPush()
    lists: dict[str, ChunkList] = {}
    for digest in digests:
        try:
            lists[digest] = chunklists.of_object(odb.dir, digest)
        except IntegrityError as exc:
            result.failed.append((digest, exc))
    if not lists:
        return result
    remote.ensure_layout(CHUNKED_LAYOUT)  # before the first chunk list (invariant 17's rule)
    wanted = {c for cl in lists.values() for c, _n in cl.chunks}
    present = _chunks_present(remote, wanted, jobs, odb.dir, set(lists))
    where: dict[str, tuple[str, int, int]] = {}  # chunk -> (object, offset, length) to read it
    for digest, cl in lists.items():
        for chunk, offset, length in cl.spans():
            if chunk not in present:
                where.setdefault(chunk, (digest, offset, length))
    arrived = set(present)
    broken: dict[str, BaseException] = {}
    buffers = threading.local()  # one buffer per thread: no fresh memory (page faults) a chunk
    local = remote.is_local_dir

    def send(chunk: str) -> None:
        obj, offset, length = where[chunk]
        # a local directory needs the bytes only to check them: 1 MiB at a time will do
        size = min(length, 1 << 20) if local else length
        if getattr(buffers, "buf", None) is None or len(buffers.buf) < size:
            buffers.buf = bytearray(size)
        with open(odb.path(obj), "rb", buffering=0) as f:
            # checked before it goes: a chunk on a remote is shared by every version that
            # holds it, and a later push would take a bad one there for a good one
            if _range_digest(f.fileno(), offset, length, memoryview(buffers.buf)[:size]) != chunk:
                raise IntegrityError(f"cache object {obj} is corrupt (a chunk of it does not "
                                     "match its chunk list)", hint="run `dvlite fsck --repair`")
            if local:  # a directory here: copied in the kernel under a temp name, renamed
                _store_local(remote, chunk_key(chunk), f.fileno(), offset, length)
                return
        remote.store(chunk_key(chunk), bytes(buffers.buf[:length]))

    # a local directory is bound by the kernel's copying: more threads only contend
    for chunk, error in run_jobs(min(jobs, 2 if local else CHUNK_JOBS), send, sorted(where)):
        if error is None:
            arrived.add(chunk)
            result.sent_bytes += where[chunk][2]
            result.sent_chunks += 1
        else:
            broken[where[chunk][0]] = error
    for digest, cl in lists.items():
        if digest in broken or any(c not in arrived for c, _n in cl.chunks):
            result.failed.append((digest, broken.get(digest) or IntegrityError("chunks missing")))
            continue
        body = cl.to_bytes()
        remote.store(chunklist_key(digest), body)  # after all its chunks
        result.sent_bytes += len(body)
        result.done.append(digest)
    return result


# --- fetch -----------------------------------------------------------------------------------

def read_list(remote: Remote, digest: str) -> ChunkList:
    """The remote's chunk list of `digest` (bounded, verified); FileNotFoundError when the
    remote holds no chunk list for it."""
    key = chunklist_key(digest)
    try:
        data = remote.read_small(key, MAX_LIST)
    except FormatError as exc:
        raise DamagedChunkListError(exc.message) from None
    return ChunkList.from_bytes(data, remote.path(key), digest)


class Rebuild:
    """Objects rebuilt from chunks into a cache: the chunks older versions there already hold
    are copied locally (read once per command), the rest downloaded; every chunk is checked
    against its name as it lands, and the whole against the object's."""

    def __init__(self, odb: Cache, remote: Remote, jobs: int):
        self.odb, self.remote, self.jobs = odb, remote, jobs
        self._local: dict[str, tuple[str, int, int]] | None = None
        self.local_dir = remote.is_local_dir

    @property
    def local(self) -> dict[str, tuple[str, int, int]]:
        if self._local is None:
            self._local = chunklists.local_chunks(self.odb.dir)
        return self._local

    def fetch(self, digest: str) -> int:
        """Rebuild object `digest` into the cache; the bytes downloaded. FileNotFoundError when
        the remote has no chunk list for it; ChunkedObjectError when it cannot be rebuilt."""
        cl = read_list(self.remote, digest)
        tmp = self.odb.temp_path(digest)
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                if self.local_dir:  # copies in the kernel, read back as they are made
                    try:
                        got, found = self._fill_in_order(fd, cl, use_local=True)
                    except _BadLocalChunk:  # an older version here is damaged: not from it
                        got, found = self._fill_in_order(fd, cl, use_local=False)
                else:  # downloads in parallel, then one pass over the page cache
                    got = self._fill_parallel(fd, cl)
                    found = hash_fd(fd).hex
            finally:
                os.close(fd)
            self.odb.adopt(tmp, digest, self.remote.path(chunklist_key(digest)), found)
        except OSError as exc:
            disk = local_disk_failure(exc, tmp)
            if disk is not None:
                raise disk from exc
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        with contextlib.suppress(OSError):
            chunklists.save(self.odb.dir, cl)  # every byte matched: the list is true
        return got + len(cl.to_bytes())

    def _fill_in_order(self, fd: int, cl: ChunkList, use_local: bool) -> tuple[int, str]:
        """Copy every chunk to its place in order (from an older version here, else from the
        remote's directory), read each back at once (from the page cache) and check it against
        its name, and the whole against the object's. (Reading back in a second thread while
        the next chunks are copied doubled the kernel time here: measured, performance.md.)"""
        local = self.local if use_local else {}
        whole = new_hasher()
        buf = bytearray(max((n for _c, n in cl.chunks), default=0))
        got = 0
        for chunk, offset, length in cl.spans():
            view = memoryview(buf)[:length]
            if chunk in local and self._copy_local(fd, local[chunk], offset, length):
                if os.preadv(fd, [view], offset) != length or hash_bytes(view).hex != chunk:
                    raise _BadLocalChunk(chunk)
            else:
                self._copy_remote(fd, cl, chunk, offset, length)
                got += length
                if os.preadv(fd, [view], offset) != length or hash_bytes(view).hex != chunk:
                    raise self._mismatch(cl, chunk)
            whole.update(view)
        return got, whole.hexdigest()

    def _copy_local(self, fd: int, source: tuple[str, int, int], offset: int, length: int) -> bool:
        obj, start, size = source
        if size != length:
            return False
        try:
            with open(self.odb.path(obj), "rb", buffering=0) as f:
                return _copy_range(f.fileno(), start, fd, offset, length)
        except FileNotFoundError:
            return False

    def _copy_remote(self, fd: int, cl: ChunkList, chunk: str, offset: int, length: int) -> None:
        path = self.remote.path(chunk_key(chunk))
        try:
            with open(path, "rb", buffering=0) as f:
                if os.fstat(f.fileno()).st_size == length and _copy_range(
                        f.fileno(), 0, fd, offset, length):
                    return
        except FileNotFoundError:
            raise self._lacks(cl, chunk) from None
        raise self._mismatch(cl, chunk)

    def _mismatch(self, cl: ChunkList, chunk: str) -> ChunkedObjectError:
        return ChunkedObjectError(f"{self.remote.path(chunk_key(chunk))} (chunk {chunk} of object "
                                  f"{cl.digest}) does not match its name",
                                  hint="push the object again from a clone that has it")

    def _lacks(self, cl: ChunkList, chunk: str) -> ChunkedObjectError:
        return ChunkedObjectError(
            f"{self.remote.path(chunklist_key(cl.digest))} (object {cl.digest}) names chunk "
            f"{chunk}, which remote {self.remote.name!r} lacks",
            hint="push the object again from a clone that has it")

    def _fill_parallel(self, fd: int, cl: ChunkList) -> int:
        buf = bytearray(max((n for _c, n in cl.chunks), default=0))
        wanted = [(c, o, n) for c, o, n in cl.spans()
                  if not self._local_chunk(fd, c, o, memoryview(buf)[:n])]
        del buf

        def one(span: tuple[str, int, int]) -> None:
            chunk, offset, length = span
            self._remote_chunk(fd, cl, chunk, offset, length)

        for _span, error in run_jobs(min(self.jobs, CHUNK_JOBS), one, wanted):
            if error is not None:
                raise error
        return sum(n for _c, _o, n in wanted)

    def _local_chunk(self, fd: int, chunk: str, offset: int, view: memoryview) -> bool:
        """Copy a chunk an older version in the cache holds; False when there is none, or its
        bytes do not match (then it is downloaded)."""
        source = self.local.get(chunk)
        if source is None or source[2] != len(view):
            return False
        try:
            with open(self.odb.path(source[0]), "rb", buffering=0) as f:
                if not _copy_range(f.fileno(), source[1], fd, offset, len(view)):
                    return False
        except FileNotFoundError:
            return False
        return os.preadv(fd, [view], offset) == len(view) and hash_bytes(view).hex == chunk

    def _remote_chunk(self, fd: int, cl: ChunkList, chunk: str, offset: int, length: int) -> None:
        """Download one chunk to its place, checked against its name; ChunkedObjectError when
        the remote lacks it or holds other bytes."""
        key = chunk_key(chunk)
        try:
            data = self.remote.load(key)
        except FileNotFoundError:
            raise self._lacks(cl, chunk) from None
        if len(data) != length or hash_bytes(data).hex != chunk:
            raise self._mismatch(cl, chunk)
        _write_at(fd, memoryview(data), offset)


class _BadLocalChunk(Exception):
    """A chunk copied from an older version in the cache did not match its name."""


def _range_digest(fd: int, offset: int, length: int, view: memoryview) -> str | None:
    """The digest of bytes [offset, offset + length) of `fd`, read through `view` (which holds
    them all afterwards when it is big enough); None when the file is shorter."""
    if len(view) >= length:
        got = os.preadv(fd, [view[:length]], offset)
        return hash_bytes(view[:length]).hex if got == length else None
    h = new_hasher()
    done = 0
    while done < length:
        n = os.preadv(fd, [view[:min(len(view), length - done)]], offset + done)
        if n <= 0:
            return None
        h.update(view[:n])
        done += n
    return h.hexdigest()


def _store_local(remote: Remote, key: str, src: int, offset: int, length: int) -> None:
    """A blob of a local-directory remote from a byte range of an open file: copied in the
    kernel to a temp name beside its place, then renamed (invariant 8; a lost race with
    another pusher leaves the same bytes)."""
    final = remote.path(key)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = temp_name(final)
    with removed_on_failure(tmp):
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if not _copy_range(src, offset, out, 0, length):
                raise IntegrityError(f"{key}: the cache object ended early")
        finally:
            os.close(out)
        os.replace(tmp, final)


def _copy_range(src: int, start: int, dst: int, offset: int, length: int) -> bool:
    """Copy `length` bytes inside the kernel; False when the source holds fewer."""
    done = 0
    while done < length:
        n = os.copy_file_range(src, dst, length - done, start + done, offset + done)
        if n == 0:
            return False
        done += n
    return True


def _write_at(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


# --- checking and collecting -----------------------------------------------------------------

@dataclass
class ChunkedCheck:
    """What `verify_remote` found: objects checked, and the ones that cannot be rebuilt."""

    objects: int = 0
    corrupt: list[tuple[str, str]] = field(default_factory=list)  # (object digest, where / why)


def verify_remote(remote: Remote, jobs: int) -> ChunkedCheck:
    """Every chunk list of the remote (bounded, checksummed, naming its object), every chunk
    it names (present, hashing to its name), and the object they rebuild (hashing to the
    object's name), read in streaming order: for `fsck --cloud`."""
    check = ChunkedCheck()
    objects = sorted(chunked_objects(remote))
    check.objects = len(objects)
    for digest, error in run_jobs(min(jobs, CHUNK_JOBS), lambda d: _verify_one(remote, d), objects):
        if error is not None:
            check.corrupt.append((digest, getattr(error, "message", str(error))))
    check.corrupt.sort()
    return check


def _verify_one(remote: Remote, digest: str) -> None:
    cl = read_list(remote, digest)
    whole = new_hasher()
    for chunk, _offset, length in cl.spans():
        try:
            data = remote.load(chunk_key(chunk))
        except FileNotFoundError:
            raise ChunkedObjectError(f"{remote.path(chunklist_key(digest))} names chunk {chunk}, "
                                     "which the remote lacks") from None
        if len(data) != length or hash_bytes(data).hex != chunk:
            raise ChunkedObjectError(f"{remote.path(chunk_key(chunk))} (a chunk of object "
                                     f"{digest}) does not match its name")
        whole.update(data)
    if whole.hexdigest() != digest:
        raise ChunkedObjectError(f"{remote.path(chunklist_key(digest))}: its chunks do not "
                                 "rebuild the object")


def unmake(remote: Remote, digest: str) -> None:
    """Take a chunked object that cannot be rebuilt off the remote: its chunks that do not
    match their names, then its chunk list (a chunk is named by its bytes: a good copy pushed
    later would otherwise be taken for already there)."""
    try:
        cl = read_list(remote, digest)
    except FileNotFoundError:
        return
    except IntegrityError:
        remote.delete(chunklist_key(digest))
        return
    for chunk, _offset, length in cl.spans():
        try:
            data = remote.load(chunk_key(chunk))
        except FileNotFoundError:
            continue
        if len(data) != length or hash_bytes(data).hex != chunk:
            remote.delete(chunk_key(chunk))
    remote.delete(chunklist_key(digest))


@dataclass(frozen=True)
class ChunkedGcPlan:
    lists: list[str]  # chunk lists of objects nothing keeps
    chunks: list[str]  # chunks no kept chunk list names


def plan_gc(remote: Remote, keep: set[str]) -> ChunkedGcPlan:
    """What `gc --cloud` may delete of chunked objects: the chunk lists of unkept objects, and
    the chunks only they name. A chunk list that cannot be read keeps every chunk (its object
    may be kept: nothing it might name is deleted)."""
    lists = chunked_objects(remote)
    if not lists:
        return ChunkedGcPlan([], [])
    used: set[str] = set()
    for digest in sorted(lists & keep):
        try:
            used.update(c for c, _n in read_list(remote, digest).chunks)
        except (IntegrityError, FileNotFoundError):
            return ChunkedGcPlan(sorted(lists - keep), [])
    chunks = {found[1] for key in remote.list("chunks")
              if (found := chunked_of(key)) is not None and found[0] == "chunks"}
    return ChunkedGcPlan(sorted(lists - keep), sorted(chunks - used))


def collect(remote: Remote, plan: ChunkedGcPlan, jobs: int) -> None:
    """Delete what `plan_gc` found: the chunk lists first (an object disappears whole), then
    the chunks."""
    list(run_jobs(jobs, lambda d: remote.delete(chunklist_key(d)), plan.lists))
    list(run_jobs(jobs, lambda c: remote.delete(chunk_key(c)), plan.chunks))
