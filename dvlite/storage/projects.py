"""Which projects use a cache: `<cache>/projects/<project id>`, one small file per project.

Every repository records itself in the cache it uses (`cache.dir` may point several projects
at one cache), so that `gc` in one of them can keep what the others need. A project is known
by an id kept in its own `.dvlite/tmp/project-id` (never committed), so a project that is
moved keeps its record (and rewrites the path in it), while a copy that still sees the
original in place takes a new id.
"""

from __future__ import annotations

import contextlib
import os

from dvlite.fsutil import TMP_MARK, atomic_write, read_limited

DIRNAME = "projects"
ID_FILE = "project-id"  # in the project's .dvlite/tmp/


def project_id(tmp_dir: str) -> str:
    """This project's id (made on first use)."""
    path = os.path.join(tmp_dir, ID_FILE)
    with contextlib.suppress(OSError, UnicodeDecodeError):
        found = read_limited(path, 64, path).decode().strip()
        if len(found) == 32 and all(c in "0123456789abcdef" for c in found):
            return found
    new = os.urandom(16).hex()
    os.makedirs(tmp_dir, exist_ok=True)
    atomic_write(path, new.encode() + b"\n", durable=False)
    return new


def _read_root(path: str) -> str | None:
    try:
        return os.fsdecode(read_limited(path, 1 << 16, path).rstrip(b"\n"))
    except (OSError, ValueError):
        return None


def _id_of(root: str) -> str | None:
    path = os.path.join(root, ".dvlite", "tmp", ID_FILE)
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return read_limited(path, 64, path).decode().strip()
    return None


def register(cache_dir: str, root: str, tmp_dir: str) -> None:
    """Record the project at `root` as a user of the cache (a stat and a small read when it
    already is)."""
    pid = project_id(tmp_dir)
    record = os.path.join(cache_dir, DIRNAME, pid)
    old = _read_root(record)
    if old == root:
        return
    if old is not None and old != root and _id_of(old) == pid:  # a copy: the original is there
        os.unlink(os.path.join(tmp_dir, ID_FILE))
        pid = project_id(tmp_dir)
        record = os.path.join(cache_dir, DIRNAME, pid)
    with contextlib.suppress(OSError):  # a read-only shared cache: nothing to collect there anyway
        os.makedirs(os.path.dirname(record), exist_ok=True)
        atomic_write(record, os.fsencode(root) + b"\n", mode=0o664, durable=False)


def recorded(cache_dir: str, root: str, tmp_dir: str) -> list[str]:
    """Roots of the other projects recorded in the cache (this one's record, under its id or
    at its path, left out)."""
    top = os.path.join(cache_dir, DIRNAME)
    mine = project_id(tmp_dir)
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(os.scandir(top), key=lambda e: e.name):
            if entry.name.startswith(TMP_MARK) or entry.name == mine:
                continue
            other = _read_root(entry.path)
            if other is not None and other != root:
                found.append(other)
    return found


def record_only(cache_dir: str, roots: list[str]) -> None:
    """Rewrite the record: exactly the projects at these roots use the cache."""
    top = os.path.join(cache_dir, DIRNAME)
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(top):
            if _read_root(entry.path) not in roots:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
    for root in roots:
        register(cache_dir, root, os.path.join(root, ".dvlite", "tmp"))
