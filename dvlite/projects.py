"""Which projects use a cache: `<cache>/projects/<id>`, one small file per project root.

Every repository records itself in the cache it uses (`cache.dir` may point several
projects at one cache), so that `gc` in one of them can keep what the others need.
"""

from __future__ import annotations

import contextlib
import os

from dvlite.digest import hash_bytes
from dvlite.fsutil import TMP_MARK, atomic_write, read_limited

DIRNAME = "projects"


def _record_path(cache_dir: str, root: str) -> str:
    return os.path.join(cache_dir, DIRNAME, hash_bytes(os.fsencode(root)).hex)


def register(cache_dir: str, root: str) -> None:
    """Record `root` as a user of the cache (one stat when it already is)."""
    path = _record_path(cache_dir, root)
    if os.path.exists(path):
        return
    with contextlib.suppress(OSError):  # a read-only shared cache: nothing to collect there anyway
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, os.fsencode(root) + b"\n", mode=0o664, durable=False)


def recorded(cache_dir: str, root: str) -> list[str]:
    """Roots of the other projects recorded in the cache."""
    top = os.path.join(cache_dir, DIRNAME)
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(os.scandir(top), key=lambda e: e.name):
            if entry.name.startswith(TMP_MARK):
                continue
            try:
                other = os.fsdecode(read_limited(entry.path, 1 << 16, entry.path).rstrip(b"\n"))
            except (OSError, ValueError):
                continue
            if other != root:
                found.append(other)
    return found


def record_only(cache_dir: str, roots: list[str]) -> None:
    """Rewrite the record: exactly these projects use the cache."""
    keep = {os.path.basename(_record_path(cache_dir, r)) for r in roots}
    top = os.path.join(cache_dir, DIRNAME)
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(top):
            if entry.name not in keep:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
    for root in roots:
        register(cache_dir, root)
