"""Filesystem effects: the one atomic-write helper, the repository lock, links.

Every file dvlite writes goes through `atomic_write` (or `atomic_copy`, which
streams through the same temp-file-then-rename recipe). With `durable=True`
the temp file and then its directory are fsynced; bulk writers pass
`durable=False` and call `sync_barrier()` once before writing anything that
refers to what they wrote (objects before manifests, manifests before
pointers), which gives the same ordering guarantee for a fraction of the cost.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import itertools
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dvlite.errors import DvliteError, LockError

TMP_MARK = ".dvlite-tmp-"
COPY_CHUNK = 4 << 20


_TEMP_PREFIX = os.urandom(3).hex()  # per process (no `secrets`: its import costs 5 ms); a counter follows
_temp_counter = itertools.count()


def temp_name(path: str, tmp_dir: str | None = None) -> str:
    """A unique name beside `path`, or in `tmp_dir` (created with O_EXCL, so a clash fails,
    never overwrites)."""
    cut = path.rfind(os.sep)
    directory = tmp_dir or (path[:cut] if cut > 0 else os.sep if cut == 0 else "")
    name = f"{TMP_MARK}{_TEMP_PREFIX}{next(_temp_counter) & 0xFFFFFF:06x}-{path[cut + 1:][:40]}"
    if not directory:
        return name
    return f"{directory}{name}" if directory.endswith(os.sep) else f"{directory}{os.sep}{name}"


def replace(tmp: str, path: str) -> None:
    """os.replace, also when `tmp` sits on another filesystem than `path` (EXDEV): then the
    bytes are copied to a temp file beside `path` first, so `path` still changes atomically."""
    try:
        os.replace(tmp, path)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    beside = temp_name(path)
    try:
        shutil.copy2(tmp, beside, follow_symlinks=False)
        os.replace(beside, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(beside)
        raise
    os.unlink(tmp)


def fsync_dir(path: str) -> None:
    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_barrier(path: str) -> None:
    """Make every write so far on `path`'s filesystem durable before writing what refers to it.

    syncfs(2) flushes one filesystem; os.sync() (every filesystem) is the fallback.
    """
    libc = _libc()
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    if libc is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


@functools.lru_cache(maxsize=1)
def _libc():
    import ctypes

    try:  # the usual name first: find_library runs ldconfig, which costs a process
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        import ctypes.util

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        except (OSError, TypeError):
            return None
    return libc if hasattr(libc, "syncfs") else None


def tune_allocator() -> None:
    """Ask glibc to return big buffers (packs, file contents) to the system when freed, and to
    keep few per-thread arenas: bulk commands otherwise keep freed memory as peak RSS."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: fixed, so frees of >= 1 MiB unmap
        libc.mallopt(-8, 2)  # M_ARENA_MAX


def atomic_write(
    path: str,
    data: bytes | None = None,
    *,
    writer: Callable[[object], None] | None = None,
    mode: int = 0o644,
    durable: bool = True,
    before_replace: Callable[[], None] | None = None,
    tmp_dir: str | None = None,
    umasked: bool = False,
    stat_out: list | None = None,
) -> None:
    """Write `data` (or whatever `writer(file)` writes) to `path` atomically.

    `before_replace` may raise to abandon the write: the temp file is removed
    and nothing appears under `path`. The temp file is made beside `path`, or in `tmp_dir`
    (the repository's own temp directory, so an interrupted write leaves nothing in the
    workspace). `umasked`: `mode` already has the umask applied (a workspace file), so the
    temp file is created with it instead of 0600 and an fchmod (one system call a file
    fewer). `stat_out`: the written file's stat is appended to it (taken before the rename,
    which changes none of inode, size and mtime).
    """
    tmp = temp_name(path, tmp_dir)
    # read-write: a writer may hash what it wrote from the page cache (hash_fd)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode if umasked else 0o600)
    try:
        try:
            if writer is not None:
                with os.fdopen(fd, "wb", closefd=False) as f:
                    writer(f)
            else:  # plain writes on the fd: no file object, no ioctl/lseek per file
                view = memoryview(data or b"")
                written = 0
                while written < len(view):
                    written += os.write(fd, view[written:])
            if durable:
                os.fsync(fd)
            if not umasked:
                os.fchmod(fd, mode)
            if stat_out is not None:
                stat_out.append(os.fstat(fd))
        finally:
            os.close(fd)
        if before_replace is not None:
            before_replace()
        replace(tmp, path) if tmp_dir else os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if exc.filename is None:  # say which file could not be written (a full disk, say)
            raise OSError(exc.errno, exc.strerror, path) from exc
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(os.path.dirname(path))


def atomic_copy(
    src_file,
    path: str,
    *,
    mode: int,
    durable: bool = False,
    on_chunk: Callable[[bytes], None] | None = None,
    before_replace: Callable[[], None] | None = None,
    tmp_dir: str | None = None,
) -> None:
    """Stream an open binary file into `path` atomically, calling on_chunk(bytes) per chunk."""

    def write(out) -> None:
        if not hasattr(src_file, "readinto"):
            while chunk := src_file.read(COPY_CHUNK):
                if on_chunk is not None:
                    on_chunk(chunk)
                out.write(chunk)
            return
        buf = bytearray(COPY_CHUNK)  # one buffer for the whole file: no allocation per chunk
        view = memoryview(buf)
        while n := src_file.readinto(buf):
            if on_chunk is not None:
                on_chunk(view[:n])
            out.write(view[:n])

    atomic_write(path, writer=write, mode=mode, durable=durable, before_replace=before_replace,
                 tmp_dir=tmp_dir)


def copy_into(src_fd: int, dst_fd: int, segment: int | None = None,
              advance: Callable[[int], bool] | None = None) -> int:
    """Copy all of `src_fd` (from its start) to `dst_fd` without passing the bytes through
    Python where the kernel can: a reflink, else copy_file_range, else a buffered loop.
    With `advance`, the copy goes `segment` bytes at a time and `advance(copied so far)` is
    called after each; it returns False to stop early. Returns the bytes copied."""
    size = os.fstat(src_fd).st_size
    with contextlib.suppress(OSError):
        fcntl.ioctl(dst_fd, _FICLONE, src_fd)
        if advance is not None:
            advance(size)
        return size
    copied = 0
    try:
        while n := os.copy_file_range(src_fd, dst_fd, segment or max(size - copied, COPY_CHUNK),
                                      copied, copied):
            copied += n
            if advance is not None and not advance(copied):
                return copied
        return copied
    except OSError as exc:  # EXDEV/EINVAL/ENOSYS on filesystems or kernels that cannot
        if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) or copied:
            raise
    buf = bytearray(COPY_CHUNK)
    view = memoryview(buf)
    while n := os.preadv(src_fd, [buf], copied):
        written = 0
        while written < n:
            written += os.pwrite(dst_fd, view[written:n], copied + written)
        copied += n
        if advance is not None and not advance(copied):
            break
    return copied


@contextlib.contextmanager
def removed_on_failure(path: str) -> Iterator[str]:
    """Delete `path` (a temp file being made) when the block fails; the error goes on."""
    try:
        yield path
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise


def read_limited(path: str, limit: int, origin: str) -> bytes:
    """A whole file that dvlite parses, refusing one bigger than `limit` before reading it."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        from dvlite.errors import FormatError

        raise FormatError(f"{origin}: more than {limit} bytes; not a file dvlite wrote")
    return data


def remove_temp_files(directory: str) -> int:
    """Delete the `.dvlite-tmp-*` files directly in `directory`; how many went."""
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if entry.name.startswith(TMP_MARK):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def makedirs(path: str) -> None:
    os.makedirs(path, exist_ok=True)


def make_writable(path: str) -> None:
    st = os.lstat(path)
    os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IWUSR)


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except PermissionError:
        make_writable(os.path.dirname(path) or ".")
        os.unlink(path)


def remove_tree(path: str) -> None:
    def onerror(func, p, exc_info):
        make_writable(os.path.dirname(p))
        func(p)

    shutil.rmtree(path, onerror=onerror)


def prune_empty_dirs(top: str, start: str) -> None:
    """Remove `start` and its parents while empty, stopping at `top`."""
    top = os.path.abspath(top)
    cur = os.path.abspath(start)
    while cur != top and cur.startswith(top + os.sep):
        try:
            os.rmdir(cur)
        except OSError:
            return
        cur = os.path.dirname(cur)


# --- links ------------------------------------------------------------------

LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")
_FICLONE = 0x40049409


def reflink(src: str, dst: str) -> None:
    with open(src, "rb") as s, open(dst, "wb") as d:
        try:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        except OSError:
            d.close()
            os.unlink(dst)
            raise


def link_works(kind: str, directory: str, dest_dir: str | None = None) -> bool:
    """Try one link of `kind` from `directory` (the cache) to `dest_dir` (default: the same) and clean up."""
    src = os.path.join(directory, f"{TMP_MARK}probe-src")
    dst = os.path.join(dest_dir or directory, f"{TMP_MARK}probe-dst")
    try:
        with open(src, "wb") as f:
            f.write(b"probe")
        if kind == "reflink":
            reflink(src, dst)
        elif kind == "hardlink":
            os.link(src, dst)
        elif kind == "symlink":
            os.symlink(src, dst)
        else:
            shutil.copyfile(src, dst)
        return True
    except OSError:
        return False
    finally:
        for p in (src, dst):
            with contextlib.suppress(OSError):
                os.unlink(p)


# --- the repository lock ----------------------------------------------------


@dataclass(frozen=True)
class LockHolder:
    pid: int
    command: str


def _read_holder(path: str) -> LockHolder | None:
    try:
        with open(path) as f:
            pid, _, command = f.read().partition(" ")
        return LockHolder(int(pid), command.strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def repo_lock(
    path: str, command: str, timeout: float, on_wait: Callable[[LockHolder | None], None]
) -> Iterator[None]:
    """An exclusive flock on `path`; the kernel drops it when its holder dies.

    The file names the holder (pid and command) so a waiting process can say who.
    It holds no data, so it is written in place rather than atomically.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            holder = _read_holder(path)
            if time.monotonic() >= deadline:
                who = f"process {holder.pid} ({holder.command})" if holder else "another process"
                raise LockError(
                    f"the repository is locked by {who}",
                    hint="wait for it to finish, or raise core.lock_timeout",
                )
            if not told:
                on_wait(holder)
                told = True
            time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def check_inside(path: str, top: str) -> bool:
    top = os.path.abspath(top)
    path = os.path.abspath(path)
    return path == top or path.startswith(top + os.sep)


def ensure_dir_for(path: str) -> None:
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise DvliteError(f"cannot create directory {parent}: {exc.strerror}") from exc
