"""Data from other dvlite repositories: `get` (a plain copy), `import` (a copy whose pointer
remembers its source) and `update_import` (move one to another revision).

A source is any git repository dvlite can clone (a path, `file://`, any URL git understands),
cloned bare (over a network, file contents are fetched only when read). Only the pointer that
holds the wanted path and the source's `.dvlite/config` are read at the resolved commit; the
data comes from the source's default remote (or the one named) into a cache: the repository's
own cache when there is one, else a temporary one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from dvlite import paths, scm
from dvlite.config import Config
from dvlite.digest import ALGORITHM, Digest, hash_bytes, new_hasher
from dvlite.errors import (
    BadInputError,
    ChangesWouldBeLostError,
    DvliteError,
    IntegrityError,
    RemoteError,
)
from dvlite.formats.manifest import Entry, Manifest
from dvlite.formats.pointer import (
    MAX_BYTES,
    SUFFIX,
    Pointer,
    Source,
    UrlSource,
    checked_data_path,
    data_path_of,
)
from dvlite.fsutil import TMP_MARK, atomic_write, read_limited
from dvlite.outputs import Tracked, lock_outputs, owner_of
from dvlite.repo import DIRNAME, Repo
from dvlite.storage.cache import Cache

DEFAULT_REV = "HEAD"  # recorded when no revision is asked for: the source's default branch


class NotTrackedError(BadInputError):
    """The path asked for is not tracked data in the source at that revision."""


# --- the source repository ----------------------------------------------------------------

def local_root(url: str) -> str | None:
    """The directory a local source lives in (a path or `file://` URL), else None."""
    if url.startswith("file://"):
        return os.path.abspath(unquote(urlparse(url).path))
    if "://" not in url and (":" not in url.split("/", 1)[0] or os.path.exists(url)):
        return os.path.abspath(url)
    return None


def canonical_url(url: str) -> str:
    """What an import records: local paths made absolute, URLs as given."""
    if "://" not in url and local_root(url) is not None:
        return os.path.abspath(url)
    return url


@dataclass(frozen=True)
class SourceView:
    """The source's config (its remotes) at the resolved commit, and the cache its objects
    come into (this repository's, or a temporary one)."""

    config: Config
    odb: Cache
    index_dir: str  # where the source's remote's pack indexes are kept for this command


@dataclass(frozen=True)
class Located:
    """What a path names in the source: a tracked output, and the part of it wanted."""

    output: Tracked
    inner: str | None  # a file or sub-directory inside a tracked directory; None for all of it


@dataclass
class SourceRepo:
    url: str
    rev: str
    commit: str
    git_dir: str
    view: SourceView
    local: bool  # the source is on this machine (a relative remote path is usable)
    jobs: int | None = None  # parallel requests to its remote (None: the backend's default)

    def pointer_paths(self) -> list[str]:
        return [
            p for p in scm.paths_at(self.git_dir, self.commit)
            if p.endswith(SUFFIX) and not p.startswith(DIRNAME + "/")
            and not p.rsplit("/", 1)[-1].startswith(TMP_MARK)
        ]

    def locate(self, path: str) -> Located:
        rel = normalise(path)
        if rel.endswith(SUFFIX):
            rel = data_path_of(rel)
        pointers = set(self.pointer_paths())
        candidates = [rel + SUFFIX] + [
            "/".join(rel.split("/")[:i]) + SUFFIX for i in range(len(rel.split("/")) - 1, 0, -1)
        ]
        for ptr in candidates:
            if ptr in pointers:
                data = scm.blob_at(self.git_dir, self.commit, ptr) or b""
                origin = f"{ptr} at {self.rev}"
                t = Tracked(checked_data_path(ptr, origin), Pointer.from_bytes(data, origin))
                inner = None if t.rel == rel else rel[len(t.rel) + 1:]
                if inner is not None and t.pointer.kind == "file":
                    break
                return Located(t, inner)
        for t in self.stage_outputs():  # outputs of pipeline stages, recorded in dvlite.lock
            if t.rel == rel:
                return Located(t, None)
            if rel.startswith(t.rel + "/") and t.pointer.kind == "dir":
                return Located(t, rel[len(t.rel) + 1:])
        hint = None
        if any(p.startswith(rel + "/") for p in pointers):
            inside = sorted(data_path_of(p) for p in pointers if p.startswith(rel + "/"))
            hint = f"{rel} holds tracked paths; ask for one of them: {', '.join(inside[:5])}"
        raise NotTrackedError(f"{path} is not tracked by dvlite in {self.url} at {self.rev}",
                              hint=hint)

    def stage_outputs(self) -> list[Tracked]:
        data = scm.blob_at(self.git_dir, self.commit, "dvlite.lock")
        return lock_outputs(data, f"dvlite.lock at {self.rev}") if data is not None else []

    def remote_name(self, remote: str | None) -> str:
        """The remote objects come from; a clear error when the source has none usable."""
        from dvlite.remotes.config import choose, remote_configs

        try:
            cfg = choose(self.view.config, remote)
        except BadInputError as exc:
            known = ", ".join(remote_configs(self.view.config)) or "none"
            raise BadInputError(f"{self.url} at {self.rev}: {exc.message}",
                                hint=f"its remotes: {known}") from None
        raw = self.view.config.get(f"remote.{cfg.name}.url") or ""
        if not self.local and "://" not in raw and not os.path.isabs(raw):
            raise BadInputError(
                f"{self.url}: remote {cfg.name!r} is a relative path ({raw}), "
                "usable only when the source repository is on this machine",
                hint="clone the source repository locally and give its path",
            )
        return cfg.name

    def fetch(self, sizes: dict[str, int], remote: str | None) -> None:
        """Bring these objects into the cache, verified; raise when any could not come."""
        from dvlite.remotes.backend import Remote
        from dvlite.remotes.config import choose
        from dvlite.remotes.transfer import fetch_objects

        if not self.view.odb.missing(sizes):
            return
        store = Remote(choose(self.view.config, self.remote_name(remote)))
        store.read_layout()
        result = fetch_objects(self.view.odb, store, sizes, self.view.index_dir, self.jobs)
        where = f"remote {result.remote!r} of {self.url}"
        if result.failed:
            _digest, reason = result.failed[0]
            raise RemoteError(f"{len(result.failed)} object(s) could not be downloaded from {where}: "
                              f"{reason}")
        if result.corrupt_on_remote:
            raise IntegrityError(f"{len(result.corrupt_on_remote)} object(s) are corrupt on {where}: "
                                 f"{result.corrupt_on_remote[0][1]}")
        if result.missing_on_remote:
            raise DvliteError(
                f"{len(result.missing_on_remote)} object(s) are missing on {where} "
                f"(first: {result.missing_on_remote[0][0]})",
                hint="the source repository has not pushed this data; ask for `dvlite push` there",
            )

    def manifest(self, t: Tracked, remote: str | None) -> Manifest:
        digest = t.pointer.digest.hex
        self.fetch({digest: 0}, remote)
        return self.view.odb.manifest(digest, f"{t.pointer_rel} at {self.rev}")

    def entries(self, located: Located, remote: str | None) -> list[Entry]:
        """The files the located path names, paths relative to it ("" for a single file)."""
        t, inner = located.output, located.inner
        if t.pointer.kind == "file":
            return [Entry("", t.pointer.digest.hex, t.pointer.size, False)]
        manifest = self.manifest(t, remote)
        if inner is None:
            return list(manifest.entries)
        exact = [Entry("", e.digest, e.size, e.executable) for e in manifest.entries if e.path == inner]
        if exact:
            return exact
        below = [Entry(e.path[len(inner) + 1:], e.digest, e.size, e.executable)
                 for e in manifest.entries if e.path.startswith(inner + "/")]
        if not below:
            raise NotTrackedError(f"{t.rel}/{inner} is not in the tracked directory {t.rel} "
                                  f"of {self.url} at {self.rev}")
        return below


def normalise(path: str) -> str:
    """A path inside the source repository, relative to its root, `/` separators."""
    return paths.user_path(path)


def clone(url: str, rev: str | None, workdir: str, refresh: bool = False) -> tuple[str, str, str]:
    """A bare clone of `url` under `workdir` (made once per URL, then reused), and the commit
    `rev` names there: (git_dir, the revision as asked, commit). With `refresh`, a reused clone
    first fetches the source's branches and tags (unless `rev` is a commit it already has)."""
    git_dir = os.path.join(workdir, "clone-" + hash_bytes(url.encode()).hex)
    wanted = rev or DEFAULT_REV
    if not os.path.isdir(git_dir):
        partial = os.path.join(workdir, TMP_MARK + secrets.token_hex(6))
        try:
            scm.clone_bare(url, partial)
            os.rename(partial, git_dir)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    elif refresh and not _has_commit(git_dir, wanted):
        scm.fetch_refs(git_dir, "origin", ["refs/heads/*", "refs/tags/*"])
    try:
        commit = scm.commit_of(git_dir, wanted)
    except BadInputError as exc:
        raise BadInputError(f"{exc.message} in {url}") from None
    return git_dir, wanted, commit


def _has_commit(git_dir: str, sha: str) -> bool:
    """Whether `sha` is a full commit id the clone holds (nothing to fetch for it)."""
    if len(sha) not in (40, 64) or any(c not in "0123456789abcdef" for c in sha):
        return False
    try:
        return scm.commit_of(git_dir, sha) == sha
    except BadInputError:
        return False


@contextlib.contextmanager
def open_source(url: str, rev: str | None, odb: Cache, workdir: str | None = None,
                refresh: bool = False) -> Iterator[SourceRepo]:
    """Clone `url`, resolve `rev`, read its dvlite config at that commit.

    With a `workdir`, clones are kept there and reused for the same URL (update of many
    imports; the API, which passes `refresh` to see new commits).
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="dvlite-source-"))
        git_dir, wanted, commit = clone(url, rev, workdir, refresh)
        tmp = tempfile.mkdtemp(prefix="view-", dir=workdir)
        stack.callback(shutil.rmtree, tmp, True)
        yield source_at(url, wanted, commit, git_dir, odb, tmp)


def source_at(url: str, rev: str, commit: str, git_dir: str, odb: Cache, tmp: str) -> SourceRepo:
    """The source repository at `commit` of a clone; its config is written under `tmp`."""
    config = scm.blob_at(git_dir, commit, f"{DIRNAME}/config")
    if config is None:
        from dvlite.sources import preswitch

        if preswitch.is_pre_switch(git_dir, commit):
            return preswitch.pre_switch_source(url, rev, commit, git_dir, odb, local_root(url), tmp)
        raise BadInputError(f"{url} is not a dvlite repository at {rev} "
                            f"(no {DIRNAME}/config at its root)")
    root = os.path.join(tmp, "view")
    os.makedirs(os.path.join(root, DIRNAME))
    atomic_write(os.path.join(root, DIRNAME, "config"), config, durable=False)
    origin = local_root(url)
    if origin is not None:  # its credentials for the remote live in config.local
        local_cfg = os.path.join(origin, DIRNAME, "config.local")
        if os.path.isfile(local_cfg):
            shutil.copyfile(local_cfg, os.path.join(root, DIRNAME, "config.local"))
    cfg = Config(os.path.join(root, DIRNAME))
    if origin is not None:
        cfg.repo_root = origin  # a relative remote path is relative to the source
    view = SourceView(cfg, odb, os.path.join(tmp, "pack-index"))
    return SourceRepo(url, rev, commit, git_dir, view, origin is not None)


def cache_for(repo: Repo | None, tmp: str) -> Cache:
    """This repository's cache, or without one a temporary cache in `tmp`."""
    return repo.odb if repo is not None else Cache(os.path.join(tmp, "cache"))


# --- get ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GetResult:
    url: str
    path: str
    rev: str
    commit: str
    out: str
    kind: str  # file | dir
    files: int
    size: int


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _copy_object(odb, digest: str, dest: str, executable: bool, umask: int) -> None:
    """Write cache object `digest` to `dest` atomically, checking its bytes on the way."""
    h = new_hasher()

    def check() -> None:
        if h.hexdigest() != digest:
            raise IntegrityError(f"cache object {digest} is corrupt", hint="run `dvlite fsck --repair`")

    def write(out) -> None:
        with odb.open_object(digest) as src:  # loose, or read from a pack of the cache
            while chunk := src.read(1 << 20):
                h.update(chunk)
                out.write(chunk)

    mode = (0o777 if executable else 0o666) & ~umask
    atomic_write(dest, writer=write, mode=mode, durable=False, before_replace=check)


def get(repo: Repo | None, url: str, path: str, rev: str | None, out: str | None,
        remote: str | None, jobs: int | None = None) -> GetResult:
    """Copy a tracked path of another repository to `out` (default: its name, here)."""
    rel = normalise(path)
    out = out or rel.rsplit("/", 1)[-1]
    if os.path.lexists(out):
        raise BadInputError(f"{out} already exists", hint="remove it, or choose another name with -o")
    parent = os.path.dirname(os.path.abspath(out)) or "."
    if not os.path.isdir(parent):
        raise BadInputError(f"no such directory: {parent}")
    # without a repository, the temporary cache sits beside the output: same disk, no /tmp limit
    where = None if repo is not None else parent
    with tempfile.TemporaryDirectory(prefix=TMP_MARK + "get-", dir=where) as tmp, \
            open_source(url, rev, cache_for(repo, tmp), tmp) as src:
        src.jobs = jobs
        located = src.locate(rel)
        entries = src.entries(located, remote)
        src.fetch({e.digest: e.size for e in entries}, remote)
        odb = src.view.odb
        umask = current_umask()
        single = len(entries) == 1 and entries[0].path == ""
        if single:
            e = entries[0]
            _copy_object(odb, e.digest, out, e.executable, umask)
        else:
            staging = tempfile.mkdtemp(prefix=TMP_MARK + "get-", dir=parent)
            try:
                for e in entries:
                    dest = os.path.join(staging, *e.path.split("/"))
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    _copy_object(odb, e.digest, dest, e.executable, umask)
                os.chmod(staging, 0o777 & ~umask)
                os.rename(staging, out)  # the directory appears whole, or not at all
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return GetResult(url, rel, src.rev, src.commit, out, "file" if single else "dir",
                         len(entries), sum(e.size for e in entries))


# --- import, update -----------------------------------------------------------------------

@dataclass(frozen=True)
class ImportResult:
    path: str  # repo-relative data path
    pointer_path: str
    kind: str
    files: int
    size: int
    source: Source | UrlSource
    changed: bool  # update: the pointer now names other data, another commit or version
    gitignore: str | None


def _pointer_for(repo: Repo, src: SourceRepo, rel: str, remote: str | None) -> Pointer:
    """The pointer an import of `rel` at the source's commit gets; its objects are cached here."""
    located = src.locate(rel)
    t = located.output
    source = Source(src.url, src.rev, src.commit, rel)
    entries = src.entries(located, remote)
    src.fetch({e.digest: e.size for e in entries}, remote)
    if len(entries) == 1 and entries[0].path == "":  # a file, or one inside a tracked directory
        e = entries[0]
        return Pointer("file", Digest(ALGORITHM, e.digest), e.size, 1, source)
    if located.inner is None:
        return Pointer("dir", t.pointer.digest, t.pointer.size, t.pointer.files, source)
    manifest = Manifest.build(entries)  # a sub-directory: a manifest of its own, stored here
    digest = repo.odb.put_bytes(manifest.to_bytes())
    return Pointer("dir", digest, manifest.size, len(manifest.entries), source)


def materialise(repo: Repo, rel: str, old_bytes: bytes | None) -> None:
    """Check out the data the new pointer names; on refusal, put the old pointer back."""
    from dvlite.data import checkout as checkout_mod

    try:
        result = checkout_mod.checkout(repo, [repo.abs(rel)])
    except ChangesWouldBeLostError:
        if old_bytes is None:
            repo.guard.remove_file(rel + SUFFIX)
        else:
            repo.write(rel + SUFFIX, old_bytes)
        raise
    if not result.ok:
        bad = result.missing + result.corrupt
        raise IntegrityError(f"{len(bad)} file(s) of {rel} could not be checked out: {bad[0][0]}")


def check_new_output(repo: Repo, out: str) -> str:
    """The repo-relative path an import may write: inside the repository, not tracked, not
    inside or around tracked data, not on disk, not in git."""
    from dvlite.outputs import load_tracked, to_rel

    out_rel = to_rel(repo, out)
    if out_rel == "":
        raise BadInputError("cannot import onto the repository root; give -o PATH")
    if out_rel.endswith(SUFFIX):
        out_rel = data_path_of(out_rel)
    tracked = load_tracked(repo)
    if any(t.rel == out_rel for t in tracked):
        hint = "use `dvlite update` to bring an import up to date"
        raise BadInputError(f"{out_rel} is already tracked ({out_rel}{SUFFIX})", hint=hint)
    owner = owner_of(out_rel, tracked)
    if owner is not None:
        raise BadInputError(f"{out_rel} is inside the tracked directory {owner.rel}")
    if any(t.rel.startswith(out_rel + "/") for t in tracked):
        raise BadInputError(f"{out_rel} holds tracked paths; choose another name with -o")
    if os.path.lexists(repo.abs(out_rel)):
        raise BadInputError(f"{out_rel} already exists", hint="remove it, or choose another name with -o")
    if repo.scm is not None and repo.scm.tracked_under(repo.abs(out_rel)):
        raise BadInputError(f"{out_rel} is tracked by git")
    return out_rel


def import_(repo: Repo, url: str, path: str, rev: str | None, out: str | None,
            remote: str | None = None, jobs: int | None = None) -> ImportResult:
    from dvlite.gitignore import add_ignore

    rel = normalise(path)
    out_rel = check_new_output(repo, out or rel.rsplit("/", 1)[-1])
    with open_source(url, rev, repo.odb) as src:
        src.url, src.jobs = canonical_url(url), jobs
        pointer = _pointer_for(repo, src, rel, remote)
    repo.write(out_rel + SUFFIX, pointer.to_bytes())
    ignore = add_ignore(repo, out_rel)
    materialise(repo, out_rel, None)
    return ImportResult(out_rel, out_rel + SUFFIX, pointer.kind, pointer.files, pointer.size,
                        pointer.source, True, ignore)


def update_import(repo: Repo, t: Tracked, rev: str | None, remote: str | None,
                  workdir: str, jobs: int | None = None) -> ImportResult:
    """Move a repository import to `rev` (default: the revision it recorded)."""
    old = t.pointer.source
    with open_source(from_root(repo, old.url), rev or old.rev, repo.odb, workdir) as src:
        src.url, src.jobs = old.url, jobs
        new = _pointer_for(repo, src, old.path, remote)
    changed = rewrite_pointer(repo, t, new, check_out=True)
    return ImportResult(t.rel, t.pointer_rel, new.kind, new.files, new.size, new.source,
                        changed, None)


def from_root(repo: Repo, url: str) -> str:
    """A recorded source; a hand-written relative path is taken from the repository root."""
    if local_root(url) is not None and "://" not in url and not os.path.isabs(url):
        return os.path.join(repo.root, url)
    return url


def rewrite_pointer(repo: Repo, t: Tracked, new: Pointer, check_out: bool) -> bool:
    """Write `new` over an import's pointer if it differs, then (`check_out`) its data; on a
    refused checkout the old pointer is put back. Whether it changed."""
    if new == t.pointer:
        return False
    old_bytes = read_limited(repo.abs(t.pointer_rel), MAX_BYTES, t.pointer_rel)
    repo.write(t.pointer_rel, new.to_bytes())
    if check_out:
        materialise(repo, t.rel, old_bytes)
    return True
