"""Which objects some revisions need: the pointers of the workspace and of chosen commits (and of
every experiment, unless told otherwise), and what their manifests list. Below both `gc` (keep
these) and the transfers (send these)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dvlite import scm as scm_mod
from dvlite.errors import IntegrityError, UnsafePathError
from dvlite.formats.manifest import Manifest
from dvlite.outputs import Tracked, load_tracked, outputs_at
from dvlite.repo import Repo

EXPERIMENTS = "refs/exps/"


@dataclass(frozen=True)
class Revisions:
    all_branches: bool = False
    all_tags: bool = False
    all_commits: bool = False
    experiments: bool = True  # the commits of `refs/exps/` (gc keeps experiments' data)

    @property
    def any(self) -> bool:
        return self.all_branches or self.all_tags or self.all_commits


def kept_outputs(repo: Repo, revs: Revisions) -> list[tuple[str, Tracked]]:
    """(where, output) for the workspace and every chosen revision."""
    out = [("workspace", t) for t in load_tracked(repo)]
    shas: set[str] = set()
    if revs.any:
        shas |= repo.require_scm().revisions(revs.all_branches, revs.all_tags, revs.all_commits)
    if revs.experiments and repo.scm is not None:
        shas |= {sha for _ref, sha, _when, _subject in scm_mod.refs_under(repo.scm.worktree, EXPERIMENTS)}
    for sha in sorted(shas):
        out += [(sha[:10], t) for t in outputs_at(repo.require_scm(), sha, sha[:10], repo)]
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
                seen_manifests[digest] = repo.odb.manifest(digest, t.pointer_rel)
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
