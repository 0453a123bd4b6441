"""Putting verified objects into the workspace: the first link type that works, through no
symlink, temp files in the repository's own temp directory."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable

from dvlite.digest import hash_bytes
from dvlite.errors import IntegrityError
from dvlite.fsutil import atomic_write, copy_into, reflink, remove_file, temp_name
from dvlite.readback import copy_and_read_back
from dvlite.guard import Guard
from dvlite.storage.cache import SMALL, Cache
from dvlite.storage.chunklists import hash_read


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask



_FALLBACK = {errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM, errno.EINVAL, errno.EMLINK,
             errno.ENOTTY, errno.EBADF}


class Materialiser:
    """Puts verified objects into the workspace with the first link type that works, through
    no symlink (`Guard`), with temp files in the repository's temp directory (`tmp_dir`)."""

    def __init__(self, odb: Cache, link_types: list[str], guard: Guard, tmp_dir: str):
        self.odb = odb
        self.link_types = list(link_types)
        self.guard = guard
        self.tmp_dir = tmp_dir
        self._lock = threading.Lock()
        self._umask = _umask()

    def _verify(self, hexdigest: str) -> None:
        if not self.odb.verify(hexdigest):
            if not self.odb.contains(hexdigest):
                raise IntegrityError(f"object {hexdigest} is not in the cache")
            raise IntegrityError(f"cache object {hexdigest} is corrupt")

    def materialise(self, hexdigest: str, rel: str, executable: bool, loose: bool | None = None,
                    stat_out: list | None = None) -> str:
        """Write object `hexdigest` to repo-relative `rel` atomically; return the link type used.
        `loose`: whether the object is a file of its own, when the caller already knows.
        `stat_out`: a copy's stat is appended to it (the stat cache needs no second stat).
        A symlink at `rel` is replaced (the rename replaces the link itself, never follows it);
        every directory on the way is checked to be a real one (Guard)."""
        self.guard.check_parents(rel)
        parent = rel.rpartition("/")[0]
        if parent:
            self.guard.make_dirs(parent)
        dest = self.guard.abs(rel)
        if not (self.odb.is_loose(hexdigest) if loose is None else loose):  # packed: nothing to link
            self._write(hexdigest, self.odb.read(hexdigest, try_loose=False), dest, executable,
                        stat_out)
            return "copy"
        for kind in list(self.link_types):
            if executable and kind in ("hardlink", "symlink"):
                continue  # it would share the read-only, non-executable object's mode
            try:
                getattr(self, "_" + kind)(hexdigest, dest, executable)
                return kind
            except OSError as exc:
                if exc.errno not in _FALLBACK or kind == self.link_types[-1]:
                    raise
                with self._lock:  # this filesystem cannot; do not try again
                    if kind in self.link_types:
                        self.link_types.remove(kind)
        if executable:
            self._copy(hexdigest, dest, executable)
            return "copy"
        raise OSError(errno.EINVAL, "no link type left to try")

    def _mode(self, executable: bool) -> int:
        return (0o777 if executable else 0o666) & ~self._umask

    def _copy(self, hexdigest: str, dest: str, executable: bool) -> None:
        """A copy whose bytes are hashed before it replaces `dest`: small objects in one read,
        large ones copied inside the kernel and hashed from the page cache."""
        written: list[str] = []

        def check() -> None:
            if written != [hexdigest]:
                raise IntegrityError(f"cache object {hexdigest} is corrupt")

        try:
            f = open(self.odb.path(hexdigest), "rb", buffering=0)
        except FileNotFoundError:  # packed (or missing: read() says so)
            self._write(hexdigest, self.odb.read(hexdigest, try_loose=False), dest, executable)
            return
        with f:
            if os.fstat(f.fileno()).st_size < SMALL:
                self._write(hexdigest, f.readall(), dest, executable)
                return

            def write(out) -> None:  # copied in the kernel, hashed from the copy as it is made
                if hexdigest in self.odb.verified:  # hashed by this command as it was fetched
                    copy_into(f.fileno(), out.fileno())
                    written.append(hexdigest)
                    return
                _size, found = copy_and_read_back(f.fileno(), out.fileno(), hash_read)
                written.append(found)

            atomic_write(dest, writer=write, mode=self._mode(executable), durable=False,
                         before_replace=check, tmp_dir=self.tmp_dir)

    def _write(self, hexdigest: str, data: bytes, dest: str, executable: bool,
               stat_out: list | None = None) -> None:
        if hash_bytes(data).hex != hexdigest:
            raise IntegrityError(f"cache object {hexdigest} is corrupt")
        atomic_write(dest, data, mode=self._mode(executable), durable=False, tmp_dir=self.tmp_dir,
                     umasked=True, stat_out=stat_out)

    def _linked(self, hexdigest: str, dest: str, link: Callable[[str, str], None]) -> None:
        tmp = temp_name(dest, self.tmp_dir)
        try:
            link(self.odb.path(hexdigest), tmp)
        except FileNotFoundError:
            raise IntegrityError(f"object {hexdigest} is not in the cache") from None
        try:
            self._verify(hexdigest)  # after the link: a filesystem that cannot link costs no read
            os.replace(tmp, dest)  # EXDEV (the workspace on another disk) drops this link type
        except BaseException:
            remove_file(tmp)
            raise

    def _reflink(self, hexdigest: str, dest: str, executable: bool) -> None:
        def clone(src: str, tmp: str) -> None:
            reflink(src, tmp)
            os.chmod(tmp, self._mode(executable))

        self._linked(hexdigest, dest, clone)

    def _hardlink(self, hexdigest: str, dest: str, executable: bool) -> None:
        self._linked(hexdigest, dest, os.link)

    def _symlink(self, hexdigest: str, dest: str, executable: bool) -> None:
        self._linked(hexdigest, dest, os.symlink)
