"""Operations on the workspace: add, status, checkout, remove, move, unprotect."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from dvlite.digest import ALGORITHM, Digest
from dvlite.errors import BadInputError, ChangesWouldBeLostError, IntegrityError
from dvlite.fsutil import (
    atomic_write,
    prune_empty_dirs,
    remove_file,
    remove_tree,
    sync_barrier,
)
from dvlite.manifest import Entry, Manifest
from dvlite.pointer import SUFFIX, Pointer
from dvlite.repo import Repo
from dvlite.tracked import (
    StageOut,
    Tracked,
    add_ignore,
    expand_args,
    load_tracked,
    owner_of,
    remove_ignore,
    select,
    to_rel,
)
from dvlite.workspace import FileStat, Hasher, Materialiser, fingerprint, scan_tree, stat_single


def hasher_for(repo: Repo) -> Hasher:
    return Hasher(repo.state, repo.odb, repo.root)


def read_manifest(repo: Repo, hexdigest: str, origin: str) -> Manifest:
    return Manifest.from_bytes(repo.odb.read_verified(hexdigest), origin)


# --- add ------------------------------------------------------------------------

@dataclass(frozen=True)
class AddResult:
    path: str
    pointer_path: str
    kind: str
    size: int
    files: int
    changed: bool
    gitignore: str | None


def _check_addable(repo: Repo, arg: str, tracked: list[Tracked]) -> str:
    if not os.path.lexists(arg):
        raise BadInputError(f"no such file or directory: {arg}")
    rel = to_rel(repo, arg)
    if rel == "":
        raise BadInputError("cannot track the repository root itself; add paths inside it")
    if rel.endswith(SUFFIX):
        raise BadInputError(f"{arg} is a pointer file; add the data path instead")
    absolute = repo.abs(rel)
    stat_single(absolute, repo.root)
    owner = owner_of(rel, tracked) or next((t for t in tracked if t.rel == rel), None)
    if isinstance(owner, StageOut):
        raise BadInputError(
            f"{arg} is an out of stage {owner.stage!r} (recorded in {owner.pointer_rel})",
            hint="`dvlite repro` caches stage outs; remove it from dvlite.yaml to track it by hand",
        )
    if owner is not None and owner.rel != rel:  # the same path: a re-add
        raise BadInputError(
            f"{arg} is inside {owner.rel}, which {owner.pointer_rel} already tracks",
            hint=f"run `dvlite add {owner.rel}` to record changes inside it",
        )
    inner = [t for t in tracked if t.rel.startswith(rel + "/")]
    if inner:
        raise BadInputError(
            f"{arg} contains {inner[0].rel}, which {inner[0].pointer_rel} already tracks",
            hint=f"run `dvlite remove {inner[0].pointer_rel}` first to track the whole directory",
        )
    if repo.scm is not None and repo.scm.tracked_under(absolute):
        raise BadInputError(
            f"git already tracks {arg}",
            hint=f"run `git rm -r --cached {rel}` and commit, then `dvlite add {rel}`",
        )
    return rel


def _ingest_dir(repo: Repo, hasher: Hasher, rel: str) -> tuple[Manifest, list[FileStat]]:
    files = scan_tree(repo.abs(rel), repo.root)
    for f in files:  # manifests are UTF-8 JSON; say so instead of crashing on encode
        try:
            f.rel.encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(f"{rel}/{f.rel}").decode("utf-8", "backslashreplace")
            raise BadInputError(
                f"{shown}: file name is not valid UTF-8, so a directory manifest cannot record it",
                hint="rename it, or track it with its own pointer (`dvlite add FILE`)",
            ) from None
    digests = hasher.digests(files, store=True)
    entries = [Entry(f.rel, digests[f.rel], f.st.st_size, f.executable) for f in files]
    return Manifest.build(entries), files


def add(repo: Repo, args: list[str]) -> list[AddResult]:
    tracked = load_tracked(repo)
    rels = []
    for arg in expand_args(args):
        rel = _check_addable(repo, arg, tracked)
        if rel not in rels:
            rels.append(rel)
    hasher = hasher_for(repo)
    staged: list[tuple[str, Pointer]] = []
    manifests: list[Manifest] = []
    scanned: list[tuple[str, str, list[FileStat]]] = []
    for rel in rels:
        absolute = repo.abs(rel)
        if os.path.isdir(absolute):
            manifest, files = _ingest_dir(repo, hasher, rel)
            manifests.append(manifest)
            digest = manifest.digest()
            scanned.append((rel, digest.hex, files))
            staged.append((rel, Pointer("dir", digest, manifest.size, len(manifest.entries))))
        else:
            st = stat_single(absolute, repo.root)
            hexdigest = hasher.digests([FileStat(rel, absolute, st)], store=True)[rel]
            staged.append((rel, Pointer("file", Digest(ALGORITHM, hexdigest), st.st_size, 1)))
    sync_barrier(repo.odb.root)  # file objects are durable before the manifests that list them
    for manifest in manifests:
        repo.odb.put_bytes(manifest.to_bytes(), durable=True)
    cache_stamp = repo.odb.stamp()
    for rel, digest_hex, files in scanned:
        stamp = fingerprint(files, cache_stamp)
        if stamp is not None:
            repo.state.put_tree(rel, digest_hex, stamp)
    results = []
    old = {t.rel: t.pointer for t in tracked}
    for rel, pointer in staged:
        atomic_write(repo.abs(rel + SUFFIX), pointer.to_bytes())
        gitignore = add_ignore(repo, rel)
        results.append(
            AddResult(rel, rel + SUFFIX, pointer.kind, pointer.size, pointer.files,
                      old.get(rel) != pointer, gitignore)
        )
    repo.state.save()
    return results


# --- status ---------------------------------------------------------------------

@dataclass(frozen=True)
class FileChange:
    kind: str  # added | modified | deleted
    path: str


@dataclass(frozen=True)
class PathStatus:
    path: str
    kind: str
    flags: tuple[str, ...]  # modified, deleted, new, not in cache
    changes: tuple[FileChange, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.flags


def _dir_changes(manifest: Manifest, files: list[FileStat], hasher: Hasher) -> list[FileChange]:
    expected = manifest.by_path()
    on_disk = {f.rel: f for f in files}
    changes = [FileChange("deleted", p) for p in expected if p not in on_disk]
    changes += [FileChange("added", p) for p in on_disk if p not in expected]
    suspects = []
    for rel, f in on_disk.items():
        e = expected.get(rel)
        if e is None:
            continue
        if e.size != f.st.st_size or e.executable != f.executable:
            changes.append(FileChange("modified", rel))
        else:
            suspects.append(f)
    digests = hasher.digests(suspects, store=False)
    changes += [FileChange("modified", f.rel) for f in suspects if digests[f.rel] != expected[f.rel].digest]
    return sorted(changes, key=lambda c: c.path)


def status_of(repo: Repo, t: Tracked, hasher: Hasher, cache_stamp: str) -> PathStatus:
    flags: list[str] = []
    changes: list[FileChange] = []
    absolute = repo.abs(t.rel)
    digest = t.pointer.digest.hex
    if t.pointer.kind == "file":
        if not repo.odb.contains(digest):
            flags.append("not in cache")
        if not os.path.lexists(absolute):
            flags.append("deleted")
        elif not os.path.isfile(absolute):
            flags.append("modified")
        else:
            st = stat_single(absolute, repo.root)
            if st.st_size != t.pointer.size or hasher.digests(
                [FileStat(t.rel, absolute, st)], store=False
            )[t.rel] != digest:
                flags.append("modified")
        return PathStatus(t.rel, t.pointer.kind, tuple(flags))
    if not os.path.lexists(absolute):
        flags.append("deleted")
    if not repo.odb.contains(digest):
        flags.append("not in cache")
        if os.path.isdir(absolute):
            flags.append("modified")  # nothing to compare against; say so rather than guess
        return PathStatus(t.rel, "dir", tuple(flags))
    files = scan_tree(absolute, repo.root) if os.path.isdir(absolute) else None
    stamp = fingerprint(files, cache_stamp) if files is not None else None
    if stamp is not None and repo.state.tree_matches(t.rel, digest, stamp):
        return PathStatus(t.rel, "dir", ())  # every file's stat is as when last seen clean
    try:
        manifest = read_manifest(repo, digest, t.pointer_rel)
    except IntegrityError:
        return PathStatus(t.rel, "dir", tuple(flags) + ("corrupt in cache",))
    if repo.odb.missing(e.digest for e in manifest.entries):
        flags.append("not in cache")
    if files is not None:
        changes = _dir_changes(manifest, files, hasher)
        if changes:
            flags.append("modified")
        elif not flags and stamp is not None:
            repo.state.put_tree(t.rel, digest, stamp)
    elif "deleted" not in flags:
        flags.append("modified")
    return PathStatus(t.rel, "dir", tuple(flags), tuple(changes))


def status(repo: Repo, targets: list[str]) -> list[PathStatus]:
    tracked = load_tracked(repo)
    chosen = [t for t, _ in select(repo, tracked, targets)]
    hasher = hasher_for(repo)
    cache_stamp = repo.odb.stamp()
    results = [status_of(repo, t, hasher, cache_stamp) for t in chosen]
    if repo.scm is not None:
        new = repo.scm.untracked(sorted({t.pointer_rel for t in chosen}))
        results = [
            PathStatus(r.path, r.kind, r.flags + ("new",), r.changes)
            if t.pointer_rel in new else r
            for r, t in zip(results, chosen)
        ]
    repo.state.save()
    return results


# --- checkout -------------------------------------------------------------------

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
    replace_files: list[str] = field(default_factory=list)  # a file where a directory goes


def _is_saved(repo: Repo, hasher: Hasher, f: FileStat) -> bool:
    known = hasher.digests([f], store=False)[f.rel]
    return repo.odb.contains(known)


def _plan_file(repo, hasher, t: Tracked, plan: _Plan, result, force: bool, relink: bool) -> None:
    absolute = repo.abs(t.rel)
    digest = t.pointer.digest.hex
    if os.path.isdir(absolute) and not os.path.islink(absolute):
        files = scan_tree(absolute, repo.root)
        lost = [f for f in files if not _is_saved(repo, hasher, FileStat(f"{t.rel}/{f.rel}", f.path, f.st))]
        if lost and not force:
            plan.unsaved += [f"{t.rel}/{f.rel}" for f in lost]
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


def _plan_dir(repo, hasher, t: Tracked, inner: str | None, plan: _Plan, result, force, relink):
    absolute = repo.abs(t.rel)
    try:
        manifest = read_manifest(repo, t.pointer.digest.hex, t.pointer_rel)
    except IntegrityError:
        kind = "corrupt" if repo.odb.contains(t.pointer.digest.hex) else "missing"
        getattr(result, kind).append((t.rel, t.pointer.digest.hex))
        return
    entries = manifest.by_path()
    if inner is not None:
        entries = {p: e for p, e in entries.items() if p == inner or p.startswith(inner + "/")}
    if os.path.lexists(absolute) and not os.path.isdir(absolute):
        st = os.stat(absolute) if os.path.exists(absolute) else None
        if st and not force and not _is_saved(repo, hasher, FileStat(t.rel, absolute, st)):
            plan.unsaved.append(t.rel)
            return
        plan.replace_files.append(t.rel)
        files = []
    elif os.path.isdir(absolute):
        top = os.path.join(absolute, *inner.split("/")) if inner else absolute
        if inner and os.path.isfile(top):
            files = [FileStat(inner, top, os.stat(top))]
        elif os.path.isdir(top):
            prefix = inner + "/" if inner else ""
            files = [FileStat(prefix + f.rel, f.path, f.st) for f in scan_tree(top, repo.root)]
        else:
            files = []
    else:
        files = []
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


def checkout(repo: Repo, targets: list[str], force: bool = False, relink: bool = False) -> CheckoutResult:
    tracked = load_tracked(repo)
    hasher = hasher_for(repo)
    plan = _Plan()
    result = CheckoutResult()
    for t, inner in select(repo, tracked, targets):
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
    for rel in plan.replace_dirs:
        remove_tree(repo.abs(rel))
    for rel in plan.replace_files:
        remove_file(repo.abs(rel))
    _apply(repo, hasher, plan, result)
    for t, inner in select(repo, tracked, targets):
        if t.pointer.kind == "dir" and inner is None and t.rel not in dict(result.missing):
            os.makedirs(repo.abs(t.rel), exist_ok=True)  # a tracked directory may have no files
    repo.state.save()
    return result


def _apply(repo: Repo, hasher: Hasher, plan: _Plan, result: CheckoutResult) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from dvlite.workspace import JOBS, THREADED_ABOVE

    for rel in plan.removes:
        path = repo.abs(rel)
        remove_file(path)
        repo.state.drop(rel)
        result.removed.append(rel)
        prune_empty_dirs(repo.root, os.path.dirname(path))
    materialiser = Materialiser(repo.odb, repo.config.link_types())

    def one(item: tuple[str, str, bool]) -> tuple[str, str, str | None]:
        rel, digest, executable = item
        path = repo.abs(rel)
        if os.path.isdir(path) and not os.path.islink(path):
            remove_tree(path)
        try:
            materialiser.materialise(digest, path, executable, loose=loose[digest] >= 0)
        except IntegrityError:
            return rel, digest, "missing" if not repo.odb.contains(digest) else "corrupt"
        hasher.remember_written(path, digest)
        return rel, digest, None

    # In digest order, consecutive creates land in different directories, which ext4 does
    # 1.7x faster than filling one directory at a time (measured: docs/performance.md).
    # Small objects in this thread (threads only contend for the GIL over such short system
    # calls: 200,000 tiny files took 24 s in one thread, 30 s in 8), large ones in threads.
    writes = sorted(plan.writes, key=lambda w: w[1])
    loose = {digest: repo.odb.size_if_loose(digest) for _, digest, _ in writes}
    small = [w for w in writes if loose[w[1]] < THREADED_ABOVE]
    large = [w for w in writes if loose[w[1]] >= THREADED_ABOVE]
    with ThreadPoolExecutor(JOBS) as pool:
        for rel, digest, problem in [*map(one, small), *pool.map(one, large)]:
            if problem is None:
                result.written.append(rel)
            else:
                getattr(result, problem).append((rel, digest))


# --- remove, move, unprotect -------------------------------------------------------

@dataclass(frozen=True)
class RemoveResult:
    path: str
    pointer_path: str
    gitignore: str | None


def remove(repo: Repo, args: list[str]) -> list[RemoveResult]:
    tracked = {t.rel: t for t in load_tracked(repo)}
    rels = []
    for arg in args:  # validate every argument before changing anything
        rel = to_rel(repo, arg)
        rel = rel.removesuffix(SUFFIX)
        if rel not in tracked:
            raise BadInputError(f"{arg} is not tracked by dvlite (no {rel}{SUFFIX})")
        _refuse_stage_out(tracked[rel], arg)
        rels.append(rel)
    results = []
    for rel in dict.fromkeys(rels):
        remove_file(repo.abs(rel + SUFFIX))
        results.append(RemoveResult(rel, rel + SUFFIX, remove_ignore(repo, rel)))
    return results


def _refuse_stage_out(t: Tracked, arg: str) -> None:
    if isinstance(t, StageOut):
        raise BadInputError(
            f"{arg} is an out of stage {t.stage!r}, recorded in {t.pointer_rel}, not a pointer",
            hint="change the stage in dvlite.yaml instead",
        )


@dataclass(frozen=True)
class MoveResult:
    src: str
    dst: str
    gitignores: tuple[str, ...]


def move(repo: Repo, src: str, dst: str) -> MoveResult:
    tracked = {t.rel: t for t in load_tracked(repo)}
    src_rel = to_rel(repo, src)
    src_rel = src_rel.removesuffix(SUFFIX)
    if src_rel not in tracked:
        raise BadInputError(f"{src} is not tracked by dvlite (no {src_rel}{SUFFIX})")
    _refuse_stage_out(tracked[src_rel], src)
    dst_abs = os.path.abspath(dst)
    if os.path.isdir(dst_abs):
        dst_abs = os.path.join(dst_abs, os.path.basename(src_rel))
    dst_rel = to_rel(repo, dst_abs)
    dst_rel = dst_rel.removesuffix(SUFFIX)
    if os.path.lexists(repo.abs(dst_rel)) or os.path.lexists(repo.abs(dst_rel + SUFFIX)):
        raise BadInputError(f"{dst} already exists; dvlite move never overwrites")
    if owner_of(dst_rel, list(tracked.values())):
        raise BadInputError(f"{dst} is inside a tracked directory")
    pointer = tracked[src_rel].pointer
    os.makedirs(os.path.dirname(repo.abs(dst_rel)), exist_ok=True)
    if os.path.lexists(repo.abs(src_rel)):
        os.rename(repo.abs(src_rel), repo.abs(dst_rel))
    atomic_write(repo.abs(dst_rel + SUFFIX), pointer.to_bytes())
    remove_file(repo.abs(src_rel + SUFFIX))
    changed = [g for g in (remove_ignore(repo, src_rel), add_ignore(repo, dst_rel)) if g]
    return MoveResult(src_rel, dst_rel, tuple(changed))


def unprotect(repo: Repo, args: list[str]) -> list[str]:
    """Replace linked workspace files with private writable copies."""
    tracked = load_tracked(repo)
    done = []
    for t, inner in select(repo, tracked, args):
        top = repo.abs(t.rel if inner is None else f"{t.rel}/{inner}")
        paths = [top] if not os.path.isdir(top) else [f.path for f in scan_tree(top, repo.root)]
        for path in paths:
            if os.path.islink(path) or os.stat(path).st_nlink > 1 or not os.access(path, os.W_OK):
                with open(path, "rb") as src:
                    mode = 0o755 if os.stat(path).st_mode & 0o100 else 0o644

                    def write(out, src=src):
                        shutil.copyfileobj(src, out, 1 << 20)

                    atomic_write(path, writer=write, mode=mode, durable=False)
                done.append(repo.rel(path))
    return done
