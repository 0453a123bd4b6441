"""Which paths are tracked: pointer discovery, user path resolution, .gitignore entries."""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass

from dvlite import yamldoc
from dvlite.dvc.paths import any_dvc_files
from dvlite.errors import BadInputError, DvliteError, FormatError
from dvlite.formats.pointer import MAX_BYTES, SUFFIX, Pointer, checked_data_path, data_path_of
from dvlite.fsutil import TMP_MARK, check_inside, read_limited
from dvlite.repo import DIRNAME, Repo


LOCK_FILE_DEFAULT = "dvlite.lock"


@dataclass(frozen=True)
class Tracked:
    rel: str  # data path relative to the repo root, `/` separators
    pointer: Pointer

    @property
    def pointer_rel(self) -> str:
        return self.rel + SUFFIX


@dataclass(frozen=True)
class StageOut(Tracked):
    """A cached out of a pipeline stage: recorded in a dvlite.lock instead of a pointer file."""

    stage: str = ""
    lock: str = LOCK_FILE_DEFAULT  # the dvlite.lock that records it

    @property
    def pointer_rel(self) -> str:
        return self.lock


@dataclass(frozen=True)
class DvcOut(Tracked):
    """An output a `.dvc` file tracks (a commit from before the switch to dvlite), its object
    found through the md5 index (see `dvlite.dvc.tracked`)."""

    origin: str = ""  # the .dvc file

    @property
    def pointer_rel(self) -> str:
        return self.origin.split(" at ", 1)[0]


@dataclass(frozen=True)
class DvcStageOut(StageOut):
    """A cached out of a stage recorded in a `dvc.lock` (before the switch); `lock` is the dvc.lock."""


PIPELINE_FILE = "dvlite.yaml"
LOCK_FILE = "dvlite.lock"
LISTED_NAMES = (PIPELINE_FILE, LOCK_FILE, "dvc.yaml", "dvc.lock")


def dvlite_files(repo: Repo) -> list[str]:
    """Pointer files, dvlite.yaml and dvlite.lock files in the work tree (repo-relative)."""
    if repo.held_listing is not None:
        return list(repo.held_listing)
    if repo.scm is not None:
        return [p for p in repo.scm.dvlite_files() if not _is_temp(p)]
    found = []
    for dirpath, dirnames, filenames in os.walk(repo.root):
        dirnames[:] = [
            d for d in dirnames
            if d not in (".git", ".dvc", DIRNAME) and d + SUFFIX not in filenames
        ]
        found += [
            repo.rel(os.path.join(dirpath, f)) for f in filenames
            if (f.endswith((SUFFIX, ".dvc")) or f in LISTED_NAMES) and not f.startswith(TMP_MARK)
        ]
    return sorted(found)


@contextlib.contextmanager
def one_listing(repo: Repo) -> Iterator[list[str]]:
    """For a command that writes none of the files listed (status): one `git ls-files` for
    all its readers, not one each."""
    if repo.scm is not None:
        files, untracked = repo.scm.listing()
        repo.held_listing, repo.held_untracked = [p for p in files if not _is_temp(p)], untracked
    else:
        repo.held_listing = dvlite_files(repo)
    try:
        yield list(repo.held_listing)
    finally:
        repo.held_listing = repo.held_untracked = None


def untracked(repo: Repo, rels: list[str]) -> set[str]:
    """Which of the files `rels` git does not track: from the held listing when it names them
    all (a `status` then runs git once), else asked."""
    held = repo.held_untracked
    if held is not None and set(repo.held_listing or ()).issuperset(rels):
        return held.intersection(rels)
    return repo.scm.untracked(rels)


def named(files: list[str], name: str) -> list[str]:
    """The files called `name` (at the root first, then by path)."""
    return sorted((f for f in files if f.rsplit("/", 1)[-1] == name), key=lambda f: (f.count("/"), f))


def pointer_files(repo: Repo, files: list[str] | None = None) -> list[str]:
    """Pointer files in the work tree, relative to the repo root."""
    files = dvlite_files(repo) if files is None else files
    return [p for p in files if p.endswith(SUFFIX) and os.path.isfile(repo.abs(p))]


def _is_temp(rel: str) -> bool:
    """A leftover of an interrupted atomic write (`.dvlite-tmp-*`), not a pointer."""
    return rel.rsplit("/", 1)[-1].startswith(TMP_MARK)


def read_pointer(repo: Repo, pointer_rel: str) -> Pointer:
    path = repo.abs(pointer_rel)
    try:
        data = read_limited(path, MAX_BYTES, pointer_rel)
    except OSError as exc:
        raise FormatError(f"{pointer_rel}: cannot read ({exc.strerror})") from exc
    return Pointer.from_bytes(data, pointer_rel)


def load_pointers(repo: Repo) -> list[Tracked]:
    """Outputs tracked by `.dvl` pointer files only."""
    return [Tracked(checked_data_path(p), read_pointer(repo, p)) for p in pointer_files(repo)]


def load_tracked(repo: Repo) -> list[Tracked]:
    """Every tracked output: `.dvl` pointers, the cached stage outs of every dvlite.lock, then
    what DVC's files track that dvlite's do not, where the md5 index links it to an object."""
    files = dvlite_files(repo)
    tracked = own_tracked(repo, files)
    return tracked + linked_legacy(repo, legacy_in(repo, files, tracked))


def own_tracked(repo: Repo, files: list[str]) -> list[Tracked]:
    """What dvlite's own files among `files` track: `.dvl` pointers, then dvlite.lock outs."""
    pointers = [Tracked(checked_data_path(p), read_pointer(repo, p)) for p in pointer_files(repo, files)]
    return pointers + [t for lock in named(files, LOCK_FILE) for t in lock_outputs(_read(repo, lock), lock)]


def legacy_in(repo: Repo, files: list[str], tracked: list[Tracked], rev: str | None = None,
              read=None) -> list:
    """The outputs DVC's files among `files` track and dvlite's do not (LegacyOut values)."""
    if not any_dvc_files(files):
        return []
    from dvlite.dvc.tracked import legacy_outs, unclaimed

    label = f" at {rev}" if rev else ""
    claimed = {t.rel for t in tracked}
    listed = set(files)
    # dvlite's files win: a `.dvc` file for a path dvlite tracks, or a dvc.lock beside a
    # dvlite.lock (after `migrate` without --remove-dvc), is not even parsed
    files = [f for f in files
             if not (f.endswith(".dvc") and f[:-4] in claimed)
             and not (f.endswith("dvc.lock") and f[:-len("dvc.lock")] + LOCK_FILE in listed)]
    outs = legacy_outs(files, read or (lambda rel: _read(repo, rel)), label)
    return unclaimed(outs, list(claimed))


def linked_legacy(repo: Repo, outs: list) -> list[Tracked]:
    """Those of `outs` (LegacyOut values) whose dvlite object the md5 index knows."""
    if not outs:
        return []
    from dvlite.digest import ALGORITHM, Digest
    from dvlite.dvc.tracked import resolve
    from dvlite.storage.md5index import Md5Index

    linked, _pending = resolve(Md5Index(repo.cache_dir), outs)
    out: list[Tracked] = []
    for o, k in linked:
        pointer = Pointer(k.kind, Digest(ALGORITHM, k.digest), k.size, k.files)
        lock = o.origin.split(" at ", 1)[0]
        out.append(DvcStageOut(o.rel, pointer, o.stage, lock) if o.stage else DvcOut(o.rel, pointer, o.origin))
    return out


def load_tracked_leniently(repo: Repo) -> tuple[list[Tracked], list[DvliteError]]:
    """Every output that can be read, and the error of each pointer (or lock) that cannot:
    for `fsck`, which reports every problem instead of stopping at the first."""
    tracked: list[Tracked] = []
    problems: list[DvliteError] = []
    files = dvlite_files(repo)
    for p in pointer_files(repo, files):
        try:
            tracked.append(Tracked(checked_data_path(p), read_pointer(repo, p)))
        except DvliteError as exc:
            problems.append(exc)
    for lock in named(files, LOCK_FILE):
        try:
            tracked += lock_outputs(_read(repo, lock), lock)
        except DvliteError as exc:
            problems.append(exc)
    return tracked, problems


def _read(repo: Repo, rel: str) -> bytes | None:
    try:
        return read_limited(repo.abs(rel), yamldoc.MAX_BYTES, rel)
    except FileNotFoundError:
        return None


def lock_outputs(data: bytes | None, origin: str) -> list[Tracked]:
    if data is None:
        return []
    from dvlite.formats.lockfile import from_bytes

    return [StageOut(o.path, o.pointer(), stage, origin.split(" at ", 1)[0])
            for stage, o in from_bytes(data, origin).cached_outs()]


def parse_pointers_at(files: dict[str, bytes], rev: str) -> list[Tracked]:
    return [
        Tracked(checked_data_path(rel, f"{rel} at {rev}"), Pointer.from_bytes(data, f"{rel} at {rev}"))
        for rel, data in sorted(files.items())
        if not _is_temp(rel)
    ]


def outputs_at(scm, rev: str, label: str, repo: Repo | None = None) -> list[Tracked]:
    """Every tracked output at git revision `rev`: pointers and the stage outs of every lock;
    given `repo`, also what DVC's files track there and the md5 index links."""
    locks = scm.files_at(rev, LOCK_FILE, limit=yamldoc.MAX_BYTES)
    outs = [t for rel in named(list(locks), LOCK_FILE)
            for t in lock_outputs(locks[rel], f"{rel} at {label}")]
    tracked = parse_pointers_at(scm.files_at(rev, SUFFIX), label) + outs
    if repo is None:
        return tracked
    return tracked + linked_legacy(repo, legacy_at(repo, scm, rev, label, tracked))


def legacy_at(repo: Repo, scm, rev: str, label: str, tracked: list[Tracked]) -> list:
    """What DVC's files at `rev` track and dvlite's do not (LegacyOut values)."""
    from dvlite.dvc.tracked import DVC_SUFFIXES

    dvc_files = scm.files_at(rev, DVC_SUFFIXES, limit=yamldoc.MAX_BYTES)

    def read(rel: str) -> bytes | None:  # vars and params files too, for dvc.yaml's templating
        return dvc_files[rel] if rel in dvc_files else scm.read_at(rev, [rel]).get(rel)

    return legacy_in(repo, list(dvc_files), tracked, label, read)


def expand_args(args: list[str]) -> list[str]:
    """Expand globs the shell did not (quoted patterns), keeping literal names that exist."""
    out: list[str] = []
    for arg in args:
        if os.path.lexists(arg) or not glob.has_magic(arg):
            out.append(arg)
            continue
        matches = sorted(glob.glob(arg, recursive=True))
        if not matches:
            raise BadInputError(f"no such file or directory: {arg}")
        out += matches
    return out


def to_rel(repo: Repo, arg: str) -> str:
    """A user-given path as a repo-relative path; refuses paths outside the repo."""
    absolute = os.path.abspath(arg)
    # Resolve symlinked parents, but not the last component (it may be a symlink we refuse).
    absolute = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    if not check_inside(absolute, repo.root):
        raise BadInputError(f"{arg} is outside the repository ({repo.root})")
    rel = repo.rel(absolute)
    first = rel.split("/", 1)[0]
    if first in (".git", DIRNAME):
        raise BadInputError(f"{arg} is inside {first}/, which dvlite does not track")
    return "" if rel == "." else rel


def owner_of(rel: str, tracked: list[Tracked]) -> Tracked | None:
    """The tracked directory that contains `rel`, if any."""
    for t in tracked:
        if rel.startswith(t.rel + "/"):
            return t
    return None


def select(repo: Repo, tracked: list[Tracked], targets: list[str]) -> list[tuple[Tracked, str | None]]:
    """Tracked outputs named by `targets`: (output, file inside it or None for all of it)."""
    if not targets:
        return [(t, None) for t in tracked]
    chosen: dict[str, tuple[Tracked, str | None]] = {}
    for arg in targets:
        rel = to_rel(repo, arg)
        if rel.endswith(SUFFIX):
            rel = data_path_of(rel)
        hits = [(t, None) for t in tracked if t.rel == rel or t.rel.startswith(rel + "/") or rel == ""]
        owner = owner_of(rel, tracked)
        if owner is not None:
            hits = [(owner, rel[len(owner.rel) + 1:])]
        if not hits:
            raise BadInputError(f"{arg} is not tracked by dvlite (no {arg}{SUFFIX})")
        for t, inner in hits:
            key = t.rel if inner is None else f"{t.rel}/{inner}"
            chosen[key] = (t, inner)
    return list(chosen.values())
