"""Scanning the workspace: every file under a tracked path, with its stat, never through a
symlink; the stat fingerprint of a whole tree (status's fast path)."""

from __future__ import annotations

import os
import stat
import time
from typing import NamedTuple

from dvlite.digest import hash_bytes
from dvlite.errors import BadInputError
from dvlite.fsutil import TMP_MARK
from dvlite.storage.statcache import RACY_NS


class FileStat(NamedTuple):  # a tuple: hundreds of thousands are made per scan
    rel: str  # relative to the scanned top, `/` separators
    path: str  # absolute
    st: os.stat_result

    @property
    def executable(self) -> bool:
        return bool(self.st.st_mode & stat.S_IXUSR)


NOT_DATA = (".git", ".dvlite")  # directories a scan never enters (as DVC skips .git, .dvc)


def scan_tree(top: str, cache_objects: str, links: list[str] | None = None) -> list[FileStat]:
    """Every file under `top`, depth first, each directory's entries in listing order.

    Symlinks are never followed, except one to an object of the cache (`cache.type =
    symlink` checks files out that way): that one counts as the file it links to. Any other
    symlink is data dvlite does not track: it goes into `links` (its path relative to `top`)
    or, when `links` is None, is refused. Directories named .git or .dvlite are skipped.
    """
    out: list[FileStat] = []
    stack = [(top, "")]
    while stack:
        directory, prefix = stack.pop()
        subdirs = []
        with os.scandir(directory) as it:
            for entry in it:
                name = entry.name
                if name.startswith(TMP_MARK):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if name not in NOT_DATA:
                        subdirs.append((entry.path, prefix + name + "/"))
                elif entry.is_file(follow_symlinks=False):
                    out.append(FileStat(prefix + name, entry.path, entry.stat(follow_symlinks=False)))
                elif entry.is_symlink():
                    linked = _linked_object(entry.path, cache_objects)
                    if linked is not None:
                        out.append(FileStat(prefix + name, entry.path, linked))
                    elif links is not None:
                        links.append(prefix + name)
                    else:
                        raise not_data(entry.path)
        stack += reversed(subdirs)
    return out


def is_linked_object(path: str, cache_objects: str) -> bool:
    return _linked_object(path, cache_objects) is not None


def _linked_object(path: str, cache_objects: str) -> os.stat_result | None:
    """The stat of the cache object a symlink points to, or None if it points anywhere else."""
    target = os.path.realpath(path)
    if not target.startswith(os.path.join(cache_objects, "")):
        return None
    try:
        st = os.stat(target)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def not_data(path: str) -> BadInputError:
    target = os.readlink(path)
    return BadInputError(f"{path} is a symlink (to {target}); dvlite does not follow symlinks: one "
                         "may point outside the repository, and elsewhere on another machine",
                         hint="replace the link by what it points to, or track its target instead")


def fingerprint(files: list[FileStat], cache_stamp: str) -> str | None:
    """A digest of every file's stat and of the cache's state, or None while any file is too
    new to trust (racily clean)."""
    newest = max((f.st.st_mtime_ns for f in files), default=0)
    if time.time_ns() - newest < RACY_NS:
        return None
    text = cache_stamp + "\n" + "\n".join(
        f"{f.rel}\0{f.st.st_ino}\0{f.st.st_mtime_ns}\0{f.st.st_size}\0{f.st.st_mode}" for f in files
    )
    return hash_bytes(text.encode("utf-8", "surrogateescape")).hex


def stat_single(path: str, cache_objects: str) -> os.stat_result:
    """The stat of a tracked file: a symlink is refused, unless it links to a cache object."""
    if os.path.islink(path):
        linked = _linked_object(path, cache_objects)
        if linked is None:
            raise not_data(path)
        return linked
    return os.stat(path)


