"""DVC's object names (md5, by DVC's hashing rule) and the dvlite objects they are: learned
whenever DVC's bytes are brought into the cache, verified by md5 and stored by XXH3-128
(`migrate`, and `checkout`, `pull` or reads of commits from before the switch).

It lives beside the objects, in an SQLite file of the cache (`dvc-md5.sqlite`), so every
project sharing the cache knows what one learned. Rows are written only after both digests
were checked, and an object found through a row is verified again when it is read. Deleting
the file forgets the links: commits from before the switch then need the DVC cache or remote
again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from urllib.parse import quote

FILENAME = "dvc-md5.sqlite"
VERSION = 1
_SCHEMA = ("CREATE TABLE IF NOT EXISTS objects (md5 TEXT, is_dir INTEGER, rule TEXT, kind TEXT, "
           "digest TEXT, size INTEGER, files INTEGER, PRIMARY KEY (md5, is_dir, rule))")


@dataclass(frozen=True)
class Known:
    kind: str  # file | dir
    digest: str  # XXH3-128 hex: the object (a file's bytes, or a directory's manifest)
    size: int
    files: int


Key = tuple[str, bool, str]  # (md5, is_dir, DVC's hashing rule: "md5" or "md5-dos2unix")


class Md5Index:
    def __init__(self, cache_dir: str):
        self.path = os.path.join(cache_dir, FILENAME)
        self._pending: dict[Key, Known] = {}

    def _reader(self) -> sqlite3.Connection | None:
        if not os.path.exists(self.path):
            return None
        con = sqlite3.connect(f"file:{quote(self.path)}?mode=ro", uri=True, timeout=30)
        if con.execute("PRAGMA user_version").fetchone()[0] != VERSION:
            con.close()
            return None
        return con

    def lookup(self, keys: list[Key]) -> dict[Key, Known]:
        """What is known of each key (unknown keys are left out)."""
        found = {k: self._pending[k] for k in keys if k in self._pending}
        wanted = [k for k in dict.fromkeys(keys) if k not in found]
        if not wanted:
            return found
        try:
            con = self._reader()
        except sqlite3.DatabaseError:
            return found
        if con is None:
            return found
        try:
            for md5, is_dir, rule in wanted:
                row = con.execute("SELECT kind, digest, size, files FROM objects WHERE md5 = ? "
                                  "AND is_dir = ? AND rule = ?", (md5, int(is_dir), rule)).fetchone()
                if row is not None:
                    found[(md5, is_dir, rule)] = Known(*row)
        except sqlite3.DatabaseError:
            pass  # unreadable: nothing known (the DVC sources are asked instead)
        finally:
            con.close()
        return found

    def learn(self, key: Key, known: Known) -> None:
        """Remember a verified link; written by `save`."""
        self._pending[key] = known

    def save(self) -> None:
        if not self._pending:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            self._write()
        except sqlite3.DatabaseError:  # corrupt: start again (it only links what DVC can give)
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path + suffix)
            self._write()
        self._pending.clear()

    def _write(self) -> None:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, VERSION):
                raise sqlite3.DatabaseError(f"{self.path}: version {version}")
            if version == 0:
                con.execute(_SCHEMA)
                con.execute(f"PRAGMA user_version = {VERSION}")
            with con:
                con.executemany("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?)",
                                [(md5, int(is_dir), rule, k.kind, k.digest, k.size, k.files)
                                 for (md5, is_dir, rule), k in self._pending.items()])
        finally:
            con.close()
