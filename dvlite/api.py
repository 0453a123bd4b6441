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
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import os
from dataclasses import dataclass

from dvlite.errors import BadInputError, IntegrityError, RemoteError
from dvlite.manifest import Manifest
from dvlite.repo import Repo
from dvlite.tracked import Tracked, owner_of

__all__ = ["DataView", "Node", "get_url", "lineage", "open", "read", "status"]


@dataclass(frozen=True)
class Node:
    """A path as the data at one revision has it."""

    path: str
    kind: str  # file | directory
    size: int  # 0 for a directory
    digest: str | None  # the object of a file; None for a directory
    executable: bool = False


def _repo(repo: str | os.PathLike | Repo) -> Repo:
    if isinstance(repo, Repo):
        return repo
    return Repo.find(os.fspath(repo))


def normalise(repo: Repo, path: str | os.PathLike) -> str:
    """A user path as a repo-relative path: relative ones are taken from the repository root."""
    text = os.fspath(path)
    if os.path.isabs(text):
        rel = os.path.relpath(os.path.realpath(text), repo.root)
        if rel == ".." or rel.startswith(".." + os.sep):
            raise BadInputError(f"{text} is outside the repository ({repo.root})")
        text = rel
    parts = [p for p in text.replace(os.sep, "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadInputError(f"invalid path {text!r}: '..' is not allowed")
    return "/".join(parts)


class DataView:
    """The tracked data of a repository at one revision, as a tree of files and directories.

    Manifests of tracked directories are read from the cache, and fetched from the remote
    into the cache when missing. `open_object` does the same for file contents.
    """

    def __init__(self, repo: str | os.PathLike | Repo = ".", rev: str | None = None,
                 remote: str | None = None):
        from dvlite.history import tracked_at

        self.repo = _repo(repo)
        self.rev = rev
        self.remote = remote
        self.outputs: list[Tracked] = tracked_at(self.repo, rev)
        self._by_rel = {t.rel: t for t in self.outputs}
        self._manifests: dict[str, Manifest] = {}

    @property
    def label(self) -> str:
        return "the workspace" if self.rev is None else self.rev

    # --- objects --------------------------------------------------------------------------
    def ensure(self, sizes: dict[str, int]) -> None:
        """Bring these objects (digest -> size) into the cache from the remote if missing."""
        from dvlite.sync import fetch_objects

        if not self.repo.odb.missing(sizes):
            return
        result = fetch_objects(self.repo, sizes, self.remote)
        if result.failed:
            raise RemoteError(f"could not download from remote {result.remote!r}: {result.failed[0][1]}")
        if result.corrupt_on_remote:
            raise IntegrityError(f"corrupt object on remote {result.remote!r}: "
                                 f"{result.corrupt_on_remote[0][1]}")
        if result.missing_on_remote:
            digest = result.missing_on_remote[0][0]
            raise IntegrityError(f"object {digest} is neither in the cache nor on remote "
                                 f"{result.remote!r}", hint="push it from where it was added")

    def manifest(self, t: Tracked) -> Manifest:
        digest = t.pointer.digest.hex
        if digest not in self._manifests:
            self.ensure({digest: 0})
            data = self.repo.odb.read_verified(digest)
            self._manifests[digest] = Manifest.from_bytes(data, f"{t.pointer_rel} at {self.label}")
        return self._manifests[digest]

    def open_object(self, node: Node):
        if node.kind != "file" or node.digest is None:
            raise IsADirectoryError(f"{node.path} is a directory")
        self.ensure({node.digest: node.size})
        # a loose object is opened in place (seekable, no copy); a packed one is read from its pack
        return self.repo.odb.open(node.digest)

    # --- the tree -------------------------------------------------------------------------
    def _missing(self, rel: str) -> FileNotFoundError:
        return FileNotFoundError(f"{rel} is not tracked by dvlite in {self.label}")

    def lookup(self, rel: str) -> Node:
        if rel == "":
            return Node("", "directory", 0, None)
        t = self._by_rel.get(rel)
        if t is not None:
            if t.pointer.kind == "file":
                return Node(rel, "file", t.pointer.size, t.pointer.digest.hex)
            return Node(rel, "directory", 0, None)
        owner = owner_of(rel, self.outputs)
        if owner is not None:
            inner = rel[len(owner.rel) + 1:]
            for e in self.manifest(owner).entries:
                if e.path == inner:
                    return Node(rel, "file", e.size, e.digest, e.executable)
                if e.path.startswith(inner + "/"):
                    return Node(rel, "directory", 0, None)
            raise self._missing(rel)
        if any(t.rel.startswith(rel + "/") for t in self.outputs):
            return Node(rel, "directory", 0, None)
        raise self._missing(rel)

    def children(self, rel: str) -> list[Node]:
        """What a directory holds, one level down (sorted by name)."""
        found: dict[str, Node] = {}
        prefix = rel + "/" if rel else ""
        owner = self._by_rel.get(rel) or owner_of(rel, self.outputs)
        if owner is not None and owner.pointer.kind == "dir":
            inner = rel[len(owner.rel) + 1:] + "/" if rel != owner.rel else ""
            for e in self.manifest(owner).entries:
                if not e.path.startswith(inner):
                    continue
                head, sep, _rest = e.path[len(inner):].partition("/")
                full = prefix + head
                found[full] = (Node(full, "directory", 0, None) if sep
                               else Node(full, "file", e.size, e.digest, e.executable))
            return [found[k] for k in sorted(found)]
        for t in self.outputs:
            if not t.rel.startswith(prefix):
                continue
            head, sep, _rest = t.rel[len(prefix):].partition("/")
            full = prefix + head
            found[full] = Node(full, "directory", 0, None) if sep else self.lookup(full)
        return [found[k] for k in sorted(found)]

    def files_under(self, rel: str) -> list[Node]:
        """Every file at or below `rel`, sorted by path."""
        node = self.lookup(rel)
        if node.kind == "file":
            return [node]
        out: list[Node] = []
        prefix = rel + "/" if rel else ""
        owner = self._by_rel.get(rel) or owner_of(rel, self.outputs)
        candidates = [owner] if owner is not None else [
            t for t in self.outputs if t.rel.startswith(prefix)
        ]
        for t in candidates:
            if t.pointer.kind == "file":
                out.append(Node(t.rel, "file", t.pointer.size, t.pointer.digest.hex))
                continue
            for e in self.manifest(t).entries:
                full = f"{t.rel}/{e.path}"
                if full.startswith(prefix):
                    out.append(Node(full, "file", e.size, e.digest, e.executable))
        return sorted(out, key=lambda n: n.path)


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
    view = DataView(repo, rev, remote)
    node = view.lookup(normalise(view.repo, path))
    f = view.open_object(node)
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
    from dvlite import packstore
    from dvlite.remote import Remote, choose
    from dvlite.sync import index_cache

    view = DataView(repo, rev, remote)
    rel = normalise(view.repo, path)
    node = view.lookup(rel)
    digest = node.digest
    if digest is None:
        t = view._by_rel.get(rel)
        if t is None:
            raise IsADirectoryError(f"{rel} is a directory inside tracked data; it has no object")
        digest = t.pointer.digest.hex
    cfg = choose(view.repo.config, remote)
    url = cfg.url.rstrip("/")
    remote_ = Remote(cfg)
    inv = packstore.inventory(remote_, {digest}, index_cache(view.repo), remote_.default_jobs)
    loc = inv.packed.get(digest)
    if loc is not None:
        return f"{url}/packs/{loc.pack}.pack#bytes={loc.offset}-{loc.offset + loc.length - 1}"
    if digest not in inv.loose:
        raise FileNotFoundError(f"{rel}: object {digest} is not on remote {cfg.name!r}; push it first")
    return f"{url}/objects/{digest[:2]}/{digest[2:]}"


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
    from dvlite import track

    r = _repo(repo)
    absolute = [r.abs(normalise(r, t)) for t in targets or []]
    return [_plain(s) for s in track.status(r, absolute)]


def lineage(path: str | os.PathLike, repo: str | os.PathLike = ".", rev: str | None = None):
    """The pipeline stages that produced `path` (from dvlite.run, the pipelines module)."""
    if importlib.util.find_spec("dvlite.run") is None:
        raise NotImplementedError(
            "dvlite.api.lineage needs pipelines (dvlite.run), which this dvlite does not have yet"
        )
    from dvlite import run

    r = _repo(repo)
    return run.lineage(r, normalise(r, path), rev)
