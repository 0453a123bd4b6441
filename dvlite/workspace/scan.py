"""Scanning the workspace: every file under a tracked path, with its stat, never through a
symlink; the stat fingerprint of a whole tree (status's fast path)."""

from __future__ import annotations

import os
import stat
import time
from array import array
from stat import S_ISDIR, S_ISLNK, S_ISREG
from typing import TYPE_CHECKING, NamedTuple

from dvlite.digest import new_hasher
from dvlite.errors import BadInputError
from dvlite.fsutil import TMP_MARK
from dvlite.storage.statcache import RACY_NS

if TYPE_CHECKING:
    from dvlite.workspace.ignore import Ignores


class FileStat(NamedTuple):  # a tuple: hundreds of thousands are made per scan
    rel: str  # relative to the scanned top, `/` separators
    path: str  # absolute
    st: os.stat_result

    @property
    def executable(self) -> bool:
        return bool(self.st.st_mode & stat.S_IXUSR)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NOT_DATA = (".git", ".dvlite")  # directories a scan never enters (as DVC skips .git, .dvc)


def scan_tree(top: str, cache_objects: str, links: list[str] | None = None,
              ignores: Ignores | None = None) -> list[FileStat]:
    """Every file under `top`, depth first, each directory's entries in listing order.

    Symlinks are never followed, except one to an object of the cache (`cache.type =
    symlink` checks files out that way): that one counts as the file it links to. Any other
    symlink is data dvlite does not track: it goes into `links` (its path relative to `top`)
    or, when `links` is None, is refused. Directories named .git or .dvlite are skipped, and
    so is whatever `ignores` (the repository's .dvliteignore rules) excludes.
    """
    return scan_with_stamp(top, cache_objects, links, ignores=ignores)[0]


class TreeStamp:
    """The stat data of a scanned tree, packed as integers (no object per file): per file its
    inode, mtime, size and mode; per directory (the top included) its inode and mtime, which
    changes whenever an entry is added, removed or renamed in it, so file names need not be
    part of it."""

    def __init__(self) -> None:
        self.files = array("q")
        self.dirs = array("q")
        self.rules = ""  # the stat of the .dvliteignore files above the tree

    def digest(self, cache_stamp: str) -> str | None:
        """The fingerprint with the cache's stamp, or None while anything is too new to trust
        (racily clean: changed within RACY_NS of now)."""
        newest = max(max(self.files[1::4], default=0), max(self.dirs[1::2], default=0))
        if time.time_ns() - newest < RACY_NS:
            return None
        h = new_hasher()
        h.update(cache_stamp.encode())
        h.update(self.rules.encode())
        h.update(self.dirs)
        h.update(self.files)
        return h.hexdigest()


def _add_file(stamp: TreeStamp, st: os.stat_result) -> None:
    stamp.files.extend((st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode))


def scan_with_stamp(top: str, cache_objects: str, links: list[str] | None,
                    keep: bool = True, ignores: Ignores | None = None
                    ) -> tuple[list[FileStat], TreeStamp]:
    """`scan_tree` and the tree's stat stamp, in one pass; with `keep` False no FileStat is
    made (status's fast path: only the stamp is wanted). Raises as `scan_tree` does.

    Ignored directories are neither entered nor stamped. Ignored files are stamped (so the
    fast path never matches a file name) but not returned."""
    out: list[FileStat] = []
    stamp = TreeStamp()
    add_file, add_dir = stamp.files.extend, stamp.dirs.extend
    st = os.lstat(top)
    add_dir((st.st_ino, st.st_mtime_ns))
    top_rel = ignores.rel_of(top) if ignores is not None else ""
    if ignores is not None:
        stamp.rules = ignores.stamp(top_rel)
    stack = [(top, "", None)]  # (directory, its path below top, the rules of its parent)
    while stack:
        directory, prefix, parent = stack.pop()
        subdirs = []
        # listed through a descriptor: each stat is an fstatat of one name, not a walk of the
        # whole path, and a directory swapped for a symlink meanwhile is refused (O_NOFOLLOW)
        fd = os.open(directory, _DIR_FLAGS)
        try:
            with os.scandir(fd) as it:
                entries = list(it)  # a directory's own .dvliteignore is known once it is listed
            rules = None if ignores is None else \
                ignores.scan_rules(top_rel, prefix, parent, [e.name for e in entries])
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                mode = st.st_mode
                name = entry.name
                if S_ISREG(mode):
                    add_file((st.st_ino, st.st_mtime_ns, st.st_size, mode))
                    if keep and not name.startswith(TMP_MARK) and (
                            rules is None or not rules.ignored(name, False)):
                        out.append(FileStat(prefix + name, f"{directory}/{name}", st))
                elif S_ISDIR(mode):
                    if name not in NOT_DATA and not name.startswith(TMP_MARK) and (
                            rules is None or not rules.ignored(name, True)):
                        add_dir((st.st_ino, st.st_mtime_ns))
                        subdirs.append((f"{directory}/{name}", prefix + name + "/", rules))
                elif S_ISLNK(mode) and not name.startswith(TMP_MARK) and (
                        rules is None or not rules.ignored(name, False)):
                    _symlink(f"{directory}/{name}", prefix + name, cache_objects, links,
                             out if keep else None, stamp)
        finally:
            os.close(fd)
        stack += reversed(subdirs)
    return out, stamp


def _symlink(path: str, rel: str, cache_objects: str, links: list[str] | None,
             out: list[FileStat] | None, stamp: TreeStamp) -> None:
    linked = _linked_object(path, cache_objects)
    if linked is not None:
        _add_file(stamp, os.lstat(path))
        _add_file(stamp, linked)
        if out is not None:
            out.append(FileStat(rel, path, linked))
    elif links is not None:
        links.append(rel)
    else:
        raise not_data(path)


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


def tree_fingerprint(top: str, cache_objects: str, cache_stamp: str,
                     ignores: Ignores | None = None) -> str | None:
    """The fingerprint of the tree at `top` (see TreeStamp) without a FileStat per file; None
    when it cannot be trusted yet, or when the tree holds a symlink that is not a cache object
    (the full comparison reports it)."""
    links: list[str] = []
    _files, stamp = scan_with_stamp(top, cache_objects, links, keep=False, ignores=ignores)
    return None if links else stamp.digest(cache_stamp)


def stat_single(path: str, cache_objects: str) -> os.stat_result:
    """The stat of a tracked file: a symlink is refused, unless it links to a cache object."""
    if os.path.islink(path):
        linked = _linked_object(path, cache_objects)
        if linked is None:
            raise not_data(path)
        return linked
    return os.stat(path)


