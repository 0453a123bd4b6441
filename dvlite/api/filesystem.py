"""An fsspec filesystem over tracked data at one revision: protocol `dvlite`.

    import fsspec
    fs = fsspec.filesystem("dvlite", repo=".", rev="v1.0")
    fs.ls("data")                     # tracked outputs and the files inside tracked directories
    with fsspec.open("dvlite://data/train.csv", repo=".", rev="v1.0") as f: ...

Paths are relative to the repository root (`dvlite://data/train.csv` is `data/train.csv`).
Directories are those that hold tracked outputs, tracked directories, and the directories
their manifests imply. Read-only. An instance reads the pointers once, when first used:
after changing pointers, call `invalidate_cache()` (or make a new instance; instances are
never shared by fsspec's instance cache).
"""

from __future__ import annotations

import os

from fsspec.spec import AbstractFileSystem
from fsspec.utils import stringify_path


class DvliteFileSystem(AbstractFileSystem):
    protocol = "dvlite"
    root_marker = ""
    cachable = False  # a workspace view goes stale when pointers change: never share one

    def __init__(self, repo: str = ".", rev: str | None = None, remote: str | None = None, **kwargs):
        super().__init__(**kwargs)
        from dvlite.api.view import open_repo

        self.repo = open_repo(repo)
        self.rev = rev
        self.remote = remote
        self._view = None

    @property
    def view(self):
        from dvlite.api.view import DataView

        if self._view is None:
            self._view = DataView(self.repo, self.rev, self.remote)
        return self._view

    def invalidate_cache(self, path=None) -> None:
        self._view = None
        super().invalidate_cache(path)

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = stringify_path(path)
        for prefix in ("dvlite://", "dvlite::"):
            path = path.removeprefix(prefix)
        parts = [p for p in path.split("/") if p not in ("", ".")]
        return "/".join(parts)

    def _rel(self, path) -> str:
        rel = self._strip_protocol(path)
        if ".." in rel.split("/"):
            raise FileNotFoundError(f"{path}: '..' is not allowed")
        return rel

    @staticmethod
    def _info(node) -> dict:
        info = {"name": node.path, "size": node.size, "type": node.kind}
        if node.digest is not None:
            info["digest"] = node.digest
            info["executable"] = node.executable
        return info

    # --- the fsspec interface -------------------------------------------------------------
    def info(self, path, **kwargs) -> dict:
        return self._info(self.view.lookup(self._rel(path)))

    def ls(self, path, detail=True, **kwargs):
        rel = self._rel(path)
        node = self.view.lookup(rel)
        nodes = [node] if node.kind == "file" else self.view.children(rel)
        infos = [self._info(n) for n in nodes]
        return infos if detail else [i["name"] for i in infos]

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        rel = self._rel(path)
        try:
            files = self.view.files_under(rel)
        except FileNotFoundError:
            return {} if detail else []
        base = len(rel.split("/")) if rel else 0
        out: dict[str, dict] = {}
        for node in files:
            parts = node.path.split("/")
            depth = len(parts) - base
            if maxdepth is None or depth <= maxdepth or node.path == rel:
                out[node.path] = self._info(node)
            if withdirs:  # the directories between `rel` and the file
                for i in range(base + 1, len(parts)):
                    if maxdepth is not None and i - base > maxdepth:
                        break
                    d = "/".join(parts[:i])
                    out.setdefault(d, {"name": d, "size": 0, "type": "directory"})
        if withdirs and rel and self.view.lookup(rel).kind == "directory":
            out[rel] = {"name": rel, "size": 0, "type": "directory"}
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None, **kwargs):
        if mode != "rb":
            raise PermissionError(f"dvlite:// is read-only (mode {mode!r})")
        return self.view.open_object(self.view.lookup(self._rel(path)))

    def cat_file(self, path, start=None, end=None, **kwargs):
        with self._open(path) as f:
            size = f.seek(0, os.SEEK_END)  # a cache file, or the bytes of a packed object
            start = 0 if start is None else (start if start >= 0 else max(0, size + start))
            end = size if end is None else (min(end, size) if end >= 0 else max(0, size + end))
            f.seek(start)
            return f.read(max(0, end - start))
