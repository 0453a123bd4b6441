"""The Python API: read tracked data at any revision, from the cache or the remote.

    import dvlite.api

    with dvlite.api.open("data/train.csv", repo=".", rev="v1.0", mode="r") as f:
        header = f.readline()

Paths are relative to the repository root, `/` separators: a tracked file, or a file
inside a tracked directory. `rev=None` means the pointers in the workspace as they are now;
any other revision is read from git history. The bytes always come from the cache: an
object the cache lacks is first fetched from the remote (verified) into the cache, so
the next read is local. Edited workspace files are never read: the API gives the data the
pointers name, which is what `dvlite checkout` would write.

`repo` is a path in a dvlite work tree (read in place), or the URL of a dvlite git repository
(`https://...`, `git@host:path`, `file://...`, or the path of a bare repository): that one is
cloned (bare, git history only) into a temporary directory kept for the life of the process
and fetched again when reused, and its objects come from its own default remote into a
temporary cache beside the clone, verified. `rev=None` then means the source's HEAD.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import os
import tempfile
import threading

from dvlite.api.view import DataView, Node, normalise, open_repo
from dvlite.errors import BadInputError, NotARepoError
from dvlite.repo import Repo

__all__ = ["DataView", "Node", "get_url", "lineage", "metrics_show", "open", "params_show",
           "read", "status"]


# --- which repository -----------------------------------------------------------------------

def _is_bare_git(path: str) -> bool:
    return all(os.path.exists(os.path.join(path, p)) for p in ("HEAD", "objects", "refs")) \
        and not os.path.isdir(os.path.join(path, ".git"))


def where(repo: str | os.PathLike | Repo) -> Repo | str:
    """A repository to read in place, or the URL of one to clone (see the module docstring).
    A path is never taken for the repository around it when it is another git work tree."""
    from dvlite import scm
    from dvlite.fsutil import check_inside
    from dvlite.repo import find_root
    from dvlite.sources.repos import local_root

    if isinstance(repo, Repo):
        return repo
    text = os.fspath(repo)
    root = local_root(text)
    if root is None or text.startswith("file://"):
        return text
    if not os.path.exists(root):
        raise BadInputError(f"no such repository: {text}")
    if os.path.isdir(root) and _is_bare_git(root):
        return root
    found = find_root(root)
    worktree = scm.find_worktree(root if os.path.isdir(root) else os.path.dirname(root))
    if found is not None and worktree is not None and not check_inside(found, worktree):
        raise NotARepoError(f"{text} is not in a dvlite repository (its git work tree {worktree} "
                            "has no .dvlite/)")
    return open_repo(root)


def _local(repo, what: str) -> Repo:
    found = where(repo)
    if isinstance(found, str):
        raise BadInputError(f"{what} reads a repository on this machine, not {found}",
                            hint="clone it and pass the clone's path")
    return found


_WORK: tempfile.TemporaryDirectory | None = None  # clones and their cache, for this process
_WORK_LOCK = threading.RLock()


@contextlib.contextmanager
def _source(url: str, rev: str | None):
    """The repository at `url` and `rev`, from the process's clone of it (made or refreshed)."""
    from dvlite.sources.repos import open_source
    from dvlite.storage.cache import Cache

    global _WORK
    with _WORK_LOCK:
        if _WORK is None:
            _WORK = tempfile.TemporaryDirectory(prefix="dvlite-api-")
        work = _WORK.name
        with open_source(url, rev, Cache(os.path.join(work, "cache")), work, refresh=True) as src:
            yield src


def _located(src, path):
    """What `path` names in a cloned source; FileNotFoundError when it tracks no such path."""
    from dvlite.paths import user_path
    from dvlite.sources.repos import NotTrackedError

    try:
        return src.locate(user_path(os.fspath(path)))
    except NotTrackedError as exc:
        raise FileNotFoundError(exc.message) from None


def _entries(src, located, remote: str | None):
    from dvlite.formats.manifest import Entry
    from dvlite.sources.repos import NotTrackedError

    t = located.output
    if t.pointer.kind == "file":
        return [Entry("", t.pointer.digest.hex, t.pointer.size, False)]
    try:
        return src.entries(located, remote)
    except NotTrackedError as exc:
        raise FileNotFoundError(exc.message) from None


def _open_remote(url: str, path, rev: str | None, remote: str | None):
    with _source(url, rev) as src:
        entries = _entries(src, _located(src, path), remote)
        if len(entries) != 1 or entries[0].path != "":
            raise IsADirectoryError(f"{path} is a directory in {url} at {src.rev}")
        e = entries[0]
        src.fetch({e.digest: e.size}, remote)
        return src.view.odb.open_object(e.digest)


# --- the functions ------------------------------------------------------------------------

def open(path: str | os.PathLike, repo: str | os.PathLike = ".", rev: str | None = None,
         remote: str | None = None, mode: str = "rb", encoding: str | None = None,
         errors: str | None = None, newline: str | None = None):
    """Open a tracked file (or a file inside a tracked directory) for reading, at `rev`.

    Returns a file object, usable as a context manager. `mode` is "rb" (the default) or
    "r"/"rt" for text, with `encoding`, `errors` and `newline` as for the built-in open.
    """
    if mode not in ("rb", "r", "rt"):
        raise ValueError(f"mode {mode!r}: dvlite.api.open reads only ('rb', 'r' or 'rt')")
    found = where(repo)
    if isinstance(found, str):
        f = _open_remote(found, path, rev, remote)
    else:
        view = DataView(found, rev, remote)
        f = view.open_object(view.lookup(normalise(view.repo, path)))
    if mode == "rb":
        return f
    return io.TextIOWrapper(f, encoding=encoding or "utf-8", errors=errors, newline=newline)


def read(path: str | os.PathLike, repo: str | os.PathLike = ".", rev: str | None = None,
         remote: str | None = None, mode: str = "r", encoding: str | None = None,
         errors: str | None = None) -> str | bytes:
    """The whole contents of a tracked file at `rev`: text by default, bytes with mode="rb"."""
    with open(path, repo, rev, remote, mode, encoding, errors) as f:
        return f.read()


def get_url(path: str | os.PathLike, repo: str | os.PathLike = ".", rev: str | None = None,
            remote: str | None = None) -> str:
    """Where the object of a tracked path lives on the remote.

    A large object is a file of its own: `REMOTE/objects/ab/cdef...`. A small one sits in a
    pack: `REMOTE/packs/HEX.pack#bytes=START-END` (an HTTP-style inclusive byte range of the
    pack). For a tracked directory, the URL of its manifest. An object the remote does not
    hold raises FileNotFoundError.
    """
    found = where(repo)
    if isinstance(found, str):
        return _url_of_remote(found, path, rev, remote)
    from dvlite.remotes.config import choose

    view = DataView(found, rev, remote)
    rel = normalise(view.repo, path)
    node = view.lookup(rel)
    digest = node.digest
    if digest is None:
        t = view.tracked(rel)
        if t is None:
            raise IsADirectoryError(f"{rel} is a directory inside tracked data; it has no object")
        digest = t.pointer.digest.hex
    return _object_url(choose(view.repo.config, remote), digest, view.repo.index_dir, rel)


def _url_of_remote(url: str, path, rev: str | None, remote: str | None) -> str:
    from dvlite.remotes.config import choose

    with _source(url, rev) as src:
        located = _located(src, path)
        entries = [] if located.inner is None else _entries(src, located, remote)
        if located.inner is None:
            digest = located.output.pointer.digest.hex  # a file, or a directory's manifest
        elif len(entries) == 1 and entries[0].path == "":
            digest = entries[0].digest
        else:
            raise IsADirectoryError(f"{path} is a directory inside tracked data; it has no object")
        cfg = choose(src.view.config, src.remote_name(remote))
        return _object_url(cfg, digest, src.view.index_dir, os.fspath(path))


def _object_url(cfg, digest: str, index_dir: str, rel: str) -> str:
    from dvlite.remotes import inventory
    from dvlite.remotes.backend import Remote
    from dvlite.storage.layout import object_key, pack_key

    url = cfg.url.rstrip("/")
    store = Remote(cfg)
    inv = inventory.inventory(store, {digest}, index_dir, store.default_jobs)
    loc = inv.packed.get(digest)
    if loc is not None:
        return f"{url}/{pack_key(loc.pack, 'pack')}#bytes={loc.offset}-{loc.offset + loc.length - 1}"
    if digest not in inv.loose:
        raise FileNotFoundError(f"{rel}: object {digest} is not on remote {cfg.name!r}; push it first")
    return f"{url}/{object_key(digest)}"


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def status(targets: list[str] | None = None, repo: str | os.PathLike = ".") -> list[dict]:
    """What `dvlite status --json` lists under "paths": one dict per tracked output.

    Each: {"path", "kind", "flags": [...], "changes": [{"kind", "path"}, ...]}; clean
    outputs have no flags. Targets are relative to the repository root.
    """
    from dvlite.data.status import status as workspace_status

    r = _local(repo, "dvlite.api.status")
    absolute = [r.abs(normalise(r, t)) for t in targets or []]
    return [_plain(s) for s in workspace_status(r, absolute)]


def lineage(path: str | os.PathLike, repo: str | os.PathLike = ".", rev: str | None = None):
    """The pipeline stages that produced `path`, down to raw data (as `dvlite lineage --json`)."""
    from dvlite.pipelines.lineage import lineage as lineage_of

    r = _local(repo, "dvlite.api.lineage")
    return lineage_of(r, normalise(r, path), rev)


# --- params and metrics, as dvc.api has them ------------------------------------------------

@dataclasses.dataclass
class _Files:
    """A repository's files at one revision: read, the pipeline, a cached out's bytes."""

    read: object  # rel -> bytes | None
    load_pipeline: object  # () -> dvlite.pipelines.dag.Pipeline | None (read when needed)
    out_bytes: object  # rel -> bytes | None: the file, else a cached stage out's object
    label: str

    @functools.cached_property
    def pipeline(self):
        return self.load_pipeline()


def _local_files(r: Repo, rev: str | None) -> _Files:
    from dvlite.pipelines.project import lock_at, out_at, pipeline_at, read_at

    def out_bytes(rel: str):
        return read_at(r, rev, rel) if rev is None else out_at(r, rev, rel, lock_at(r, rev))

    return _Files(lambda rel: read_at(r, rev, rel), lambda: pipeline_at(r, rev), out_bytes,
                  rev or "")


def _source_files(src, remote: str | None) -> _Files:
    from dvlite import scm
    from dvlite.formats import lockfile
    from dvlite.outputs import LOCK_FILE, PIPELINE_FILE
    from dvlite.pipelines import spec
    from dvlite.pipelines.dag import combine
    from dvlite.pipelines.project import Locks

    label = src.rev

    def read(rel: str) -> bytes | None:
        return scm.blob_at(src.git_dir, src.commit, rel)

    def named(name: str) -> list[str]:  # the root's first
        found = [p for p in scm.paths_at(src.git_dir, src.commit) if p.rsplit("/", 1)[-1] == name]
        return sorted(found, key=lambda p: (p.count("/"), p))

    options = {k.removeprefix("parsing."): v for k, v in src.view.config.items().items()
               if k.startswith("parsing.")}

    def pipeline():
        files = [spec.parse_file(read(p) or b"", p, read, options, f"{p} at {label}")
                 for p in named(PIPELINE_FILE)]
        return combine(files, check=False) if files else None

    locks = Locks({p: lockfile.from_bytes(read(p) or b"", f"{p} at {label}")
                   for p in named(LOCK_FILE)})

    def out_bytes(rel: str):
        data = read(rel)
        found = None if data is not None else locks.merged().producer_of(rel)
        if found is not None and found[1].kind == "file" and found[1].path == rel:
            digest = found[1].digest.hex
            src.fetch({digest: found[1].size}, remote)
            data = src.view.odb.read_verified(digest)
        return data

    return _Files(read, pipeline, out_bytes, label)


def _with_files(repo, rev: str | None, fn):
    found = where(repo)
    if isinstance(found, str):
        with _source(found, rev) as src:
            return fn(_source_files(src, None))
    return fn(_local_files(found, rev))


def _merged(docs: dict) -> dict:
    """One dict of every file's top-level keys, as dvc.api gives them: a key found in more than
    one file is named `FILE:KEY`."""
    from collections import Counter

    counts = Counter(k for doc in docs.values() if isinstance(doc, dict) for k in doc)
    out: dict = {}
    for file, doc in docs.items():
        if not isinstance(doc, dict):
            out[file] = doc
            continue
        for k, v in doc.items():
            out[k if counts[k] == 1 else f"{file}:{k}"] = v
    return out


def _doc(files: _Files, rel: str, data: bytes | None):
    from dvlite.formats import params as params_mod

    if data is None:
        return None
    origin = rel + (f" at {files.label}" if files.label else "")
    return params_mod.lookup(params_mod.parse(data, origin), "")


def _placed(doc: dict, key: str, value) -> None:
    *parents, leaf = key.split(".")
    for p in parents:
        doc = doc.setdefault(p, {})
    doc[leaf] = value


def _params(files: _Files, targets: tuple[str, ...], stages) -> dict:
    from dvlite.formats import params as params_mod
    from dvlite.pipelines.values import params_files

    if stages is None:
        wanted = {rel: [""] for rel in (targets or sorted(params_files(files.pipeline)))}
    else:
        names = [stages] if isinstance(stages, str) else list(stages)
        known = files.pipeline.stages if files.pipeline is not None else {}
        wanted = {}
        for name in names:
            if name not in known:
                raise BadInputError(f"unknown stage {name!r}",
                                    hint=f"stages: {', '.join(known) or 'none'}")
            for ref in known[name].params:
                if not targets or ref.file in targets:
                    wanted.setdefault(ref.file, []).append(ref.key)
    docs = {}
    for rel, keys in wanted.items():
        doc = _doc(files, rel, files.read(rel))
        if doc is None:
            continue
        if "" in keys:
            docs[rel] = doc
            continue
        picked: dict = {}
        for key in keys:
            try:
                _placed(picked, key, params_mod.lookup(doc, key))
            except KeyError:
                continue
        docs[rel] = picked
    return _merged(docs)


def params_show(*targets: str, stages=None, repo: str | os.PathLike = ".",
                rev: str | None = None) -> dict:
    """The params of a repository as one dict, as `dvc.api.params_show` gives them.

    Without targets: every params file the pipeline reads (and params.yaml). With `stages`
    (a name or a list), only the keys those stages read. A top-level key found in more than
    one file is named `FILE:KEY`. `rev=None`: the workspace (a URL: its HEAD).
    """
    return _with_files(repo, rev, lambda files: _params(files, targets, stages))


def metrics_show(*targets: str, repo: str | os.PathLike = ".", rev: str | None = None) -> dict:
    """The metrics of a repository as one dict, as `dvc.api.metrics_show` gives them.

    Without targets: every metrics file of the pipeline's stages, from git or (a cached out)
    from the cache, or the source's remote for a repository given by URL. Merged as in
    `params_show`.
    """
    from dvlite.pipelines.values import metrics_outs

    def show(files: _Files) -> dict:
        rels = targets or [o.path for o in metrics_outs(files.pipeline)]
        docs = {rel: _doc(files, rel, files.out_bytes(rel)) for rel in dict.fromkeys(rels)}
        return _merged({rel: doc for rel, doc in docs.items() if doc is not None})

    return _with_files(repo, rev, show)
