"""`gc`: delete the cache objects that no kept revision of any project using the cache needs."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from dvlite.data.reach import Revisions, kept_outputs, used_objects
from dvlite.errors import BadInputError, DvliteError, IntegrityError, NotARepoError
from dvlite.progress import SILENT, Progress
from dvlite.repo import Repo
from dvlite.storage import projects
from dvlite.storage.layout import pack_key

SHARED_GRACE_S = 3600  # on a shared cache, objects younger than this may be another project's add


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
    try:
        other = Repo.find(path)
    except NotARepoError:
        raise BadInputError(f"{path} is not a dvlite project",
                            hint="`--projects` names the other projects that use this cache") from None
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
    for root in projects.recorded(repo.cache_dir, repo.root, os.path.join(repo.dvlite_dir, "tmp")):
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


def gc(repo: Repo, revs: Revisions, force: bool, project_paths: list[str] | None = None,
       progress: Progress = SILENT) -> GcResult:
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
        progress.set_size(sum(size for _, size in unused))
        repo.odb.remove_many(_reported(unused, progress))
        if not others:  # on a shared cache, another project may be writing these right now
            repo.odb.clean_temp_files()
            for pack in orphans:
                repo.odb.delete(pack_key(pack, "pack"))
    return GcResult(unused, force, [o.root for o in others], orphans)


def _reported(objects: list[tuple[str, int]], progress: Progress):
    for digest, size in objects:
        yield digest
        progress.relative_update(size)


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
