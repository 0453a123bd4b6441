"""`checkout`: make the workspace match the pointers, planning every change before making one.

Nothing a user changed is overwritten or removed without `force` (invariant 6), and nothing
is written or deleted through a symlink: the plan checks every path first (`Guard`), so a
refusal happens before the first write.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dvlite.errors import ChangesWouldBeLostError, IntegrityError, UnsafePathError
from dvlite.outputs import Tracked, load_tracked, select
from dvlite.progress import SILENT, Progress
from dvlite.repo import Repo
from dvlite.workspace.hasher import Hasher, JOBS, THREADED_ABOVE
from dvlite.workspace.materialise import Materialiser
from dvlite.workspace.scan import FileStat, is_linked_object, scan_tree


@dataclass
class CheckoutResult:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    missing: list[tuple[str, str]] = field(default_factory=list)  # (path, digest)
    corrupt: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


@dataclass
class _Plan:
    writes: list[tuple[str, str, bool]] = field(default_factory=list)  # (rel, digest, exec)
    removes: list[str] = field(default_factory=list)
    unsaved: list[str] = field(default_factory=list)
    replace_dirs: list[str] = field(default_factory=list)  # a directory where a file goes
    replace_files: list[str] = field(default_factory=list)  # a file (or a symlink) where a directory goes


def _is_saved(repo: Repo, hasher: Hasher, f: FileStat) -> bool:
    known = hasher.digests([f], store=False)[f.rel]
    return repo.odb.contains(known)


def _link_at(repo: Repo, t: Tracked, force: bool) -> bool:
    """Whether the tracked path itself is a symlink that `force` lets us replace. A symlink on
    the way to it is always refused; one at it without `force` (except a file checked out as a
    link to its cache object, `cache.type = symlink`: that one is compared like a file)."""
    link = repo.guard.symlink_in(t.rel)
    if link is None:
        return False
    if link != t.rel:
        raise repo.guard.refusal(link)
    if t.pointer.kind == "file" and is_linked_object(repo.abs(t.rel), repo.odb.objects_dir):
        return False
    if not force:
        raise repo.guard.refusal(t.rel, force_hint=True)
    return True


def _plan_file(repo, hasher, t: Tracked, plan: _Plan, result, force: bool, relink: bool) -> None:
    absolute = repo.abs(t.rel)
    digest = t.pointer.digest.hex
    if _link_at(repo, t, force):
        plan.replace_files.append(t.rel)
    elif os.path.isdir(absolute):
        links: list[str] = []
        files = scan_tree(absolute, repo.odb.objects_dir, links, ignores=repo.ignores)
        lost = [f"{t.rel}/{f.rel}" for f in files
                if not _is_saved(repo, hasher, FileStat(f"{t.rel}/{f.rel}", f.path, f.st))]
        lost += [f"{t.rel}/{rel}" for rel in links]  # links are not in the cache either
        if lost and not force:
            plan.unsaved += lost
            return
        plan.replace_dirs.append(t.rel)
    elif os.path.lexists(absolute):
        st = os.stat(absolute) if os.path.exists(absolute) else None
        f = FileStat(t.rel, absolute, st) if st else None
        if f is not None:
            current = hasher.digests([f], store=False)[t.rel]
            if current == digest and not relink:
                result.unchanged += 1
                return
            if current != digest and not repo.odb.contains(current) and not force:
                plan.unsaved.append(t.rel)
                return
    plan.writes.append((t.rel, digest, False))


def _on_disk(repo: Repo, t: Tracked, inner: str | None, plan: _Plan, hasher, force,
             links: list[str]) -> list[FileStat] | None:
    """The files now at the output (paths relative to it); None when the output is unsaved.
    Symlinks found inside it go into `links`, never followed."""
    absolute = repo.abs(t.rel)
    if _link_at(repo, t, force):
        plan.replace_files.append(t.rel)
        return []
    if os.path.lexists(absolute) and not os.path.isdir(absolute):
        st = os.stat(absolute) if os.path.exists(absolute) else None
        if st and not force and not _is_saved(repo, hasher, FileStat(t.rel, absolute, st)):
            plan.unsaved.append(t.rel)
            return None
        plan.replace_files.append(t.rel)
        return []
    if not os.path.isdir(absolute):
        return []
    if inner:
        link = repo.guard.symlink_in(f"{t.rel}/{inner}")
        if link is not None:
            raise repo.guard.refusal(link)
    top = os.path.join(absolute, *inner.split("/")) if inner else absolute
    if inner and os.path.isfile(top):
        return [FileStat(inner, top, os.stat(top))]
    if os.path.isdir(top):
        prefix = inner + "/" if inner else ""
        found = scan_tree(top, repo.odb.objects_dir, links, ignores=repo.ignores)
        links[:] = [prefix + rel for rel in links]
        return [FileStat(prefix + f.rel, f.path, f.st) for f in found]
    return []


def _plan_links(repo: Repo, t: Tracked, links: list[str], entries: dict, plan: _Plan, force) -> None:
    """Symlinks inside the output: one where the data goes through it is refused; one at a
    file's place, or in no file's way, is user content (replaced or removed with `force`)."""
    for rel in links:
        if any(p.startswith(rel + "/") for p in entries):
            raise repo.guard.refusal(f"{t.rel}/{rel}")
        if not force:
            plan.unsaved.append(f"{t.rel}/{rel}")
        elif rel not in entries:
            plan.removes.append(f"{t.rel}/{rel}")


def _plan_dir(repo, hasher, t: Tracked, inner: str | None, plan: _Plan, result, force, relink):
    try:
        manifest = repo.odb.manifest(t.pointer.digest.hex, t.pointer_rel)
    except UnsafePathError:
        raise
    except IntegrityError:
        kind = "corrupt" if repo.odb.contains(t.pointer.digest.hex) else "missing"
        getattr(result, kind).append((t.rel, t.pointer.digest.hex))
        return
    entries = manifest.by_path()
    if inner is not None:
        entries = {p: e for p, e in entries.items() if p == inner or p.startswith(inner + "/")}
    links: list[str] = []
    files = _on_disk(repo, t, inner, plan, hasher, force, links)
    if files is None:
        return
    _plan_links(repo, t, links, entries, plan, force)
    on_disk = {f.rel: f for f in files}
    # digests of what is on disk, keyed by the repo-relative path (the stat cache key)
    as_repo = {rel: FileStat(f"{t.rel}/{rel}", f.path, f.st) for rel, f in on_disk.items()}
    same_size = [as_repo[r] for r, f in on_disk.items() if r in entries and entries[r].size == f.st.st_size]
    current = hasher.digests(same_size, store=False)
    for rel, e in entries.items():
        f = on_disk.get(rel)
        now = current.get(f"{t.rel}/{rel}") if f else None
        if f is not None and now == e.digest and f.executable == e.executable and not relink:
            result.unchanged += 1
            continue
        if f is not None and now != e.digest and not force:
            if now is None:
                now = hasher.digests([as_repo[rel]], store=False)[f"{t.rel}/{rel}"]
            if not repo.odb.contains(now):
                plan.unsaved.append(f"{t.rel}/{rel}")
                continue
        plan.writes.append((f"{t.rel}/{rel}", e.digest, e.executable))
    for rel, f in on_disk.items():
        if rel in entries:
            continue
        if not force and not _is_saved(repo, hasher, as_repo[rel]):
            plan.unsaved.append(f"{t.rel}/{rel}")
        else:
            plan.removes.append(f"{t.rel}/{rel}")


def checkout(repo: Repo, targets: list[str], force: bool = False, relink: bool = False,
             progress: Progress = SILENT) -> CheckoutResult:
    tracked = load_tracked(repo)
    hasher = repo.hasher()
    plan = _Plan()
    result = CheckoutResult()
    chosen = select(repo, tracked, targets)
    for t, inner in chosen:
        if t.pointer.kind == "file":
            _plan_file(repo, hasher, t, plan, result, force, relink)
        else:
            _plan_dir(repo, hasher, t, inner, plan, result, force, relink)
    if plan.unsaved:
        repo.state.save()
        raise ChangesWouldBeLostError(
            f"{len(plan.unsaved)} workspace change(s) are not in the cache; nothing was checked out",
            sorted(plan.unsaved),
            hint="record them with `dvlite add`, or discard them with `dvlite checkout --force`",
        )
    replaced = set(plan.replace_dirs) | set(plan.replace_files)
    # refuse a symlink on the way before anything changes: once per directory written into
    # (a missing directory is not remembered as checked, so not once per file)
    parents = {rel.rpartition("/")[0]: rel for rel, *_ in plan.writes}
    for parent, rel in parents.items():
        if not any(rel.startswith(r + "/") for r in replaced):
            repo.guard.check_parents(rel)
    for rel in plan.removes:
        repo.guard.check_parents(rel)
    for rel in plan.replace_dirs:
        repo.guard.remove_tree(rel)
    for rel in plan.replace_files:
        repo.guard.remove_file(rel)
    _apply(repo, hasher, plan, result, progress)
    for t, inner in chosen:
        if t.pointer.kind == "dir" and inner is None and t.rel not in dict(result.missing):
            repo.guard.make_dirs(t.rel)  # a tracked directory may have no files
    repo.state.save()
    return result


def _apply(repo: Repo, hasher: Hasher, plan: _Plan, result: CheckoutResult, progress: Progress
           ) -> None:
    for rel in plan.removes:
        repo.guard.remove_file(rel)
        repo.state.drop(rel)
        result.removed.append(rel)
        repo.guard.prune_empty(rel.rpartition("/")[0])
    materialiser = Materialiser(repo.odb, repo.config.link_types(), repo.guard, repo.work_tmp)

    def one(item: tuple[str, str, bool]) -> tuple[str, str, str | None]:
        rel, digest, executable = item
        written: list = []
        try:
            try:
                materialiser.materialise(digest, rel, executable, loose[digest] >= 0, written)
            except IsADirectoryError:  # a directory where the file goes: rare, so not stat'ed first
                repo.guard.remove_tree(rel)
                materialiser.materialise(digest, rel, executable, loose[digest] >= 0, written)
        except IntegrityError:
            return rel, digest, "missing" if not repo.odb.contains(digest) else "corrupt"
        if written:
            hasher.remember(rel, written[0], digest)
        else:  # a link: the stat of what is there now
            hasher.remember_written(repo.abs(rel), digest)
        return rel, digest, None

    # In digest order, consecutive creates land in different directories, which ext4 does
    # 1.7x faster than filling one directory at a time (measured: docs/performance.md).
    # Small objects in this thread (threads only contend for the GIL over such short system
    # calls: 200,000 tiny files took 24 s in one thread, 30 s in 8), large ones in threads.
    writes = sorted(plan.writes, key=lambda w: w[1])
    loose = {digest: repo.odb.size_if_loose(digest, packed_first=True) for _, digest, _ in writes}
    small = [w for w in writes if loose[w[1]] < THREADED_ABOVE]
    large = [w for w in writes if loose[w[1]] >= THREADED_ABOVE]
    if progress is not SILENT:
        sizes = {d: n if n >= 0 else _packed_size(repo, d) for d, n in loose.items()}
        progress.set_size(sum(sizes[d] for _, d, _ in writes))
    with ThreadPoolExecutor(JOBS) as pool:
        for rel, digest, problem in itertools.chain(map(one, small), pool.map(one, large)):
            if progress is not SILENT:
                progress.relative_update(sizes[digest])
            if problem is None:
                result.written.append(rel)
            else:
                getattr(result, problem).append((rel, digest))


def _packed_size(repo: Repo, digest: str) -> int:
    """For the progress bar only: 0 for an object the cache lacks (reported as missing)."""
    try:
        return repo.odb.size(digest)
    except FileNotFoundError:
        return 0
