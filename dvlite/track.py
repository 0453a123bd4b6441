"""Operations on tracked paths: add, status, remove, move, unprotect (checkout: checkout.py)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from dvlite.digest import ALGORITHM, Digest
from dvlite.errors import BadInputError, IntegrityError, UnsafePathError
from dvlite.fsutil import sync_barrier
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
from dvlite.workspace import FileStat, Hasher, fingerprint, is_linked_object, scan_tree, stat_single


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
    link = repo.guard.symlink_in(rel)
    if link is not None and link != rel:
        raise repo.guard.refusal(link)
    if not os.path.isdir(absolute) or os.path.islink(absolute):
        stat_single(absolute, repo.odb.root)
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
    files = scan_tree(repo.abs(rel), repo.odb.root)
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
            st = stat_single(absolute, repo.odb.root)
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
        repo.write(rel + SUFFIX, pointer.to_bytes())
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
    kind: str  # added | modified | deleted | symlink (a link dvlite does not follow)
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


def _behind_symlink(repo: Repo, t: Tracked) -> bool:
    """Whether the output's path goes through a symlink dvlite does not look behind: any on the
    way to it, or at it (except a file checked out as a link to its cache object)."""
    link = repo.guard.symlink_in(t.rel)
    if link is None:
        return False
    if link != t.rel or t.pointer.kind == "dir":
        return True
    return not is_linked_object(repo.abs(t.rel), repo.odb.root)  # cache.type = symlink


def status_of(repo: Repo, t: Tracked, hasher: Hasher, cache_stamp: str) -> PathStatus:
    flags: list[str] = []
    changes: list[FileChange] = []
    absolute = repo.abs(t.rel)
    digest = t.pointer.digest.hex
    if _behind_symlink(repo, t):  # what is behind it is not the tracked data: never listed
        return PathStatus(t.rel, t.pointer.kind, ("modified", "symlink"))
    if t.pointer.kind == "file":
        if not repo.odb.contains(digest):
            flags.append("not in cache")
        if not os.path.lexists(absolute):
            flags.append("deleted")
        elif not os.path.isfile(absolute):
            flags.append("modified")
        else:
            st = stat_single(absolute, repo.odb.root)
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
    links: list[str] = []
    files = scan_tree(absolute, repo.odb.root, links) if os.path.isdir(absolute) else None
    stamp = fingerprint(files, cache_stamp) if files is not None and not links else None
    if stamp is not None and repo.state.tree_matches(t.rel, digest, stamp):
        return PathStatus(t.rel, "dir", ())  # every file's stat is as when last seen clean
    try:
        manifest = read_manifest(repo, digest, t.pointer_rel)
    except UnsafePathError:
        raise
    except IntegrityError:
        return PathStatus(t.rel, "dir", tuple(flags) + ("corrupt in cache",))
    if repo.odb.missing(e.digest for e in manifest.entries):
        flags.append("not in cache")
    if files is not None:
        changes = _dir_changes(manifest, files, hasher) + [FileChange("symlink", r) for r in links]
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
        repo.guard.remove_file(rel + SUFFIX)
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
    repo.guard.check_parents(src_rel)
    dst_path = repo.guard.prepare(dst_rel)
    if os.path.lexists(repo.abs(src_rel)):
        os.rename(repo.abs(src_rel), dst_path)  # a rename never follows a symlink it moves
    repo.write(dst_rel + SUFFIX, pointer.to_bytes())
    repo.guard.remove_file(src_rel + SUFFIX)
    changed = [g for g in (remove_ignore(repo, src_rel), add_ignore(repo, dst_rel)) if g]
    return MoveResult(src_rel, dst_rel, tuple(changed))


def unprotect(repo: Repo, args: list[str]) -> list[str]:
    """Replace linked workspace files with private writable copies."""
    tracked = load_tracked(repo)
    done = []
    for t, inner in select(repo, tracked, args):
        top = repo.abs(t.rel if inner is None else f"{t.rel}/{inner}")
        paths = [top] if not os.path.isdir(top) else [f.path for f in scan_tree(top, repo.odb.root)]
        for path in paths:
            if os.path.islink(path) or os.stat(path).st_nlink > 1 or not os.access(path, os.W_OK):
                with open(path, "rb") as src:  # a link into the cache: its bytes, read once
                    mode = 0o755 if os.stat(path).st_mode & 0o100 else 0o644

                    def write(out, src=src):
                        shutil.copyfileobj(src, out, 1 << 20)

                    repo.write(repo.rel(path), writer=write, mode=mode, durable=False,
                               replace_link=True)
                done.append(repo.rel(path))
    return done
