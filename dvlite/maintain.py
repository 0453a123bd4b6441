"""Cache upkeep: gc (what no kept revision needs) and fsck (re-hash everything)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dvlite.errors import IntegrityError
from dvlite.manifest import Manifest
from dvlite.repo import Repo
from dvlite.tracked import Tracked, load_tracked, outputs_at
from dvlite.workspace import JOBS


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

    def need(self, digest: str, path: str) -> None:
        self.users.setdefault(digest, set()).add(path)


def used_objects(repo: Repo, outputs: list[tuple[str, Tracked]]) -> UsedObjects:
    used = UsedObjects()
    seen_manifests: dict[str, Manifest | None] = {}
    for _where, t in outputs:
        digest = t.pointer.digest.hex
        used.need(digest, t.rel)
        if t.pointer.kind != "dir":
            continue
        if digest not in seen_manifests:
            try:
                seen_manifests[digest] = Manifest.from_bytes(repo.odb.read_verified(digest), t.pointer_rel)
            except IntegrityError:
                seen_manifests[digest] = None
                used.unreadable.append((t.rel, digest))
        manifest = seen_manifests[digest]
        if manifest is not None:
            for e in manifest.entries:
                used.need(e.digest, f"{t.rel}/{e.path}")
    return used


@dataclass(frozen=True)
class GcResult:
    unused: list[tuple[str, int]]  # (digest, size)
    removed: bool

    @property
    def total(self) -> int:
        return sum(size for _, size in self.unused)


def gc(repo: Repo, revs: Revisions, force: bool) -> GcResult:
    used = used_objects(repo, kept_outputs(repo, revs))
    if used.unreadable:
        path, digest = used.unreadable[0]
        raise IntegrityError(
            f"cannot read the manifest of {path} ({digest}); gc would not know what it keeps",
            hint="run `dvlite fsck` and fetch or re-add the data first",
        )
    unused = sorted(
        (digest, repo.odb.size(digest)) for digest in repo.odb.iter_objects()
        if digest not in used.users
    )
    if force:
        repo.odb.remove_many(d for d, _ in unused)
        repo.odb.clean_temp_files()
    return GcResult(unused, force)


@dataclass(frozen=True)
class FsckResult:
    checked: int
    corrupt: list[tuple[str, list[str]]]  # (digest, paths that use it)
    missing: list[tuple[str, list[str]]]
    repaired: bool

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing


def fsck(repo: Repo, repair: bool) -> FsckResult:
    objects = list(repo.odb.iter_objects())
    with ThreadPoolExecutor(JOBS) as pool:
        verdicts = list(pool.map(repo.odb.verify, objects))
    corrupt = [d for d, ok in zip(objects, verdicts) if not ok]
    if repair:
        for digest in corrupt:
            repo.odb.quarantine(digest, f"{repo.cache_dir}/corrupt")
    used = used_objects(repo, kept_outputs(repo, Revisions()))
    present = set(objects) - set(corrupt) if repair else set(objects)
    missing = sorted(d for d in used.users if d not in present)
    return FsckResult(
        len(objects),
        [(d, sorted(used.users.get(d, ()))) for d in corrupt],
        [(d, sorted(used.users[d])) for d in missing if d not in corrupt],
        repair,
    )
