"""`add`: store files and directories in the cache and write their pointers."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dvlite.digest import ALGORITHM, Digest, hash_bytes
from dvlite.errors import BadInputError
from dvlite.fsutil import sync_barrier
from dvlite.formats.manifest import Entry, Manifest
from dvlite.formats.pointer import SUFFIX, Pointer
from dvlite.gitignore import add_ignore
from dvlite.outputs import StageOut, Tracked, expand_args, load_tracked, owner_of, to_rel
from dvlite.progress import SILENT, Progress
from dvlite.repo import Repo
from dvlite.workspace.hasher import Hasher
from dvlite.workspace.scan import FileStat, TreeStamp, scan_with_stamp, stat_single


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
    ignored = repo.ignores.check(rel, os.path.isdir(absolute))
    if ignored is not None and ignored.ignored:
        raise BadInputError(f"{arg} is ignored by {ignored.source}:{ignored.line} ({ignored.pattern})",
                            hint="remove or negate that line to track it")
    link = repo.guard.symlink_in(rel)
    if link is not None and link != rel:
        raise repo.guard.refusal(link)
    if not os.path.isdir(absolute) or os.path.islink(absolute):
        stat_single(absolute, repo.odb.objects_dir)
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


def _ingest_dir(repo: Repo, hasher: Hasher, rel: str) -> tuple[Manifest, TreeStamp]:
    files, stamp = scan_with_stamp(repo.abs(rel), repo.odb.objects_dir, None, ignores=repo.ignores)
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
    return Manifest.build(entries), stamp


def add(repo: Repo, args: list[str], progress: Progress = SILENT) -> list[AddResult]:
    tracked = load_tracked(repo)
    rels = []
    for arg in expand_args(args):
        rel = _check_addable(repo, arg, tracked)
        if rel not in rels:
            rels.append(rel)
    hasher = repo.hasher(progress)
    staged: list[tuple[str, Pointer]] = []
    manifests: list[bytes] = []  # serialised once: their bytes name them and are stored
    scanned: list[tuple[str, str, TreeStamp]] = []
    for rel in rels:
        absolute = repo.abs(rel)
        if os.path.isdir(absolute):
            manifest, tree = _ingest_dir(repo, hasher, rel)
            manifests.append(manifest.to_bytes())
            digest = hash_bytes(manifests[-1])
            scanned.append((rel, digest.hex, tree))
            staged.append((rel, Pointer("dir", digest, manifest.size, len(manifest.entries))))
        else:
            st = stat_single(absolute, repo.odb.objects_dir)
            hexdigest = hasher.digests([FileStat(rel, absolute, st)], store=True)[rel]
            staged.append((rel, Pointer("file", Digest(ALGORITHM, hexdigest), st.st_size, 1)))
    sync_barrier(repo.odb.objects_dir)  # file objects are durable before the manifests that list them
    for manifest_bytes in manifests:
        repo.odb.put_bytes(manifest_bytes, durable=True)
    cache_stamp = repo.odb.stamp()
    for rel, digest_hex, tree in scanned:
        stamp = tree.digest(cache_stamp)
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
