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
import io
import os

from dvlite.api.view import DataView, Node, normalise, open_repo

__all__ = ["DataView", "Node", "get_url", "lineage", "open", "read", "status"]


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
    from dvlite.remotes import inventory
    from dvlite.remotes.backend import Remote
    from dvlite.remotes.config import choose
    from dvlite.storage.layout import object_key, pack_key

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
    store = Remote(cfg)
    inv = inventory.inventory(store, {digest}, view.repo.index_dir, store.default_jobs)
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

    r = open_repo(repo)
    absolute = [r.abs(normalise(r, t)) for t in targets or []]
    return [_plain(s) for s in workspace_status(r, absolute)]


def lineage(path: str | os.PathLike, repo: str | os.PathLike = ".", rev: str | None = None):
    """The pipeline stages that produced `path`, down to raw data (as `dvlite lineage --json`)."""
    from dvlite.pipelines.lineage import lineage as lineage_of

    r = open_repo(repo)
    return lineage_of(r, normalise(r, path), rev)
