"""`fsck --cloud`: verify what a remote holds and, with `repair`, mend it from the local cache.

Checked: every pack index (as the remote holds it, not the locally kept copy), every pack
(its bytes hash to its name, or each object is checked to find the bad ones), and every loose
object (streamed and hashed). Repair never leaves the remote worse than it found it: a
replacement pack and its index are complete before the damaged index, then the damaged pack,
are deleted (invariant 15); a damaged loose object is replaced by a verified local copy or,
when there is none, removed (a corrupt object is no better than a missing one, and once gone
`status --cloud` and `push` see the truth). Last, what the workspace needs and the remote
still lacks is pushed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dvlite.digest import hash_bytes
from dvlite.errors import DvliteError, FormatError, IntegrityError
from dvlite.formats.packs import DamagedIndexError, salvage_digests
from dvlite.digest import new_hasher
from dvlite.remotes import chunked
from dvlite.remotes import inventory as packstore
from dvlite.remotes.backend import Remote
from dvlite.remotes.config import choose
from dvlite.remotes.errors import run_jobs
from dvlite.remotes.transfer import push
from dvlite.repo import Repo
from dvlite.storage.layout import object_key, pack_key


@dataclass
class CloudFsckResult:
    remote: str
    packs: int = 0
    objects: int = 0
    damaged_packs: list[tuple[str, str]] = field(default_factory=list)  # (pack, why)
    corrupt: list[tuple[str, str]] = field(default_factory=list)  # (digest, where)
    repaired: bool = False
    rewritten_packs: list[str] = field(default_factory=list)  # damaged packs replaced
    replaced: list[str] = field(default_factory=list)  # loose objects put back from the cache
    lost: list[str] = field(default_factory=list)  # damaged and not in the local cache either
    pushed: int = 0  # objects the workspace needs, uploaded after the repair

    @property
    def ok(self) -> bool:
        return not self.damaged_packs and not self.corrupt


@dataclass
class _PackCheck:
    pack: str
    why: str | None = None  # None: sound
    objects: int = 0
    good: dict[str, bytes] = field(default_factory=dict)  # verified objects of a damaged pack
    bad: set[str] = field(default_factory=set)  # objects it should hold but cannot give


def _check_pack(remote: Remote, pack: str) -> _PackCheck:
    check = _PackCheck(pack)
    try:
        index = packstore.read_remote_index(remote, pack)
    except (DamagedIndexError, FormatError) as exc:
        check.why = exc.message
        try:
            raw = remote.read_small(pack_key(pack, "idx"), packstore.MAX_INDEX)
        except (DvliteError, FileNotFoundError):
            raw = b""
        check.bad = salvage_digests(raw)
        return check
    path = remote.path(pack_key(pack, "pack"))
    try:
        data = remote.load(pack_key(pack, "pack"))
    except FileNotFoundError:
        check.why, check.bad = f"{path} is missing", set(index.entries)
        return check
    check.objects = len(index.entries)
    if len(data) == index.pack_size and hash_bytes(data).hex == pack:
        return check
    for digest, (offset, length) in index.entries.items():
        body = data[offset:offset + length]
        if len(body) == length and hash_bytes(body).hex == digest:
            check.good[digest] = body
        else:
            check.bad.add(digest)
    check.why = (f"{path} holds {len(data)} bytes, its index says {index.pack_size}"
                 if len(data) != index.pack_size else f"{path} does not hash to its name")
    return check


def _local_copy(repo: Repo, digest: str) -> bytes | None:
    try:
        return repo.odb.read_verified(digest)
    except IntegrityError:
        return None


def _rewrite_pack(repo: Repo, remote: Remote, check: _PackCheck, result: CloudFsckResult) -> None:
    objects = dict(check.good)
    for digest in sorted(check.bad):
        data = _local_copy(repo, digest)
        if data is None:
            result.lost.append(digest)
        else:
            objects[digest] = data
    new = None
    if objects:  # the replacement is complete before the damaged pack goes
        new = packstore.write_pack(remote, sorted(objects.items()), repo.index_dir).pack
    if new != check.pack:  # the same objects make the same pack: it was rewritten in place
        packstore.remove_pack(remote, check.pack)
    result.rewritten_packs.append(check.pack)


def _check_loose(remote: Remote, jobs: int, result: CloudFsckResult) -> list[str]:
    loose = sorted(packstore.loose_sizes(remote))
    result.objects += len(loose)
    bad: list[str] = []

    def verify(digest: str) -> None:
        if _hash_remote(remote, object_key(digest)) != digest:
            bad.append(digest)

    for digest, error in run_jobs(jobs, verify, loose):
        if error is not None:
            bad.append(digest)
    for digest in sorted(bad):
        result.corrupt.append((digest, remote.path(object_key(digest))))
    return sorted(bad)


def _hash_remote(remote: Remote, key: str) -> str:
    """The digest of what the remote holds under `key`, streamed."""
    h = new_hasher()
    with remote.open(key) as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def _mend_loose(repo: Repo, remote: Remote, digest: str, result: CloudFsckResult) -> None:
    if repo.odb.is_loose(digest) and repo.odb.verify(digest):
        remote.replace(object_key(digest), repo.odb.path(digest))
        result.replaced.append(digest)
        return
    data = _local_copy(repo, digest)  # packed locally: it goes up in a pack, then the bad one goes
    if data is not None:
        packstore.write_pack(remote, [(digest, data)], repo.index_dir)
        result.replaced.append(digest)
    else:
        result.lost.append(digest)
    remote.delete(object_key(digest))


def cloud_fsck(repo: Repo, remote_name: str | None, repair: bool, jobs: int | None = None
               ) -> CloudFsckResult:
    remote = Remote(choose(repo.config, remote_name))
    if repair:
        remote.require_writable()
    remote.read_layout()
    jobs = jobs or remote.default_jobs
    result = CloudFsckResult(remote.name, repaired=repair)
    packs = sorted(p for p, exts in packstore.pack_files(remote).items() if "idx" in exts)
    result.packs = len(packs)
    with ThreadPoolExecutor(min(jobs, packstore.PACK_JOBS)) as pool:  # a whole pack each in memory
        checks = list(pool.map(lambda p: _check_pack(remote, p), packs))
    for check in checks:
        result.objects += check.objects or len(check.bad)
        if check.why is not None:
            result.damaged_packs.append((check.pack, check.why))
            result.corrupt += [(d, f"{remote.path(pack_key(check.pack, 'pack'))} (object {d})")
                               for d in sorted(check.bad)]
    bad_loose = _check_loose(remote, jobs, result)
    split = chunked.verify_remote(remote, jobs)
    result.objects += split.objects
    result.corrupt += split.corrupt
    if repair:
        for digest, _why in split.corrupt:  # gone whole; the push below sends it again
            chunked.unmake(remote, digest)
        for check in checks:
            if check.why is not None:
                _rewrite_pack(repo, remote, check, result)
        for digest in bad_loose:
            _mend_loose(repo, remote, digest, result)
        result.pushed = _push_workspace(repo, remote.name, jobs)
    return result


def _push_workspace(repo: Repo, remote_name: str, jobs: int) -> int:
    return push(repo, [], remote_name, jobs).uploaded

