"""A Storage over a directory on this machine: the cache is one (keys as on a remote)."""

from __future__ import annotations

import contextlib
import os

from dvlite.digest import hash_bytes
from dvlite.fsutil import TMP_MARK, atomic_copy, atomic_write, remove_file
from dvlite.storage.base import Listed, Storage, check_key
from dvlite.storage.layout import OBJECTS, PACKS

BLOB_MODE = 0o444  # blobs are written once and never modified


class LocalStorage(Storage):
    name = "local"

    def __init__(self, directory: str):
        self.dir = directory

    def stamp(self) -> str:
        """Changes whenever a blob is added to or removed from `objects/` (the fan-out dirs'
        mtimes), and whenever a pack or its index changes (each pack's size and mtime: few)."""
        parts = []
        with contextlib.suppress(FileNotFoundError):
            for fan in os.scandir(os.path.join(self.dir, OBJECTS)):
                if len(fan.name) == 2:
                    parts.append(f"{fan.name}:{fan.stat().st_mtime_ns}")
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(os.path.join(self.dir, PACKS)):
                st = entry.stat(follow_symlinks=False)
                parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
        return hash_bytes("\n".join(sorted(parts)).encode()).hex

    def _file(self, key: str) -> str:
        return os.path.join(self.dir, *check_key(key).split("/"))

    def load(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        with open(self._file(key), "rb", buffering=0) as f:
            if start is None and end is None:
                return f.readall()
            start = start or 0
            size = os.fstat(f.fileno()).st_size
            return os.pread(f.fileno(), max(0, min(size, end if end is not None else size) - start), start)

    def store(self, key: str, data: bytes) -> None:
        path = self._file(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, data, mode=BLOB_MODE)

    def store_file(self, key: str, local_path: str) -> None:
        path = self._file(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(local_path, "rb") as src:
            atomic_copy(src, path, mode=BLOB_MODE, durable=True)

    def fetch_file(self, key: str, local_path: str) -> None:
        with open(self._file(key), "rb") as src:
            atomic_copy(src, local_path, mode=0o644)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            remove_file(self._file(key))

    def list(self, prefix: str) -> dict[str, Listed]:
        top = self._file(prefix)
        out: dict[str, Listed] = {}
        for dirpath, _dirs, files in os.walk(top):
            rel = os.path.relpath(dirpath, self.dir).replace(os.sep, "/")
            for name in files:
                if not name.startswith(TMP_MARK):
                    with contextlib.suppress(FileNotFoundError):
                        st = os.lstat(os.path.join(dirpath, name))
                        out[f"{rel}/{name}"] = Listed(st.st_size, str(st.st_mtime_ns))
        return out

    def stat(self, key: str) -> int:
        return os.stat(self._file(key)).st_size
