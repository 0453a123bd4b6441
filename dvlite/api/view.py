"""The tracked data of a repository at one revision, as a tree of files and directories:
what `dvlite.api` and the `dvlite://` filesystem read."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dvlite.errors import BadInputError, IntegrityError, RemoteError
from dvlite.formats.manifest import Manifest
from dvlite.outputs import Tracked, owner_of
from dvlite.paths import user_path
from dvlite.repo import Repo


@dataclass(frozen=True)
class Node:
    """A path as the data at one revision has it."""

    path: str
    kind: str  # file | directory
    size: int  # 0 for a directory
    digest: str | None  # the object of a file; None for a directory
    executable: bool = False


def open_repo(repo: str | os.PathLike | Repo) -> Repo:
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
    return user_path(text)


class DataView:
    """The tracked data of a repository at one revision, as a tree of files and directories.

    Manifests of tracked directories are read from the cache, and fetched from the remote
    into the cache when missing. `open_object` does the same for file contents.
    """

    def __init__(self, repo: str | os.PathLike | Repo = ".", rev: str | None = None,
                 remote: str | None = None):
        from dvlite.data.history import tracked_at

        self.repo = open_repo(repo)
        self.rev = rev
        self.remote = remote
        self.outputs: list[Tracked] = tracked_at(self.repo, rev)
        self._by_rel = {t.rel: t for t in self.outputs}
        self._manifests: dict[str, Manifest] = {}
        self._unlinked = self._legacy()

    def _legacy(self) -> list:
        """What DVC's files track here that the md5 index does not link yet (before the switch)."""
        from dvlite.dvc.legacy import unlinked

        return unlinked(self.repo, self.rev)

    def _link(self, rel: str) -> None:
        """Bring in the DVC objects of outputs at, above or below `rel` (from the DVC cache or
        remote, verified by md5), and see them as tracked outputs from then on."""
        from dvlite.data.history import tracked_at
        from dvlite.dvc.imported import bring_in_all

        wanted = [o for o in self._unlinked
                  if not rel or o.rel == rel or rel.startswith(o.rel + "/") or o.rel.startswith(rel + "/")]
        if not wanted:
            return
        result = bring_in_all(self.repo, wanted, self.rev)
        if result.missing:
            path, what = result.missing[0]
            raise IntegrityError(f"{path}: {what} is in neither the DVC cache, the workspace nor "
                                 "the DVC remote")
        self._unlinked = [o for o in self._unlinked if o not in wanted]
        self.outputs = tracked_at(self.repo, self.rev)
        self._by_rel = {t.rel: t for t in self.outputs}

    def tracked(self, rel: str) -> Tracked | None:
        """The output tracked at exactly `rel` (a pointer or a stage out), if any."""
        self._link(rel)
        return self._by_rel.get(rel)

    @property
    def label(self) -> str:
        return "the workspace" if self.rev is None else self.rev

    # --- objects --------------------------------------------------------------------------
    def ensure(self, sizes: dict[str, int]) -> None:
        """Bring these objects (digest -> size) into the cache from the remote if missing."""
        from dvlite.remotes.transfer import fetch_missing

        if not self.repo.odb.missing(sizes):
            return
        result = fetch_missing(self.repo, sizes, self.remote)
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
            self._manifests[digest] = self.repo.odb.manifest(digest, f"{t.pointer_rel} at {self.label}")
        return self._manifests[digest]

    def open_object(self, node: Node):
        if node.kind != "file" or node.digest is None:
            raise IsADirectoryError(f"{node.path} is a directory")
        self.ensure({node.digest: node.size})
        # a loose object is opened in place (seekable, no copy); a packed one is read from its pack
        return self.repo.odb.open_object(node.digest)

    # --- the tree -------------------------------------------------------------------------
    def _missing(self, rel: str) -> FileNotFoundError:
        return FileNotFoundError(f"{rel} is not tracked by dvlite in {self.label}")

    def lookup(self, rel: str) -> Node:
        if rel == "":
            return Node("", "directory", 0, None)
        self._link(rel)
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
        self._link(rel)
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
