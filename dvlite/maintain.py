"""Cache upkeep: gc (what no kept revision of any project needs) and fsck (re-hash everything)."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dvlite import projects
from dvlite.errors import BadInputError, DvliteError, IntegrityError, UnsafePathError
from dvlite.manifest import Manifest
from dvlite.repo import Repo
from dvlite.tracked import Tracked, load_tracked, load_tracked_leniently, outputs_at
from dvlite.workspace import JOBS

SHARED_GRACE_S = 3600  # on a shared cache, objects younger than this may be another project's add


@dataclass(frozen=True)
class Revisions:
    all_branches: bool = False
    all_tags: bool = False
    all_commits: bool = False

    @property
    def any(self) -> bool:
        return self.all_branches or self.all_tags or self.all_commits


def kept_outputs(repo: Repo, revs: Revisions) -> list[tuple[str, Tracked]]:
    """(where, output) for the workspace and every chosen revision."""
    out = [("workspace", t) for t in load_tracked(repo)]
    if revs.any:
        scm = repo.require_scm()
        for sha in sorted(scm.revisions(revs.all_branches, revs.all_tags, revs.all_commits)):
            out += [(sha[:10], t) for t in outputs_at(scm, sha, sha[:10])]
    return out


@dataclass
class UsedObjects:
    users: dict[str, set[str]] = field(default_factory=dict)  # digest -> paths that need it
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, manifest digest)
    unsafe: list[UnsafePathError] = field(default_factory=list)  # manifests with unsafe entries

    def need(self, digest: str, path: str) -> None:
        self.users.setdefault(digest, set()).add(path)


def used_objects(repo: Repo, outputs: list[tuple[str, Tracked]], into: UsedObjects | None = None
                 ) -> UsedObjects:
    used = into or UsedObjects()
    seen_manifests: dict[str, Manifest | None] = {}
    for _where, t in outputs:
        digest = t.pointer.digest.hex
        used.need(digest, t.rel)
        if t.pointer.kind != "dir":
            continue
        if digest not in seen_manifests:
            try:
                seen_manifests[digest] = Manifest.from_bytes(repo.odb.read_verified(digest), t.pointer_rel)
            except UnsafePathError as exc:
                seen_manifests[digest] = None
                used.unsafe.append(exc)
                used.unreadable.append((t.rel, digest))
            except IntegrityError:
                seen_manifests[digest] = None
                used.unreadable.append((t.rel, digest))
        manifest = seen_manifests[digest]
        if manifest is not None:
            for e in manifest.entries:
                used.need(e.digest, f"{t.rel}/{e.path}")
    return used


# --- gc ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GcResult:
    unused: list[tuple[str, int]]  # (digest, size)
    removed: bool
    projects: list[str] = field(default_factory=list)  # other projects whose data was kept
    orphan_packs: list[str] = field(default_factory=list)  # packs without an index

    @property
    def total(self) -> int:
        return sum(size for _, size in self.unused)


def _open_project(path: str, repo: Repo) -> Repo:
    """Another project that uses `repo`'s cache; BadInputError when it is not one."""
    other = Repo.find(path)
    if os.path.realpath(other.cache_dir) != os.path.realpath(repo.cache_dir):
        raise BadInputError(f"{other.root} does not use the cache {repo.cache_dir}")
    other.check_config()
    return other


def _others(repo: Repo, given: list[str] | None) -> list[Repo]:
    """The other projects that use this cache: those named, else those the cache recorded.
    A recorded project that cannot be opened stops gc: its data would look unused."""
    if given is not None:
        chosen = [o for o in (_open_project(p, repo) for p in given) if o.root != repo.root]
        projects.record_only(repo.cache_dir, [repo.root] + [r.root for r in chosen])
        return chosen
    found, gone = [], []
    for root in projects.recorded(repo.cache_dir, repo.root):
        try:
            found.append(_open_project(root, repo))
        except DvliteError:
            gone.append(root)
    if gone:
        raise BadInputError(
            f"the cache {repo.cache_dir} is shared, and project {gone[0]} that recorded itself "
            "there cannot be opened; gc would delete its data",
            hint="name every project that still uses the cache: "
                 "`dvlite gc --projects PATH... [--force]` (the record is then rewritten)")
    return found


def gc(repo: Repo, revs: Revisions, force: bool, project_paths: list[str] | None = None) -> GcResult:
    others = _others(repo, project_paths)
    used = used_objects(repo, kept_outputs(repo, revs))
    for other in others:  # their pointers, read the same way; their manifests are in this cache
        used_objects(repo, kept_outputs(other, revs), into=used)
    if used.unsafe:
        raise used.unsafe[0]
    if used.unreadable:
        path, digest = used.unreadable[0]
        raise IntegrityError(
            f"cannot read the manifest of {path} ({digest}); gc would not know what it keeps",
            hint="run `dvlite fsck` and fetch or re-add the data first",
        )
    young = _too_young(repo) if others else set()
    unused = sorted(
        (digest, repo.odb.size(digest)) for digest in repo.odb.iter_objects()
        if digest not in used.users and digest not in young
    )
    orphans = repo.odb.orphan_packs()
    if force:
        repo.odb.remove_many(d for d, _ in unused)
        if not others:  # on a shared cache, another project may be writing these right now
            repo.odb.clean_temp_files()
            for pack in orphans:
                repo.odb.remove_orphan_pack(pack)
    return GcResult(unused, force, [o.root for o in others], orphans)


def _too_young(repo: Repo) -> set[str]:
    """Objects another project sharing the cache may have just added (no pointer names them
    yet): loose objects and packs changed within SHARED_GRACE_S."""
    cutoff = time.time() - SHARED_GRACE_S
    young = set()
    for digest in repo.odb.iter_objects():
        when = repo.odb.mtime(digest)
        if when is not None and when > cutoff:
            young.add(digest)
    return young


# --- fsck --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FsckResult:
    checked: int
    corrupt: list[tuple[str, list[str]]]  # (digest, paths that use it)
    missing: list[tuple[str, list[str]]]
    repaired: bool
    damaged_packs: list[tuple[str, str]] = field(default_factory=list)  # (pack, why)
    problems: list[str] = field(default_factory=list)  # unreadable or unsafe pointers/manifests

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing and not self.damaged_packs and not self.problems


def fsck(repo: Repo, repair: bool) -> FsckResult:
    objects = list(repo.odb.iter_objects())
    damaged = sorted(repo.odb.damaged_packs().items())
    with ThreadPoolExecutor(JOBS) as pool:
        verdicts = list(pool.map(repo.odb.verify, objects))
    corrupt = [d for d, ok in zip(objects, verdicts) if not ok]
    corrupt_dir = f"{repo.cache_dir}/corrupt"
    if repair:
        for pack, _why in damaged:  # its objects become missing: pull or add brings them back
            repo.odb.quarantine_pack(pack, corrupt_dir)
        for digest in corrupt:
            repo.odb.quarantine(digest, corrupt_dir)
    tracked, bad = load_tracked_leniently(repo)
    used = used_objects(repo, [("workspace", t) for t in tracked])
    problems = [e.message for e in bad] + [e.message for e in used.unsafe]
    present = set(objects) - set(corrupt) if repair else set(objects)
    if repair and damaged:
        present = set(repo.odb.iter_objects())
    missing = sorted(d for d in used.users if d not in present and d not in corrupt)
    return FsckResult(
        len(objects),
        [(d, sorted(used.users.get(d, ()))) for d in corrupt],
        [(d, sorted(used.users[d])) for d in missing],
        repair,
        damaged,
        problems,
    )

