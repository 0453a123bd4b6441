"""`dvlite migrate`: plan, then convert a DVC repository to dvlite in one go.

`survey(root)` reads and validates every DVC file (nothing is written): `.dvc` files,
`dvc.yaml`/`dvc.lock` at any depth, `.dvcignore` files, `.dvc/config` and `config.local`.
Its `plan()` is the dry run. `apply(...)` converts: every object is verified against DVC's
md5 and stored under its XXH3-128 digest first; only when all of them are in place are the
dvlite files written, each compared with what is already there (identical: unchanged; a
difference: an error, before anything is written). A failure leaves the DVC files as they
were and removes a `.dvlite/` that this run created.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from dvlite.dvc import dvcconfig, dvcfile, pipelines, settings
from dvlite.dvc.cache import LocalStore, open_remote
from dvlite.dvc.objects import Importer, Missing
from dvlite.dvc.paths import check_path
from dvlite.errors import BadInputError, FormatError, IntegrityError
from dvlite.formats.pointer import Pointer, Source
from dvlite.fsutil import check_inside

IGNORE_FROM, IGNORE_TO = ".dvcignore", ".dvliteignore"
MAX_READ = 64 << 20
_SKIP_DIRS = {".git", ".dvc", ".dvlite"}


def find_root(start: str) -> str:
    """The nearest directory at or above `start` holding `.dvc/`."""
    cur = os.path.realpath(start)
    while True:
        if os.path.isdir(os.path.join(cur, ".dvc")):
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            raise BadInputError("not a DVC repository (no .dvc/ here or in any parent)",
                                hint="run `dvlite migrate` at the top of a DVC project")
        cur = parent


def _read(path: str, limit: int = MAX_READ, root: str | None = None) -> bytes | None:
    """A file's bytes (None if absent); with `root`, refused if a symlink leads outside it."""
    if root is not None and os.path.lexists(path) and not check_inside(os.path.realpath(path), root):
        raise FormatError(f"{os.path.relpath(path, root)} leads outside the repository (a symlink)")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    if len(data) > limit:
        raise FormatError(f"{path}: larger than {limit >> 20} MiB")
    return data


@dataclass(frozen=True)
class Item:
    """One file migrate writes: what it is made from, and whether it is there already."""

    kind: str  # pointer | pipeline | lock | ignore | config
    source: str  # the DVC file, repo-relative
    target: str  # the dvlite file, repo-relative
    exists: bool
    detail: str


@dataclass(frozen=True)
class Plan:
    root: str
    items: list[Item]
    remove: list[str]  # DVC files that --remove-dvc deletes
    notes: list[str]
    data_bytes: int  # what the DVC records say the data adds up to


@dataclass
class Survey:
    """Everything read from the DVC repository, validated; nothing written yet."""

    root: str
    dvcfiles: list = field(default_factory=list)  # dvcfile.DvcFile
    pipelines: list = field(default_factory=list)  # pipelines.PipelineFile
    ignores: list = field(default_factory=list)  # repo-relative .dvcignore files
    config: dvcconfig.DvcConfig | None = None
    settings: dvcconfig.Settings | None = None
    notes: list = field(default_factory=list)

    def abs(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/"))


def _walk(root: str, survey: Survey) -> tuple[list[str], list[str]]:
    """Repo-relative .dvc files and dvc.yaml files (data directories are not entered)."""
    dvc_files, yamls = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        names = set(filenames)
        kept = []
        for d in sorted(dirnames):
            if d in _SKIP_DIRS or d + dvcfile.SUFFIX in names:
                continue
            if os.path.isdir(os.path.join(dirpath, d, ".dvc")):
                survey.notes.append(f"{posixpath.join(rel_dir, d)}: a nested DVC repository; not migrated")
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            rel = posixpath.join(rel_dir, name)
            if name.endswith(dvcfile.SUFFIX) and name != dvcfile.SUFFIX:
                dvc_files.append(rel)
            elif name == pipelines.DVC_YAML:
                yamls.append(rel)
            elif name == IGNORE_FROM:
                survey.ignores.append(rel)
    return dvc_files, yamls


def survey(root: str) -> Survey:
    """Read and validate every DVC file under `root` (the directory holding `.dvc/`)."""
    if not os.path.isdir(os.path.join(root, ".dvc")):
        raise BadInputError(f"{root} is not a DVC repository (no .dvc/)")
    root = os.path.realpath(root)
    s = Survey(root)
    shared = dvcconfig.parse(_read(os.path.join(root, ".dvc", "config"), root=root), ".dvc/config")
    local = dvcconfig.parse(_read(os.path.join(root, ".dvc", "config.local"), root=root),
                            ".dvc/config.local")
    s.config = dvcconfig.merged(shared, local)
    s.settings = settings.convert(shared, local, ".dvc/config", ".dvc/config.local")
    dvc_files, yamls = _walk(root, s)
    for rel in dvc_files:
        s.dvcfiles.append(dvcfile.parse(_read(s.abs(rel), dvcfile.MAX_FILE + 1, root) or b"", rel))
    options = {k: dvcconfig.as_text(v) for k, v in s.config.sections.get("parsing", {}).items()}

    def read_file(rel: str) -> bytes | None:
        return _read(s.abs(check_path(rel, "vars", rel)), root=root)

    for rel in yamls:
        lock_rel = posixpath.join(posixpath.dirname(rel), "dvc.lock")
        s.pipelines.append(pipelines.load(rel, _read(s.abs(rel), root=root) or b"",
                                          _read(s.abs(lock_rel), root=root), read_file, options))
    _check_overlaps(s)
    return s


def _check_overlaps(s: Survey) -> None:
    seen: dict[str, str] = {}
    for f in s.dvcfiles:
        if f.out.path in seen:
            raise FormatError(f"{f.origin}: {f.out.path} is also tracked by {seen[f.out.path]}")
        seen[f.out.path] = f.origin
    for pf in s.pipelines:
        for stage in pf.stages.values():
            for o in stage.outs:
                if o.path in seen:
                    raise FormatError(f"{pf.origin}: stage '{stage.name}': out {o.path} is also "
                                      f"tracked by {seen[o.path]}")
                seen[o.path] = pf.origin


# --- the dry run --------------------------------------------------------------------------

def _size_text(n: int | None) -> str:
    if n is None:
        return "size unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _items(s: Survey) -> list[Item]:
    items = []
    for f in s.dvcfiles:
        target = f.out.path + ".dvl"
        what = f"dir, {f.out.nfiles} files" if f.out.is_dir else "file"
        kind = " (import)" if f.repo or f.url else ""
        items.append(Item("pointer", f.origin, target, os.path.lexists(s.abs(target)),
                          f"{f.out.path}: {what}, {_size_text(f.out.size)}{kind}"))
    for pf in s.pipelines:
        detail = f"{len(pf.stages)} stage(s)" + (", templated" if pf.templated else "")
        items.append(Item("pipeline", pf.origin, pf.target, os.path.lexists(s.abs(pf.target)), detail))
        if pf.lock_origin is not None:
            items.append(Item("lock", pf.lock_origin, pf.lock_target,
                              os.path.lexists(s.abs(pf.lock_target)), f"{len(pf.lock)} stage(s)"))
    for rel in s.ignores:
        target = posixpath.join(posixpath.dirname(rel), IGNORE_TO)
        items.append(Item("ignore", rel, target, os.path.lexists(s.abs(target)), "copied as is"))
    for which, keys in (("config", s.settings.shared), ("config.local", s.settings.local)):
        if keys:
            target = f".dvlite/{which}"
            items.append(Item("config", f".dvc/{which}", target, os.path.lexists(s.abs(target)),
                              ", ".join(sorted(keys))))
    return items


def removable(s: Survey) -> list[str]:
    """The DVC files `--remove-dvc` deletes (.dvc/ itself stays: old commits need its cache)."""
    out = [f.origin for f in s.dvcfiles]
    for pf in s.pipelines:
        out.append(pf.origin)
        if pf.lock_origin is not None:
            out.append(pf.lock_origin)
    return sorted(out + list(s.ignores))


def _notes(s: Survey) -> list[str]:
    notes = list(s.notes) + list(s.settings.notes)
    for f in s.dvcfiles:
        notes += list(f.notes)
        if f.url is not None:
            notes.append(f"{f.origin}: import-url source {f.url.url} is not recorded "
                         "(the data is migrated as a plain tracked path)")
        if f.repo is not None and (f.repo.rev_lock is None or len(f.repo.rev_lock) not in (40, 64)):
            notes.append(f"{f.origin}: import without a locked commit; its source is not recorded")
    if s.ignores:
        notes.append(".dvliteignore files are written, but dvlite does not read them yet")
    for pf in s.pipelines:
        if pf.templated:
            notes.append(f"{pf.target}: uses vars/foreach/matrix/${{...}} as {pf.origin} does")
    return notes


def plan(s: Survey, remove_dvc: bool = False) -> Plan:
    size = sum(f.out.size or 0 for f in s.dvcfiles)
    return Plan(s.root, _items(s), removable(s) if remove_dvc else [], _notes(s), size)


# --- converting -----------------------------------------------------------------------------

@dataclass(frozen=True)
class MigrateResult:
    written: list[str]  # dvlite files written (new or changed)
    unchanged: list[str]  # dvlite files that already held exactly this
    removed: list[str]  # DVC files deleted (--remove-dvc)
    objects: int  # file objects verified and brought over
    bytes: int
    from_cache: int
    from_workspace: int
    from_remote: int
    notes: list[str]
    initialised: bool  # .dvlite/ was created by this run


def _remote_maker(s: Survey) -> Callable:
    return lambda: open_remote(s.root, s.config, s.settings)


def _pointer(f: dvcfile.DvcFile, importer: Importer) -> bytes:
    out = f.out
    try:
        m = importer.measure(out.md5, out.is_dir, out.hash_name, out.path, True, f.origin)
    except Missing as exc:
        m, what = None, str(exc)
    else:
        what = f"{out.path} (md5 {out.md5}{'.dir' if out.is_dir else ''})"
    if m is None:
        raise IntegrityError(f"{f.origin}: {what} is in neither the DVC cache, the workspace "
                             "nor the DVC remote", hint="`dvc fetch` or `dvc push` it from where it "
                             "is, then run migrate again")
    source = None
    repo = f.repo
    if repo is not None and repo.rev_lock is not None and len(repo.rev_lock) in (40, 64):
        source = Source(repo.url, repo.rev or "HEAD", repo.rev_lock, repo.path)
    return Pointer(m.kind, m.digest, m.size, m.files, source).to_bytes()


def _convert(s: Survey, repo, importer: Importer, notes: list[str]) -> dict[str, bytes]:
    """Every dvlite file's bytes (target -> bytes); objects stored as a side effect."""
    files: dict[str, bytes] = {}
    with repo.odb.batch():
        for f in s.dvcfiles:
            files[f.out.path + ".dvl"] = _pointer(f, importer)
        for pf in s.pipelines:
            files[pf.target] = pf.data
            if pf.lock_origin is not None:
                files[pf.lock_target] = pipelines.convert_lock(pf, importer, notes)
    importer.finish()
    for rel in s.ignores:
        files[posixpath.join(posixpath.dirname(rel), IGNORE_TO)] = _read(s.abs(rel), root=s.root) or b""
    return files


def _compare(s: Survey, files: dict[str, bytes]) -> tuple[list[str], list[str]]:
    """(to write, unchanged); a target that holds something else stops everything."""
    write, same = [], []
    for target, data in sorted(files.items()):
        if not check_inside(os.path.realpath(os.path.dirname(s.abs(target))), s.root):
            raise FormatError(f"{target}: its directory leads outside the repository (a symlink)")
        existing = _read(s.abs(target), root=s.root)
        if existing is None:
            write.append(target)
        elif existing == data:
            same.append(target)
        else:
            raise BadInputError(f"{target} already exists and differs from what migrating gives",
                                hint="move it away (or delete it), then run migrate again")
    return write, same


def _config_changes(repo, s: Survey, fresh: bool, notes: list[str]) -> list[tuple[str, str, bool]]:
    """The config keys to set; a key that already holds another value stops everything."""
    changes = []
    for local, keys in ((False, s.settings.shared), (True, s.settings.local)):
        existing = repo.config.items("local" if local else "shared")
        for key, value in sorted(keys.items()):
            current = existing.get(key)
            if current == value:
                continue
            if current is not None and key == "cache.type" and not fresh:
                notes.append(f"cache.type stays {current!r} (DVC had {value!r})")
                continue
            if current is not None and key != "cache.type":
                which = ".dvlite/config.local" if local else ".dvlite/config"
                raise BadInputError(f"{which}: {key} is {current!r}, but DVC's config gives {value!r}",
                                    hint="make them agree (`dvlite config`), then migrate again")
            changes.append((key, value, local))
    return changes


def _write(repo, s: Survey, files: dict[str, bytes], targets: list[str],
           config: list[tuple[str, str, bool]]) -> list[str]:
    from dvlite.fsutil import atomic_write
    from dvlite.gitignore import add_ignore

    written = []
    for target in targets:  # pointers last: they name what the rest already holds
        if not target.endswith(".dvl"):
            atomic_write(s.abs(target), files[target])
            written.append(target)
    for target in targets:
        if target.endswith(".dvl"):
            atomic_write(s.abs(target), files[target])
            written.append(target)
            ignore = add_ignore(repo, target[:-len(".dvl")])
            written += [ignore] if ignore else []
    for key, value, local in config:
        repo.config.set(key, value, local=local)
    for which in sorted({".dvlite/config.local" if local else ".dvlite/config" for _, _, local in config}):
        written.append(which)
    return written


def _open_repo(s: Survey):
    from dvlite.repo import DIRNAME, Repo

    if os.path.isdir(os.path.join(s.root, DIRNAME)):
        return Repo(s.root), False
    no_scm = dvcconfig.as_text(s.config.get("core", "no_scm") or "false").lower() == "true"
    return Repo.init(s.root, no_scm=no_scm), True


def apply(s: Survey, on_wait: Callable, callback=None, remove_dvc: bool = False) -> MigrateResult:
    """Convert everything `s` found; all or nothing (see the module docstring)."""
    from fsspec.callbacks import NoOpCallback

    from dvlite.fsutil import remove_file, remove_tree
    from dvlite.repo import exclude_local_files
    from dvlite.storage.md5index import Md5Index

    callback = callback or NoOpCallback()
    repo, fresh = _open_repo(s)
    notes = _notes(s)
    try:
        with repo.lock("migrate", on_wait):
            callback.set_size(sum(f.out.size or 0 for f in s.dvcfiles)
                              + sum(pipelines.known_size(pf) for pf in s.pipelines))
            importer = Importer(repo.odb, s.root,
                                LocalStore(s.abs(dvcconfig.cache_dir(s.config, ".dvc/config")),
                                           "the DVC cache"),
                                _remote_maker(s), os.path.join(repo.dvlite_dir, "tmp"), callback,
                                index=Md5Index(repo.cache_dir))
            files = _convert(s, repo, importer, notes)
            targets, unchanged = _compare(s, files)
            config = _config_changes(repo, s, fresh, notes)
            written = _write(repo, s, files, targets, config)
            removed = removable(s) if remove_dvc else []
            for rel in removed:
                remove_file(s.abs(rel))
            exclude_local_files(s.root)  # commits from before the switch keep the cache out of git status
    except BaseException:
        if fresh:
            remove_tree(repo.dvlite_dir)
        raise
    c = importer.counts
    return MigrateResult(written, unchanged, removed, c.cache + c.workspace + c.remote, c.bytes,
                         c.cache, c.workspace, c.remote, notes, fresh)
