"""`status`: what changed in the workspace since `add`, per tracked output."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dvlite.errors import IntegrityError, UnsafePathError
from dvlite.formats.manifest import Manifest
from dvlite.outputs import Tracked, load_tracked, select, untracked
from dvlite.progress import SILENT, Progress
from dvlite.repo import Repo
from dvlite.workspace.hasher import Hasher
from dvlite.workspace.scan import (FileStat, is_linked_object, scan_tree, stat_single,
                                   tree_fingerprint)


class Flag:
    """What `status` says about an output (the words the CLI and `--json` show)."""

    MODIFIED = "modified"
    DELETED = "deleted"
    NOT_IN_CACHE = "not in cache"
    CORRUPT = "corrupt in cache"
    SYMLINK = "symlink"  # a symlink in the way: what is behind it is not the tracked data
    NEW = "new"  # git does not know the pointer yet


class Change:
    """How one file inside a tracked directory differs from its manifest."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    SYMLINK = "symlink"  # a link dvlite does not follow
    KINDS = (ADDED, MODIFIED, DELETED, SYMLINK)


@dataclass(frozen=True)
class FileChange:
    kind: str  # a Change
    path: str


@dataclass(frozen=True)
class PathStatus:
    path: str
    kind: str
    flags: tuple[str, ...]  # Flag values
    changes: tuple[FileChange, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.flags


def _dir_changes(manifest: Manifest, files: list[FileStat], hasher: Hasher) -> list[FileChange]:
    expected = manifest.by_path()
    on_disk = {f.rel: f for f in files}
    changes = [FileChange(Change.DELETED, p) for p in expected if p not in on_disk]
    changes += [FileChange(Change.ADDED, p) for p in on_disk if p not in expected]
    suspects = []
    for rel, f in on_disk.items():
        e = expected.get(rel)
        if e is None:
            continue
        if e.size != f.st.st_size or e.executable != f.executable:
            changes.append(FileChange(Change.MODIFIED, rel))
        else:
            suspects.append(f)
    digests = hasher.digests(suspects, store=False)
    changes += [FileChange(Change.MODIFIED, f.rel) for f in suspects if digests[f.rel] != expected[f.rel].digest]
    return sorted(changes, key=lambda c: c.path)


def _behind_symlink(repo: Repo, t: Tracked) -> bool:
    """Whether the output's path goes through a symlink dvlite does not look behind: any on the
    way to it, or at it (except a file checked out as a link to its cache object)."""
    link = repo.guard.symlink_in(t.rel)
    if link is None:
        return False
    if link != t.rel or t.pointer.kind == "dir":
        return True
    return not is_linked_object(repo.abs(t.rel), repo.odb.objects_dir)  # cache.type = symlink


def status_of(repo: Repo, t: Tracked, hasher: Hasher, cache_stamp: str) -> PathStatus:
    flags: list[str] = []
    changes: list[FileChange] = []
    absolute = repo.abs(t.rel)
    digest = t.pointer.digest.hex
    if _behind_symlink(repo, t):  # what is behind it is not the tracked data: never listed
        return PathStatus(t.rel, t.pointer.kind, (Flag.MODIFIED, Flag.SYMLINK))
    if t.pointer.kind == "file":
        if not repo.odb.contains(digest):
            flags.append(Flag.NOT_IN_CACHE)
        if not os.path.lexists(absolute):
            flags.append(Flag.DELETED)
        elif not os.path.isfile(absolute):
            flags.append(Flag.MODIFIED)
        else:
            st = stat_single(absolute, repo.odb.objects_dir)
            if st.st_size != t.pointer.size or hasher.digests(
                [FileStat(t.rel, absolute, st)], store=False
            )[t.rel] != digest:
                flags.append(Flag.MODIFIED)
        return PathStatus(t.rel, t.pointer.kind, tuple(flags))
    if not os.path.lexists(absolute):
        flags.append(Flag.DELETED)
    if not repo.odb.contains(digest):
        flags.append(Flag.NOT_IN_CACHE)
        if os.path.isdir(absolute):
            flags.append(Flag.MODIFIED)  # nothing to compare against; say so rather than guess
        return PathStatus(t.rel, "dir", tuple(flags))
    is_dir = os.path.isdir(absolute) and not os.path.islink(absolute)
    stamp = tree_fingerprint(absolute, repo.odb.objects_dir, cache_stamp, repo.ignores) if is_dir else None
    if stamp is not None and repo.state.tree_matches(t.rel, digest, stamp):
        return PathStatus(t.rel, "dir", ())  # every file's stat is as when last seen clean
    links: list[str] = []
    files = scan_tree(absolute, repo.odb.objects_dir, links, ignores=repo.ignores) if is_dir else None
    try:
        manifest = repo.odb.manifest(digest, t.pointer_rel)
    except UnsafePathError:
        raise
    except IntegrityError:
        return PathStatus(t.rel, "dir", tuple(flags) + (Flag.CORRUPT,))
    if repo.odb.missing(e.digest for e in manifest.entries):
        flags.append(Flag.NOT_IN_CACHE)
    if files is not None:
        changes = _dir_changes(manifest, files, hasher) + [FileChange(Change.SYMLINK, r) for r in links]
        if changes:
            flags.append(Flag.MODIFIED)
        elif not flags and stamp is not None and not links:
            # the stamp taken before the comparison: if the tree changed since, its next
            # stamp differs (mtimes only move on), so this one never hides a change
            repo.state.put_tree(t.rel, digest, stamp)
    elif "deleted" not in flags:
        flags.append(Flag.MODIFIED)
    return PathStatus(t.rel, "dir", tuple(flags), tuple(changes))


def status(repo: Repo, targets: list[str], progress: Progress = SILENT) -> list[PathStatus]:
    tracked = load_tracked(repo)
    chosen = [t for t, _ in select(repo, tracked, targets)]
    hasher = repo.hasher(progress)
    cache_stamp = repo.odb.stamp()
    results = [status_of(repo, t, hasher, cache_stamp) for t in chosen]
    if repo.scm is not None:
        new = untracked(repo, sorted({t.pointer_rel for t in chosen}))
        results = [
            PathStatus(r.path, r.kind, r.flags + (Flag.NEW,), r.changes)
            if t.pointer_rel in new else r
            for r, t in zip(results, chosen)
        ]
    repo.state.save()
    return results
