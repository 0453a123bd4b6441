"""The workspace side: scanning trees, hashing with the stat cache, materialising objects."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from dvlite.digest import hash_bytes, hash_fd, hash_file
from dvlite.errors import BadInputError, IntegrityError
from dvlite.fsutil import (
    TMP_MARK,
    atomic_write,
    copy_into,
    reflink,
    remove_file,
    temp_name,
)
from dvlite.guard import Guard
from dvlite.odb import SMALL, ObjectStore
from dvlite.state import RACY_NS, StatCache

JOBS = min(16, 4 * (os.cpu_count() or 1))
THREADED_ABOVE = 1 << 20  # files this big are hashed and stored in a thread pool


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


class Hasher:
    """Digests of workspace files, from the stat cache where it knows them."""

    def __init__(self, state: StatCache, odb: ObjectStore, repo_root: str):
        self.state = state
        self.odb = odb
        self.repo_root = repo_root
        self._prefix = os.path.join(repo_root, "")

    def _key(self, path: str) -> str:
        if path.startswith(self._prefix):  # the common case: no relpath per file
            return path[len(self._prefix):]
        return os.path.relpath(path, self.repo_root)

    def known(self, path: str, st: os.stat_result) -> str | None:
        return self.state.get(self._key(path), st)

    def digests(self, files: Iterable[FileStat], store: bool) -> dict[str, str]:
        """rel -> hex for `files`; with `store`, every file's bytes end up in the object store."""
        result: dict[str, str] = {}
        todo: list[FileStat] = []
        for f in files:
            known = self.known(f.path, f.st)
            if known is not None and (not store or self.odb.contains(known)):
                result[f.rel] = known
            else:
                todo.append(f)

        def work(f: FileStat) -> tuple[FileStat, str]:
            if not store:
                return f, hash_file(f.path).hex
            digest, size = self.odb.ingest(f.path)
            if size != f.st.st_size:  # the manifest records the scanned size; they must agree
                raise BadInputError(f"{f.path} changed while it was being added; run the command again")
            return f, digest.hex

        # Small files in this thread: their system calls are too short for threads to overlap,
        # and 8 threads contending for the GIL cost more than they save (add of 200,000 tiny
        # files: 8.7 s in one thread, 14.4 s in 8; see performance.md). Large files in threads.
        small = [f for f in todo if f.st.st_size < THREADED_ABOVE]
        large = [f for f in todo if f.st.st_size >= THREADED_ABOVE]
        with self.odb.batch():  # small objects go into packs
            done = [work(f) for f in small]
            if len(large) > 1:
                with ThreadPoolExecutor(JOBS) as pool:
                    done += pool.map(work, large)
            else:
                done += [work(f) for f in large]
        for f, hexdigest in done:
            result[f.rel] = hexdigest
            self._remember(f, hexdigest)
        return result

    def _remember(self, f: FileStat, hexdigest: str) -> None:
        try:
            after = os.stat(f.path)
        except OSError:
            return
        if (after.st_ino, after.st_mtime_ns, after.st_size) == (
            f.st.st_ino,
            f.st.st_mtime_ns,
            f.st.st_size,
        ):
            self.state.put(self._key(f.path), after, hexdigest)

    def remember_written(self, path: str, hexdigest: str) -> None:
        self.state.put(self._key(path), os.stat(path), hexdigest)


# --- materialising ------------------------------------------------------------

_FALLBACK = {errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM, errno.EINVAL, errno.EMLINK,
             errno.ENOTTY, errno.EBADF}


class Materialiser:
    """Puts verified objects into the workspace with the first link type that works, through
    no symlink (`Guard`), with temp files in the repository's temp directory (`tmp_dir`)."""

    def __init__(self, odb: ObjectStore, link_types: list[str], guard: Guard, tmp_dir: str):
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

    def materialise(self, hexdigest: str, rel: str, executable: bool, loose: bool | None = None) -> str:
        """Write object `hexdigest` to repo-relative `rel` atomically; return the link type used.
        `loose`: whether the object is a file of its own, when the caller already knows."""
        dest = self.guard.prepare(rel, replace_link=True)  # a link at `rel` is replaced, not followed
        if not (self.odb.is_loose(hexdigest) if loose is None else loose):  # packed: nothing to link
            self._write(hexdigest, self.odb.read(hexdigest, try_loose=False), dest, executable)
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

            def write(out) -> None:
                copy_into(f.fileno(), out.fileno())
                written.append(hash_fd(out.fileno()).hex)

            atomic_write(dest, writer=write, mode=self._mode(executable), durable=False,
                         before_replace=check, tmp_dir=self.tmp_dir)

    def _write(self, hexdigest: str, data: bytes, dest: str, executable: bool) -> None:
        if hash_bytes(data).hex != hexdigest:
            raise IntegrityError(f"cache object {hexdigest} is corrupt")
        atomic_write(dest, data, mode=self._mode(executable), durable=False, tmp_dir=self.tmp_dir)

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
