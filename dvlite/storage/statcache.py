"""The stat cache: (path, inode, mtime_ns, size) -> digest, so unchanged files are not re-hashed.

It also remembers, per tracked directory, a fingerprint of every file's stat at
the moment the directory was last seen to match its manifest: if a new scan has
the same fingerprint, the directory is unchanged without a single lookup per file.

It lives in an SQLite file under `.dvlite/tmp/`. It is only a cache: if it is
missing, unreadable or corrupt it is deleted and rebuilt, costing a re-hash.
SQLite's own journal keeps each save atomic.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from urllib.parse import quote

VERSION = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS state ("
    "path TEXT PRIMARY KEY, inode INTEGER, mtime_ns INTEGER, size INTEGER, digest TEXT)",
    "CREATE TABLE IF NOT EXISTS trees (path TEXT PRIMARY KEY, digest TEXT, fingerprint TEXT)",
)
# A file modified within this window of being hashed may change again within one
# mtime tick without its stat changing ("racily clean"); such entries are not kept.
RACY_NS = 2_000_000_000


def _storable(path: str) -> bool:
    """SQLite keeps UTF-8 text; a non-UTF-8 file name (surrogate-escaped) is never cached."""
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


class StatCache:
    def __init__(self, db_path: str):
        self.db_path = db_path
        self._rows: dict[str, tuple[int, int, int, str]] | None = None
        self._pending: dict[str, tuple[int, int, int, str]] = {}
        self._dropped: set[str] = set()
        self._trees: dict[str, tuple[str, str]] = {}

    def _connect(self) -> sqlite3.Connection:
        """A connection for writing; the schema is made only when the file is new (so opening
        an existing stat cache writes nothing)."""
        os.makedirs(os.path.dirname(self.db_path), exist_ok=True)
        con = sqlite3.connect(self.db_path, timeout=30)
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, VERSION):  # written by another dvlite: it is only a cache
            con.close()
            self.reset()
            con = sqlite3.connect(self.db_path, timeout=30)
            version = 0
        if version == 0:
            for statement in _SCHEMA:
                con.execute(statement)
            con.execute(f"PRAGMA user_version = {VERSION}")
        return con

    def _reader(self) -> sqlite3.Connection | None:
        """A read-only connection, or None when there is no usable stat cache: reading never
        writes (no journal, no fsync), so a `status` that changes nothing writes nothing."""
        if not os.path.exists(self.db_path):
            return None
        con = sqlite3.connect(f"file:{quote(self.db_path)}?mode=ro", uri=True, timeout=30)
        if con.execute("PRAGMA user_version").fetchone()[0] != VERSION:
            con.close()
            return None
        return con

    def _load(self) -> dict[str, tuple[int, int, int, str]]:
        if self._rows is None:
            try:
                con = self._reader()
                try:
                    rows = con.execute("SELECT path, inode, mtime_ns, size, digest FROM state") \
                        if con is not None else ()
                    self._rows = {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}
                finally:
                    if con is not None:
                        con.close()
            except sqlite3.DatabaseError:
                self.reset()
                self._rows = {}
        return self._rows

    def reset(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.db_path + suffix)

    def get(self, path: str, st: os.stat_result) -> str | None:
        row = self._pending.get(path) or self._load().get(path)
        if row and row[0] == st.st_ino and row[1] == st.st_mtime_ns and row[2] == st.st_size:
            return row[3]
        return None

    def put(self, path: str, st: os.stat_result, hexdigest: str) -> None:
        """Remember a digest; whether it is old enough to keep is decided when saving."""
        if _storable(path):
            self._pending[path] = (st.st_ino, st.st_mtime_ns, st.st_size, hexdigest)

    def tree_matches(self, path: str, digest: str, fingerprint: str) -> bool:
        """Was directory `path` last seen matching manifest `digest` with this stat fingerprint?"""
        try:
            con = self._reader()
            if con is None:
                return False
            try:
                row = con.execute("SELECT digest, fingerprint FROM trees WHERE path = ?", (path,))
                return row.fetchone() == (digest, fingerprint)
            finally:
                con.close()
        except sqlite3.DatabaseError:
            self.reset()
            return False

    def put_tree(self, path: str, digest: str, fingerprint: str) -> None:
        if _storable(path):
            self._trees[path] = (digest, fingerprint)

    def drop(self, path: str) -> None:
        self._pending.pop(path, None)
        if _storable(path):
            self._dropped.add(path)

    def save(self) -> None:
        if not self._pending and not self._dropped and not self._trees:
            return
        try:
            con = self._connect()
        except sqlite3.DatabaseError:
            self.reset()
            con = self._connect()
        now = time.time_ns()
        keep = {p: row for p, row in self._pending.items() if now - row[1] >= RACY_NS}
        try:
            with con:
                con.executemany("DELETE FROM state WHERE path = ?", [(p,) for p in self._dropped])
                con.executemany(
                    "INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?)",
                    [(p, *row) for p, row in keep.items()],
                )
                con.executemany(
                    "INSERT OR REPLACE INTO trees VALUES (?, ?, ?)",
                    [(p, *row) for p, row in self._trees.items()],
                )
        except sqlite3.DatabaseError:
            con.close()
            self.reset()
            return
        con.close()
        if self._rows is not None:
            self._rows.update(keep)
        self._pending.clear()
        self._dropped.clear()
        self._trees.clear()
