"""Reading tracked data across revisions: diff and ls, from pointers in git history."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dvlite.formats.manifest import Change, Entry, diff
from dvlite.outputs import Tracked, load_tracked, outputs_at, to_rel
from dvlite.repo import Repo
from dvlite.workspace.scan import FileStat, is_linked_object, scan_tree, stat_single


def tracked_at(repo: Repo, rev: str | None) -> list[Tracked]:
    """Tracked outputs at `rev` (from git), or in the workspace when rev is None."""
    if rev is None:
        return load_tracked(repo)
    scm = repo.require_scm()
    return outputs_at(scm, rev, rev, repo)


def _flatten(repo: Repo, tracked: list[Tracked], unreadable: list[str]) -> dict[str, Entry]:
    """Every file the outputs name, keyed by repo-relative path."""
    out: dict[str, Entry] = {}
    for t in tracked:
        if t.pointer.kind == "file":
            out[t.rel] = Entry(t.rel, t.pointer.digest.hex, t.pointer.size, False)
            continue
        if not repo.odb.contains(t.pointer.digest.hex):  # not fetched: said, not compared
            unreadable.append(t.rel)
            continue
        manifest = repo.odb.manifest(t.pointer.digest.hex, t.pointer_rel)  # corrupt: exit 4
        for e in manifest.entries:
            out[f"{t.rel}/{e.path}"] = Entry(f"{t.rel}/{e.path}", e.digest, e.size, e.executable)
    return out


def _workspace_files(repo: Repo, tracked: list[Tracked]) -> dict[str, Entry]:
    """What is on disk at the tracked paths now (hashing only what the stat cache lacks)."""
    hasher = repo.hasher()
    files: list[FileStat] = []
    in_dirs: set[str] = set()  # executable bits count only inside directories, as in manifests
    for t in tracked:
        absolute = repo.abs(t.rel)
        link = repo.guard.symlink_in(t.rel)
        if link is not None and (link != t.rel or not is_linked_object(absolute, repo.odb.objects_dir)):
            continue  # behind a symlink: not the tracked data (its files read as deleted)
        if os.path.isdir(absolute):
            found = [FileStat(f"{t.rel}/{f.rel}", f.path, f.st)
                     for f in scan_tree(absolute, repo.odb.objects_dir, links=[], ignores=repo.ignores)]
            in_dirs.update(f.rel for f in found)
            files += found
        elif os.path.isfile(absolute):
            files.append(FileStat(t.rel, absolute, stat_single(absolute, repo.odb.objects_dir)))
    digests = hasher.digests(files, store=False)
    repo.state.save()
    return {
        f.rel: Entry(f.rel, digests[f.rel], f.st.st_size, f.executable and f.rel in in_dirs)
        for f in files
    }


@dataclass(frozen=True)
class DiffResult:
    a: str
    b: str
    changes: list[Change]
    unreadable: list[str]  # tracked directories whose manifest is not in the cache (not fetched)


def _linked_at(repo: Repo, rev: str | None, unreadable: list[str]) -> list[Tracked]:
    """What is tracked at `rev`, with what DVC's files track there (a commit from before the
    switch) brought in from the DVC cache; what it lacks is unreadable."""
    from dvlite.dvc.legacy import bring_in, unlinked

    legacy = unlinked(repo, rev)
    if legacy:
        unreadable += [rel for rel, _ in bring_in(repo, legacy, rev).missing]
    return tracked_at(repo, rev)


def _under(rel: str | None, targets: list[str]) -> bool:
    return rel is not None and any(rel == t or rel.startswith(t + "/") for t in targets)


def diff_revs(repo: Repo, a_rev: str | None, b_rev: str | None,
              targets: list[str] | None = None) -> DiffResult:
    """Changes of tracked files from `a_rev` (default HEAD) to `b_rev` (None: the workspace),
    limited to `targets` (repository-relative paths) when given."""
    a_label = a_rev or "HEAD"
    unreadable: list[str] = []
    a_files = _flatten(repo, _linked_at(repo, a_label, unreadable), unreadable)
    if b_rev is None:
        b_files = _workspace_files(repo, _linked_at(repo, None, unreadable))
    else:
        b_files = _flatten(repo, _linked_at(repo, b_rev, unreadable), unreadable)
    changes = diff(a_files, b_files)
    if targets:
        changes = [c for c in changes if _under(c.path, targets) or _under(c.old_path, targets)]
    return DiffResult(a_label, b_rev or "workspace", changes, sorted(set(unreadable)))


@dataclass(frozen=True)
class ListedPath:
    path: str
    kind: str  # file | dir | entry (a file inside a tracked directory)
    size: int
    files: int
    digest: str
    in_cache: bool


def ls(repo: Repo, path: str | None, rev: str | None, recursive: bool) -> list[ListedPath]:
    tracked = tracked_at(repo, rev)
    prefix = to_rel(repo, path) if path else ""
    present = repo.odb.all_objects()
    out: list[ListedPath] = []
    for t in tracked:
        inside = not prefix or t.rel == prefix or t.rel.startswith(prefix + "/")
        wants_entries = recursive or (prefix and prefix.startswith(t.rel + "/")) or prefix == t.rel
        if not inside and not (prefix and prefix.startswith(t.rel + "/")):
            continue
        if inside:
            out.append(ListedPath(t.rel, t.pointer.kind, t.pointer.size, t.pointer.files,
                                  t.pointer.digest.hex, t.pointer.digest.hex in present))
        if t.pointer.kind == "dir" and wants_entries and t.pointer.digest.hex in present:
            manifest = repo.odb.manifest(t.pointer.digest.hex, t.pointer_rel)  # corrupt: exit 4
            for e in manifest.entries:
                full = f"{t.rel}/{e.path}"
                if prefix and prefix != t.rel and not (full == prefix or full.startswith(prefix + "/")):
                    continue
                out.append(ListedPath(full, "entry", e.size, 1, e.digest, e.digest in present))
    return out
