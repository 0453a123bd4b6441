"""A remote as a Storage: its URL and options become an fsspec filesystem; keys become paths
under its root; every call is retried when worth it and its failure made one line.

What a remote holds is the layout of storage/layout.py (layout 1: loose objects only;
layout 2: packs too; `runs/` when run records were pushed). Filesystem-like remotes (local,
SFTP, WebDAV) receive uploads under a temp name that is renamed into place; object stores
(S3, GCS, Azure) write whole objects atomically, so they are written under their final name.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import BinaryIO, TypeVar

from dvlite.errors import FormatError, RemoteError
from dvlite.fsutil import TMP_MARK
from dvlite.remotes.config import EXTRAS, RemoteConfig, fsspec_target
from dvlite.remotes.errors import classify, retrying
from dvlite.storage.base import Listed, Storage, check_key
from dvlite.storage.layout import LAYOUT_FILE

LAYOUT = 3  # the newest layout this dvlite reads and writes (3: chunked objects)
LOOSE_LAYOUT = 1  # a remote holding only loose objects still says 1
OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "adl", "memory"}
READ_ONLY = {"http", "https"}
DEFAULT_JOBS = {"object-store": 32, "http": 16, "filesystem": 8}
T = TypeVar("T")
# Backend libraries log failures with tracebacks (gcsfs: `logger.exception` when its retries
# run out); with no handler configured Python prints those on stderr. The CLI shows them with -v.
_BACKEND_LOGGERS = ("gcsfs", "s3fs", "adlfs", "azure", "sshfs", "asyncssh", "webdav4", "fsspec",
                    "aiobotocore", "botocore", "google", "urllib3", "httpx", "aiohttp")
# Calls that move no bulk data: with a `timeout` option, each is cut off after that long, its
# backend's own retries included (an unreachable endpoint then fails within the timeout).
_METADATA_CALLS = ("info", "ls", "find", "rm_file", "makedirs", "mkdir", "exists")


_VERSION_FIELDS = ("ETag", "etag", "md5Hash", "generation", "version_id", "mtime", "LastModified",
                   "last_modified", "updated", "modified")


def _version(info: dict) -> str | None:
    """What changes in a listing when a blob is rewritten, whatever the backend calls it."""
    found = [f"{k}={info[k]}" for k in _VERSION_FIELDS if info.get(k) is not None]
    return ";".join(found) or None


class Remote(Storage):
    def __init__(self, cfg: RemoteConfig):
        self.cfg = cfg
        self.protocol = cfg.protocol
        if self.protocol in OBJECT_STORES:
            self.kind = "object-store"
        elif self.protocol in READ_ONLY:
            self.kind = "http"
        else:
            self.kind = "filesystem"
        self._fs = None
        self._root: str | None = None
        self._made: set[str] = set()
        self._layout: int | None = None

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def is_local_dir(self) -> bool:
        """A directory on this machine: bound by the kernel's copying, not by latency."""
        return self.protocol in ("file", "local")

    @property
    def default_jobs(self) -> int:
        if self.is_local_dir:
            # a local disk is bound by the kernel, not latency: more threads than cores only
            # fight over the GIL (measured: 11 s with 2 threads, 18 s with 8, 50,000 files)
            return max(2, os.cpu_count() or 2)
        return DEFAULT_JOBS[self.kind]

    # --- the filesystem behind it ---------------------------------------------------------
    def _connect(self):
        if self._fs is None:
            import fsspec.core

            _quiet_backend_loggers()
            try:
                url, kwargs = fsspec_target(self.cfg)
                fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True, **kwargs)
            except (ImportError, ValueError, TypeError) as exc:
                raise self._setup_error(exc) from exc
            except Exception as exc:
                raise classify(exc, self.cfg) from exc
            if self.cfg.timeout is not None:
                _bound_metadata_calls(fs, self.cfg.timeout)
            self._fs, self._root = fs, root.rstrip("/")
        return self._fs

    def _setup_error(self, exc: Exception) -> RemoteError:
        where = f"remote {self.name!r} ({self.cfg.url})"
        if isinstance(exc, ImportError):
            extra = EXTRAS.get(self.protocol)
            hint = f"pip install 'dvlite[{extra}]'" if extra else str(exc)
            return RemoteError(f"{where}: the {self.protocol}:// backend is not installed", hint=hint)
        if "protocol not known" in str(exc).lower():
            return RemoteError(f"{where}: unknown protocol {self.protocol}://",
                               hint="see docs/remotes.md for the supported URLs")
        return RemoteError(f"{where}: bad option ({exc})", hint="check `dvlite remote modify` options")

    @property
    def fs(self):
        return self._connect()

    @property
    def root(self) -> str:
        self._connect()
        return self._root or ""

    def call(self, fn: Callable[[], T]) -> T:
        return retrying(fn, self.cfg)

    def path(self, key: str) -> str:
        """The backend's path of a key (for messages and URLs)."""
        return f"{self.root}/{check_key(key)}"

    # --- the Storage interface --------------------------------------------------------------
    def load(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        path = self.path(key)
        if start is None and end is None:
            # s3fs asks for the size with a HEAD before every GET unless told not to split the read
            kwargs = {"max_concurrency": 1} if self.protocol in ("s3", "s3a") else {}
            return self.call(lambda: self.fs.cat_file(path, **kwargs))
        start = start or 0
        if self.protocol in ("sftp", "ssh"):  # sshfs's cat_file ignores start/end
            def read() -> bytes:
                with self.fs.open(path, "rb", block_size=max(1, (end or 0) - start)) as f:
                    f.seek(start)
                    return f.read() if end is None else f.read(end - start)

            return self.call(read)
        data = self.call(lambda: self.fs.cat_file(path, start=start, end=end))
        if end is not None and len(data) > end - start:  # a backend that sent it all
            return data[start:end]
        return data

    def store(self, key: str, data: bytes) -> None:
        self.require_writable()
        self._put(self.path(key), lambda target: self.fs.pipe_file(target, data))

    def store_file(self, key: str, local_path: str) -> None:
        self.require_writable()
        self._put(self.path(key), lambda target: self.fs.put_file(local_path, target, **self._big_kwargs()))

    def _put(self, final: str, write: Callable[[str], None]) -> None:
        parent = final.rsplit("/", 1)[0]
        self._makedirs(parent)
        if self.kind == "object-store":
            self.call(lambda: write(final))
            return
        tmp = f"{parent}/{TMP_MARK}{os.urandom(6).hex()}"
        self.call(lambda: write(tmp))
        self._rename(tmp, final)

    def fetch_file(self, key: str, local_path: str) -> None:
        path = self.path(key)
        retrying(lambda: self.fs.get_file(path, local_path), self.cfg, local=local_path)

    def delete(self, key: str) -> None:
        self.require_writable()
        path = self.path(key)
        try:
            self.call(lambda: self.fs.rm_file(path))
        except FileNotFoundError:
            pass

    def list(self, prefix: str) -> dict[str, Listed]:
        return {k: v for k, v in self._list_raw(prefix).items()
                if not k.rsplit("/", 1)[-1].startswith(TMP_MARK)}

    def _list_raw(self, prefix: str) -> dict[str, Listed]:
        base = self.path(prefix)
        try:
            found = self.call(lambda: self.fs.find(base, withdirs=False, detail=True))
        except FileNotFoundError:
            return {}
        top = self.root + "/"
        out: dict[str, Listed] = {}
        for path, info in found.items():
            path = path.rstrip("/")
            key = path[len(top):] if path.startswith(top) else path.lstrip("/")
            size = info.get("size")
            out[key] = Listed(int(size) if size is not None else None, _version(info))
        return out

    def stat(self, key: str) -> int:
        path = self.path(key)
        info = self.call(lambda: self.fs.info(path))
        return int(info.get("size") or 0)

    def open(self, key: str) -> BinaryIO:
        return self.call(lambda: self.fs.open(self.path(key), "rb"))

    # --- beyond the interface: layout, temp files, replacing ------------------------------
    def read_small(self, key: str, limit: int) -> bytes:
        """A whole small blob (an index, the layout file), refused when bigger than `limit`;
        the first thing most commands read, so bounded by the `timeout` option."""
        deadline = self._deadline("cat_file")
        if deadline:
            path = self.path(key)
            data = self.call(lambda: self.fs.cat_file(path, start=0, end=limit + 1, **deadline))
            data = data[:limit + 1]
        else:
            data = self.load(key, 0, limit + 1)
        if len(data) > limit:
            raise FormatError(f"remote {self.name!r}: {self.path(key)} is bigger than {limit} bytes; "
                              "not a file dvlite wrote")
        return data

    def read_layout(self) -> int | None:
        """The remote's layout version, None for a remote nothing was pushed to."""
        if self._layout is not None:
            return self._layout
        path = self.path(LAYOUT_FILE)
        try:
            data = self.read_small(LAYOUT_FILE, 64 << 10)
        except FileNotFoundError:
            return None
        except FormatError:
            data = b""
        try:
            layout = json.loads(data)["layout"]
        except (ValueError, KeyError, TypeError, RecursionError):
            layout = None
        if type(layout) is not int or not 1 <= layout < 1 << 16:
            raise RemoteError(f"remote {self.name!r}: {path} is not a dvlite layout file")
        if layout > LAYOUT:
            raise RemoteError(
                f"remote {self.name!r} uses layout {layout} ({path}); this dvlite reads up to {LAYOUT}",
                hint="upgrade dvlite",
            )
        self._layout = layout
        return layout

    def ensure_layout(self, layout: int = LOOSE_LAYOUT) -> None:
        """Record the layout before writing what needs it; never downgrade."""
        current = self.read_layout()
        if current is None or current < layout:
            body = json.dumps({"format": "dvlite-remote", "layout": layout}).encode() + b"\n"
            self.store(LAYOUT_FILE, body)
            self._layout = layout

    def temp_files(self) -> list[str]:
        """Keys of leftover temp files of interrupted uploads (filesystem-like remotes)."""
        return [k for prefix in ("objects", "packs", "chunks", "chunklists")
                for k in self._list_raw(prefix)
                if k.rsplit("/", 1)[-1].startswith(TMP_MARK)]

    def delete_temp(self, key: str) -> None:
        try:
            self.call(lambda: self.fs.rm_file(f"{self.root}/{key}"))
        except FileNotFoundError:
            pass

    def replace(self, key: str, local_path: str) -> None:
        """Put a good copy over a damaged blob: whole under a temp name first, then the damaged
        one goes and the copy takes its name (an object store overwrites in one PUT)."""
        self.require_writable()
        final = self.path(key)
        if self.kind == "object-store":
            self.call(lambda: self.fs.put_file(local_path, final, **self._big_kwargs()))
            return
        parent = final.rsplit("/", 1)[0]
        self._makedirs(parent)
        tmp = f"{parent}/{TMP_MARK}{os.urandom(6).hex()}"
        self.call(lambda: self.fs.put_file(local_path, tmp))
        self.delete(key)
        self.call(lambda: self._move(tmp, final))

    def _makedirs(self, path: str) -> None:
        if self.kind != "filesystem" or path in self._made:
            return
        self.call(lambda: self.fs.makedirs(path, exist_ok=True))
        self._made.add(path)

    def _big_kwargs(self) -> dict:
        # s3fs uploads a big file as up to 10 concurrent parts of 50 MiB, each held in memory
        # (a 190 MiB push peaked at 461 MiB, 278 MiB with 2); objects already travel in parallel
        return {"max_concurrency": 2} if self.protocol in ("s3", "s3a") else {}

    def _move(self, tmp: str, final: str) -> None:
        if self.protocol == "webdav":  # fsspec's webdav mv is COPY + DELETE; MOVE is a rename
            self.fs.client.move(tmp, final, overwrite=True)
        else:
            self.fs.mv(tmp, final)

    def _rename(self, tmp: str, final: str) -> None:
        try:
            self.call(lambda: self._move(tmp, final))
        except RemoteError:
            # another pusher may have put the same object there first: same bytes, fine
            try:
                self.call(lambda: self.fs.info(final))
            except FileNotFoundError:
                raise
            self.call(lambda: self.fs.rm_file(tmp))

    def _deadline(self, method: str) -> dict:
        """`timeout=` for one call of an async backend's sync method (fsspec's `sync` bounds
        the whole call with it), or nothing."""
        if self.cfg.timeout is None or self.protocol in ("sftp", "ssh"):
            return {}  # sshfs's cat_file ignores ranges: load() reads through open() instead
        return {"timeout": self.cfg.timeout} if _is_sync_mirror(self.fs, method) else {}

    def require_writable(self) -> None:
        if self.kind == "http":
            raise RemoteError(
                f"remote {self.name!r} ({self.cfg.url}) is HTTP, which is read-only",
                hint="push to the storage behind it (a local directory, S3, SFTP, ...) instead",
            )

    def close(self) -> None:
        self._fs = None


def _quiet_backend_loggers() -> None:
    for name in _BACKEND_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


def _is_sync_mirror(fs, method: str) -> bool:
    """Whether fs.METHOD is fsspec's blocking wrapper of an async method (it accepts
    `timeout=`, which bounds the whole call, retries included)."""
    return bool(getattr(fs, "async_impl", False)) and callable(fs.__dict__.get(method))


def _bound_metadata_calls(fs, seconds: float) -> None:
    import functools

    for method in _METADATA_CALLS:
        if _is_sync_mirror(fs, method):
            setattr(fs, method, functools.partial(fs.__dict__[method], timeout=seconds))
