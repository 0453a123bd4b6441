"""`cache.shared = group`: one cache written by the users of one group (a team's server).

Every directory of the cache is group-writable and setgid, so what anyone adds belongs to the
cache's group and the others can add beside it, and delete it in `gc`. Files need no write
bit for anyone: objects, packs and records are written once under a temp name and renamed,
never changed in place; they are readable by the group (objects are 0444 anyway). New
directories come out right when the process's umask leaves the group's bits alone
(`group_umask`) and the kernel hands the setgid bit down from the parent.
"""

from __future__ import annotations

import contextlib
import os
import stat

DIR_BITS = stat.S_ISGID | stat.S_IRWXG  # setgid, group rwx
FILE_BITS = stat.S_IRGRP


def group_umask(umask: int) -> int:
    """The umask to write the cache with: the given one without its group bits."""
    return umask & ~0o070


def use_group_umask() -> int:
    """Set the process's umask to `group_umask` of the current one; return the old one."""
    old = os.umask(0)
    os.umask(group_umask(old))
    return old


def is_shared(cache_dir: str) -> bool:
    """Whether the cache's top directory already has the setgid bit and group write."""
    try:
        mode = os.stat(cache_dir).st_mode
    except FileNotFoundError:
        return False
    return mode & DIR_BITS == DIR_BITS


def share_with_group(cache_dir: str) -> int:
    """Make every directory of the cache group-writable and setgid, every file group-readable,
    and give what this user owns the group of the top directory; returns how many entries
    changed. A cache that `is_shared` already is left alone by `ensure_shared` (one stat), so
    the walk happens once, when sharing is turned on."""
    os.makedirs(cache_dir, exist_ok=True)
    group = os.stat(cache_dir).st_gid
    me = os.geteuid()
    changed = _fix(cache_dir, group, me, is_dir=True)
    for dirpath, dirnames, filenames in os.walk(cache_dir):
        for name in dirnames:
            changed += _fix(os.path.join(dirpath, name), group, me, is_dir=True)
        for name in filenames:
            changed += _fix(os.path.join(dirpath, name), group, me, is_dir=False)
    return changed


def ensure_shared(cache_dir: str) -> None:
    """For the cache to call when it opens with `cache.shared = group`: the umask for what it
    writes, and the modes of what is already there (walked once)."""
    use_group_umask()
    if not is_shared(cache_dir):
        share_with_group(cache_dir)


def _fix(path: str, group: int, me: int, is_dir: bool) -> int:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or st.st_uid != me:
        return 0  # only the owner may change a mode; another member's entries are theirs
    changed = 0
    if st.st_gid != group:
        with contextlib.suppress(PermissionError):  # not a member of that group
            os.chown(path, -1, group, follow_symlinks=False)
            changed = 1
    bits = DIR_BITS if is_dir else FILE_BITS
    mode = stat.S_IMODE(st.st_mode)
    if mode & bits != bits:
        os.chmod(path, mode | bits)
        changed = 1
    return changed
