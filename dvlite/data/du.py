"""`du`: sizes of tracked data, in the workspace's pointers or at a git revision, from the
pointers and manifests alone (nothing is checked out; a manifest the cache lacks is fetched
from the default remote when one is set)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from dvlite.data.history import tracked_at
from dvlite.errors import DvliteError, IntegrityError
from dvlite.formats.manifest import Manifest
from dvlite.outputs import Tracked, to_rel
from dvlite.repo import Repo


@dataclass(frozen=True)
class DuEntry:
    path: str  # repo-relative
    kind: str  # file | dir (a tracked path) | subdir (a directory inside a tracked directory)
    size: int  # bytes
    files: int


@dataclass
class DuResult:
    rev: str | None  # None: the workspace's pointers
    path: str  # the path asked about, repo-relative ("" for the whole repository)
    total: int = 0
    files: int = 0
    entries: list[DuEntry] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # directories whose manifest is not at hand


def _manifest(repo: Repo, t: Tracked) -> Manifest | None:
    digest = t.pointer.digest.hex
    if not repo.odb.contains(digest):
        from dvlite.remotes.transfer import fetch_missing

        try:
            fetch_missing(repo, {digest: 0})
        except DvliteError:
            return None  # no remote, or not on it: the pointer still gives the total
        if not repo.odb.contains(digest):
            return None
    try:
        return repo.odb.manifest(digest, t.pointer_rel)
    except IntegrityError:
        return None


def _subdirs(top: str, entries, inside: str, depth: int) -> list[DuEntry]:
    """Sizes per directory below `inside` (a path within the manifest, "" for its root), down
    to `depth` levels, named under `top`."""
    sizes: dict[str, list[int]] = {}
    prefix = inside + "/" if inside else ""
    for e in entries:
        if not e.path.startswith(prefix):
            continue
        parts = e.path[len(prefix):].split("/")[:-1]
        for level in range(1, min(depth, len(parts)) + 1):
            acc = sizes.setdefault("/".join(parts[:level]), [0, 0])
            acc[0] += e.size
            acc[1] += 1
    base = posixpath.join(top, inside) if inside else top
    return [DuEntry(f"{base}/{d}", "subdir", s, n) for d, (s, n) in sorted(sizes.items())]


def du(repo: Repo, path: str | None = None, rev: str | None = None, depth: int = 0) -> DuResult:
    """Total size of the tracked data under `path`, per tracked path, and (`depth` > 0) per
    directory inside tracked directories, that many levels down from what is listed."""
    prefix = to_rel(repo, path) if path else ""
    result = DuResult(rev, prefix)
    for t in tracked_at(repo, rev):
        if not prefix or t.rel == prefix or t.rel.startswith(prefix + "/"):
            _add_whole(repo, t, depth, result)
        elif prefix.startswith(t.rel + "/") and t.pointer.kind == "dir":
            _add_part(repo, t, prefix[len(t.rel) + 1:], depth, result)
    return result


def _add_whole(repo: Repo, t: Tracked, depth: int, result: DuResult) -> None:
    result.total += t.pointer.size
    result.files += t.pointer.files
    result.entries.append(DuEntry(t.rel, t.pointer.kind, t.pointer.size, t.pointer.files))
    if depth > 0 and t.pointer.kind == "dir":
        manifest = _manifest(repo, t)
        if manifest is None:
            result.unknown.append(t.rel)
            return
        result.entries += _subdirs(t.rel, manifest.entries, "", depth)


def _add_part(repo: Repo, t: Tracked, inner: str, depth: int, result: DuResult) -> None:
    """`du` of a path inside a tracked directory: from its manifest."""
    manifest = _manifest(repo, t)
    if manifest is None:
        result.unknown.append(t.rel)
        return
    inside = [e for e in manifest.entries if e.path == inner or e.path.startswith(inner + "/")]
    if not inside:
        return
    size, count = sum(e.size for e in inside), len(inside)
    result.total += size
    result.files += count
    is_file = len(inside) == 1 and inside[0].path == inner
    result.entries.append(DuEntry(f"{t.rel}/{inner}", "file" if is_file else "subdir", size, count))
    if depth > 0 and not is_file:
        result.entries += _subdirs(t.rel, manifest.entries, inner, depth)
