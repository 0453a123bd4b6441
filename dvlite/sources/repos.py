"""Data from other dvlite repositories: `get` (a plain copy), `import` (a copy whose pointer
remembers its source) and `update` (move an import to another revision).

A source is any git repository dvlite can clone: a local path, `file://`, or any URL git
understands. It is cloned bare into a temporary directory (no work tree; over a network,
file contents are fetched only when read), the revision is resolved to a commit, and only
the pointer that holds the wanted path, plus the source's `.dvlite/config`, are read from
that commit. The data comes from the source's default remote (or the one named) into a
cache: the repository's own cache when there is one, else a temporary one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from dvlite import paths, scm
from dvlite.digest import hash_bytes, new_hasher
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
    checked_data_path,
    data_path_of,
)
from dvlite.fsutil import TMP_MARK, atomic_write, read_limited
from dvlite.outputs import Tracked, lock_outputs, owner_of
from dvlite.config import Config
from dvlite.repo import DIRNAME, Repo
from dvlite.storage.cache import Cache

DEFAULT_REV = "HEAD"  # recorded when no revision is asked for: the source's default branch


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
        raise BadInputError(f"{path} is not tracked by dvlite in {self.url} at {self.rev}",
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
        result = fetch_objects(self.view.odb, store, sizes, self.view.index_dir)
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
            raise BadInputError(f"{t.rel}/{inner} is not in the tracked directory {t.rel} "
                                f"of {self.url} at {self.rev}")
        return below


def normalise(path: str) -> str:
    """A path inside the source repository, relative to its root, `/` separators."""
    return paths.user_path(path)


@contextlib.contextmanager
def open_source(url: str, rev: str | None, odb: Cache, workdir: str | None = None
                ) -> Iterator[SourceRepo]:
    """Clone `url`, resolve `rev`, read its dvlite config at that commit.

    With a `workdir`, clones are kept there and reused for the same URL (update of many imports).
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="dvlite-source-"))
        tmp = tempfile.mkdtemp(prefix="view-", dir=workdir)
        stack.callback(shutil.rmtree, tmp, True)
        git_dir = os.path.join(workdir, "clone-" + hash_bytes(url.encode()).hex)
        if not os.path.isdir(git_dir):
            scm.clone_bare(url, git_dir)
        wanted = rev or DEFAULT_REV
        try:
            commit = scm.commit_of(git_dir, wanted)
        except BadInputError as exc:
            raise BadInputError(f"{exc.message} in {url}") from None
        config = scm.blob_at(git_dir, commit, f"{DIRNAME}/config")
        if config is None:
            raise BadInputError(f"{url} is not a dvlite repository at {wanted} "
                                f"(no {DIRNAME}/config at its root)")
        root = os.path.join(tmp, "view")
        os.makedirs(os.path.join(root, DIRNAME))
        atomic_write(os.path.join(root, DIRNAME, "config"), config, durable=False)
        origin = local_root(url)
        if origin is not None:  # its credentials for the remote live in config.local
            local_cfg = os.path.join(origin, DIRNAME, "config.local")
            if os.path.isfile(local_cfg):
                shutil.copyfile(local_cfg, os.path.join(root, DIRNAME, "config.local"))
        config = Config(os.path.join(root, DIRNAME))
        if origin is not None:
            config.repo_root = origin  # a relative remote path is relative to the source
        view = SourceView(config, odb, os.path.join(tmp, "pack-index"))
        yield SourceRepo(url, wanted, commit, git_dir, view, origin is not None)


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


def _umask() -> int:
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
        remote: str | None) -> GetResult:
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
        located = src.locate(rel)
        entries = src.entries(located, remote)
        src.fetch({e.digest: e.size for e in entries}, remote)
        odb = src.view.odb
        umask = _umask()
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
    source: Source
    changed: bool  # update: the pointer now names other data or another commit
    gitignore: str | None


def _pointer_for(repo: Repo, src: SourceRepo, rel: str, remote: str | None) -> Pointer:
    """The pointer an import of `rel` at the source's commit gets; its objects are cached here."""
    located = src.locate(rel)
    t = located.output
    source = Source(src.url, src.rev, src.commit, rel)
    if t.pointer.kind == "file":
        src.fetch({t.pointer.digest.hex: t.pointer.size}, remote)
        return Pointer("file", t.pointer.digest, t.pointer.size, 1, source)
    entries = src.entries(located, remote)
    src.fetch({e.digest: e.size for e in entries}, remote)
    if len(entries) == 1 and entries[0].path == "":
        from dvlite.digest import ALGORITHM, Digest

        e = entries[0]
        return Pointer("file", Digest(ALGORITHM, e.digest), e.size, 1, source)
    if located.inner is None:
        return Pointer("dir", t.pointer.digest, t.pointer.size, t.pointer.files, source)
    manifest = Manifest.build(entries)  # a sub-directory: a manifest of its own, stored here
    digest = repo.odb.put_bytes(manifest.to_bytes())
    return Pointer("dir", digest, manifest.size, len(manifest.entries), source)


def _materialise(repo: Repo, rel: str, old_bytes: bytes | None) -> None:
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


def import_(repo: Repo, url: str, path: str, rev: str | None, out: str | None,
            remote: str | None = None) -> ImportResult:
    from dvlite.gitignore import add_ignore
    from dvlite.outputs import load_tracked, to_rel

    rel = normalise(path)
    out_rel = to_rel(repo, out or rel.rsplit("/", 1)[-1])
    if out_rel == "":
        raise BadInputError("cannot import onto the repository root; give -o PATH")
    if out_rel.endswith(SUFFIX):
        out_rel = data_path_of(out_rel)
    tracked = load_tracked(repo)
    if any(t.rel == out_rel for t in tracked):
        hint = "use `dvlite update` to move an import to another revision"
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
    with open_source(url, rev, repo.odb) as src:
        src.url = canonical_url(url)
        pointer = _pointer_for(repo, src, rel, remote)
    repo.write(out_rel + SUFFIX, pointer.to_bytes())
    ignore = add_ignore(repo, out_rel)
    _materialise(repo, out_rel, None)
    return ImportResult(out_rel, out_rel + SUFFIX, pointer.kind, pointer.files, pointer.size,
                        pointer.source, True, ignore)


def update(repo: Repo, targets: list[str], rev: str | None, remote: str | None = None
           ) -> list[ImportResult]:
    """Move imports to `rev` (default: the revision each recorded); unchanged ones are kept."""
    from dvlite.outputs import load_tracked, select

    chosen = [t for t, _ in select(repo, load_tracked(repo), targets)]
    if targets:
        plain = [t.rel for t in chosen if t.pointer.source is None]
        if plain:
            raise BadInputError(f"{plain[0]} was not made by `dvlite import`; nothing to update")
    imports = [t for t in chosen if t.pointer.source is not None]
    results = []
    with tempfile.TemporaryDirectory(prefix="dvlite-update-") as workdir:
        for t in imports:
            old = t.pointer.source
            url = old.url
            if local_root(url) is not None and "://" not in url and not os.path.isabs(url):
                url = os.path.join(repo.root, url)  # a hand-written relative path: from the root
            with open_source(url, rev or old.rev, repo.odb, workdir) as src:
                src.url = old.url
                new = _pointer_for(repo, src, old.path, remote)
            changed = new != t.pointer
            if changed:
                old_bytes = read_limited(repo.abs(t.pointer_rel), MAX_BYTES, t.pointer_rel)
                repo.write(t.pointer_rel, new.to_bytes())
                _materialise(repo, t.rel, old_bytes)
            results.append(ImportResult(t.rel, t.pointer_rel, new.kind, new.files, new.size,
                                        new.source, changed, None))
    return results
