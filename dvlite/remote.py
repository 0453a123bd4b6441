"""Remotes: a URL and options from the config become an fsspec filesystem; errors become one line.

Remote layout (version 2; version 1 is the same without packs/):

    <root>/dvlite-remote.json      {"format": "dvlite-remote", "layout": 2}
    <root>/objects/ab/cdef...      one object per file, named by digest, as in the cache
    <root>/packs/<hex>.pack        small objects back to back (dvlite/packs.py)
    <root>/packs/<hex>.idx         where each object sits in that pack; written after the pack

Filesystem-like remotes (local, SFTP, WebDAV) receive uploads under a temp name
that is renamed into place; object stores (S3, GCS, Azure) write whole objects
atomically, so they are written under their final name.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from dvlite.config import Config
from dvlite.errors import BadInputError, DvliteError, FormatError, IntegrityError, RemoteError
from dvlite.fsutil import TMP_MARK

LAYOUT_FILE = "dvlite-remote.json"
_HEX32 = re.compile(r"[0-9a-f]{32}")
_PACK_NAME = re.compile(r"([0-9a-f]{32})\.(pack|idx)")
LAYOUT = 2  # the newest layout this dvlite reads and writes
LOOSE_LAYOUT = 1  # a remote holding only loose objects still says 1
EXTRAS = {
    "s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "az": "azure", "abfs": "azure",
    "adl": "azure", "sftp": "ssh", "ssh": "ssh", "webdav": "webdav", "http": "http", "https": "http",
}
OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "adl", "memory"}
READ_ONLY = {"http", "https"}
DEFAULT_JOBS = {"object-store": 32, "http": 16, "filesystem": 8}
T = TypeVar("T")


@dataclass(frozen=True)
class RemoteConfig:
    name: str
    url: str
    options: dict = field(default_factory=dict)

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0].lower() if "://" in self.url else "file"


def _coerce(value: str):
    low = value.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low.isdigit():
        return int(low)
    return value


def remote_configs(config: Config) -> dict[str, RemoteConfig]:
    found: dict[str, dict[str, str]] = {}
    for key, value in config.items().items():
        parts = key.split(".")
        if len(parts) >= 3 and parts[0] == "remote":
            found.setdefault(parts[1], {})[".".join(parts[2:])] = value
    out = {}
    for name, keys in sorted(found.items()):
        url = keys.pop("url", None)
        if url is None:
            continue  # options in config.local for a remote defined nowhere: ignored
        if "://" not in url and not os.path.isabs(url):
            url = os.path.normpath(os.path.join(config.repo_root, url))  # relative to the repo
        options = {k: v if _is_secret(k) else _coerce(v) for k, v in keys.items()}
        out[name] = RemoteConfig(name, url, _nest(options))
    return out


def _is_secret(key: str) -> bool:
    """Credentials and names stay strings even when they look like numbers."""
    leaf = key.rsplit(".", 1)[-1]
    return any(w in leaf for w in ("pass", "secret", "key", "token", "user", "name", "project",
                                   "account", "connection", "sas", "id"))


def _nest(flat: dict) -> dict:
    """`config_kwargs.retries.max_attempts = 1` -> {"config_kwargs": {"retries": {"max_attempts": 1}}}."""
    out: dict = {}
    for key, value in sorted(flat.items()):
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise BadInputError(f"remote option {key!r} conflicts with {p!r}")
        node[leaf] = value
    return out


def fsspec_kwargs(protocol: str, options: dict) -> dict:
    """Config options -> filesystem keyword arguments, for the few backends that want other shapes."""
    kwargs = json.loads(json.dumps(options))  # a deep copy: botocore edits its config in place
    if protocol == "webdav" and ("user" in kwargs or "password" in kwargs):
        kwargs["auth"] = (str(kwargs.pop("user", "")), str(kwargs.pop("password", "")))
    return kwargs


def choose(config: Config, name: str | None) -> RemoteConfig:
    remotes = remote_configs(config)
    if name is None:
        name = config.get("core.remote")
        if name is None:
            if len(remotes) == 1:
                return next(iter(remotes.values()))
            raise BadInputError(
                "no remote given and no default remote set",
                hint="add one with `dvlite remote add -d NAME URL`, or pass -r NAME",
            )
    if name not in remotes:
        known = ", ".join(remotes) or "none"
        raise BadInputError(f"unknown remote {name!r} (known: {known})", hint="see `dvlite remote list`")
    return remotes[name]


# --- error classification -------------------------------------------------------------

_TRANSIENT_WORDS = ("timed out", "timeout", "throttl", "slowdown", "slow down", "503", "500 ",
                    "502", "504", "temporarily", "connection reset", "broken pipe")
_UNREACHABLE = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNABORTED)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def classify(exc: BaseException, remote: RemoteConfig) -> RemoteError:
    """Turn whatever a backend raised into one line naming the remote, URL and cause."""
    where = f"remote {remote.name!r} ({remote.url})"
    text = " ".join(f"{type(e).__name__}: {e}" for e in _chain(exc))
    low = text.lower()
    names = " ".join(type(e).__name__ for e in _chain(exc)).lower()
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if any(isinstance(e, PermissionError) for e in _chain(exc)) or any(
        w in low for w in ("accessdenied", "access denied", "invalidaccesskeyid", "signaturedoesnotmatch",
                           "403", "401", "authentication", "unauthorized", "forbidden",
                           "authorizationfailure", "permission denied")
    ):
        return RemoteError(f"{where}: access denied ({first})",
                           hint="check the credentials: `dvlite remote modify --local NAME KEY VALUE`")
    if "nosuchbucket" in low or "bucket does not exist" in low or "containernotfound" in low:
        return RemoteError(f"{where}: no such bucket or container ({first})",
                           hint="create it first, or fix the URL with `dvlite remote modify NAME url URL`")
    if any(isinstance(e, socket.gaierror) for e in _chain(exc)) or "name or service not known" in low:
        return RemoteError(f"{where}: unknown host ({first})", hint="check the URL")
    unreachable = any(isinstance(e, OSError) and e.errno in _UNREACHABLE for e in _chain(exc))
    if unreachable or "connect" in names or "endpointconnection" in names or "connection refused" in low \
            or "cannot connect" in low or "could not connect" in low:
        return RemoteError(f"{where}: cannot reach the server ({first})",
                           hint="check that it is running and the URL and port are right")
    if isinstance(exc, ModuleNotFoundError) or "install" in low and "to access" in low:
        extra = EXTRAS.get(remote.protocol, remote.protocol)
        return RemoteError(f"{where}: the {remote.protocol}:// backend is not installed",
                           hint=f"pip install 'dvlite[{extra}]'")
    transient = any(isinstance(e, (TimeoutError, ConnectionResetError)) for e in _chain(exc)) or any(
        w in low for w in _TRANSIENT_WORDS
    )
    return RemoteError(f"{where}: {type(exc).__name__}: {first}", transient=transient)


def _hidden_failure(exc: FileNotFoundError) -> BaseException | None:
    """Some backends (fsspec's HTTP `info`) turn any failure into FileNotFoundError; find it."""
    for e in list(_chain(exc))[1:]:
        status = getattr(e, "status", None) or getattr(e, "status_code", None)
        name = type(e).__name__.lower()
        if isinstance(e, FileNotFoundError) or status == 404:
            continue
        if (isinstance(e, OSError) or "connect" in name or "timeout" in name
                or (isinstance(status, int) and status >= 400)):
            return e
    return None


_LOCAL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def local_disk_failure(exc: BaseException) -> DvliteError | None:
    """A full or read-only local disk met while talking to a remote: our problem, not the
    remote's (exit 1, naming the local path)."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _LOCAL_DISK:
            where = f": {e.filename}" if e.filename else ""
            return DvliteError(f"{e.strerror or os.strerror(e.errno)} (local disk){where}",
                               hint="free some space (`dvlite gc` lists what the cache no longer "
                                    "needs), then run the command again")
    return None


def retrying(fn: Callable[[], T], remote: RemoteConfig, attempts: int = 4,
             sleep: Callable[[float], None] = time.sleep) -> T:
    """Call fn; retry transient failures with backoff; raise permanent ones as RemoteError."""
    delay = 0.25
    for attempt in range(attempts):
        try:
            return fn()
        except FileNotFoundError as exc:
            cause = _hidden_failure(exc)
            if cause is None:
                raise
            err = classify(cause, remote)
            if not err.transient or attempt == attempts - 1:
                raise err from exc
        except (RemoteError, DvliteError):
            raise
        except Exception as exc:
            local = local_disk_failure(exc)
            if local is not None:
                raise local from exc
            err = classify(exc, remote)
            if not err.transient or attempt == attempts - 1:
                raise err from exc
        sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


def run_jobs(jobs: int, fn, items: Iterable):
    """Apply fn to items concurrently; yield (item, error or None). Permanent remote errors stop all."""
    items = list(items)
    if not items:
        return
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = [(item, pool.submit(fn, item)) for item in items]
        try:
            for item, fut in futures:
                try:
                    fut.result()
                    yield item, None
                except RemoteError as exc:
                    if not exc.transient:
                        raise
                    yield item, exc
                except (FileNotFoundError, IntegrityError) as exc:
                    yield item, exc
        except BaseException:
            for _, fut in futures:
                fut.cancel()
            raise


# --- the remote -------------------------------------------------------------------------

class Remote:
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
    def default_jobs(self) -> int:
        if self.protocol in ("file", "local"):
            # a local disk is bound by the kernel, not latency: more threads than cores only
            # fight over the GIL (measured: 11 s with 2 threads, 18 s with 8, 50,000 files)
            return max(2, os.cpu_count() or 2)
        return DEFAULT_JOBS[self.kind]

    def _connect(self):
        if self._fs is None:
            import fsspec.core

            try:
                fs, root = fsspec.core.url_to_fs(
                    self.cfg.url, skip_instance_cache=True, **fsspec_kwargs(self.protocol, self.cfg.options)
                )
            except (ImportError, ValueError, TypeError) as exc:
                where = f"remote {self.name!r} ({self.cfg.url})"
                if isinstance(exc, ImportError):
                    extra = EXTRAS.get(self.protocol)
                    hint = f"pip install 'dvlite[{extra}]'" if extra else str(exc)
                    raise RemoteError(f"{where}: the {self.protocol}:// backend is not installed",
                                      hint=hint) from exc
                if "protocol not known" in str(exc).lower():
                    raise RemoteError(f"{where}: unknown protocol {self.protocol}://",
                                      hint="see docs/remotes.md for the supported URLs") from exc
                raise RemoteError(f"{where}: bad option ({exc})",
                                  hint="check `dvlite remote modify` options") from exc
            except Exception as exc:
                raise classify(exc, self.cfg) from exc
            self._fs, self._root = fs, root.rstrip("/")
        return self._fs

    @property
    def fs(self):
        return self._connect()

    @property
    def root(self) -> str:
        self._connect()
        return self._root or ""

    def call(self, fn: Callable[[], T]) -> T:
        return retrying(fn, self.cfg)

    def object_path(self, hexdigest: str) -> str:
        return f"{self.root}/objects/{hexdigest[:2]}/{hexdigest[2:]}"

    def digest_of(self, path: str) -> str | None:
        """The object a listed path holds, or None for anything that is not `ab/cdef...`."""
        parts = path.rstrip("/").rsplit("/", 2)
        if len(parts) < 3 or len(parts[1]) != 2:
            return None
        candidate = parts[1] + parts[2]
        return candidate if _HEX32.fullmatch(candidate) else None

    # --- layout -------------------------------------------------------------------------
    def read_layout(self) -> int | None:
        """The remote's layout version, None for a remote nothing was pushed to."""
        if self._layout is not None:
            return self._layout
        path = f"{self.root}/{LAYOUT_FILE}"
        try:
            data = self.read_small(path, 64 << 10)
        except FileNotFoundError:
            return None
        except FormatError:
            raise RemoteError(f"remote {self.name!r}: {path} is not a dvlite layout file") from None
        try:
            doc = json.loads(data)
            layout = doc["layout"]
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
            self.write_bytes(f"{self.root}/{LAYOUT_FILE}", body)
            self._layout = layout

    # --- objects ---------------------------------------------------------------------------
    def list_objects(self) -> set[str]:
        """Every object on the remote, from listings (a request per page, not per object)."""
        base = f"{self.root}/objects"
        try:
            paths = self.call(lambda: self.fs.find(base, withdirs=False))
        except FileNotFoundError:
            return set()
        return {d for d in map(self.digest_of, paths) if d}

    def loose_sizes(self) -> dict[str, int]:
        base = f"{self.root}/objects"
        try:
            found = self.call(lambda: self.fs.find(base, withdirs=False, detail=True))
        except FileNotFoundError:
            return {}
        out = {}
        for path, info in found.items():
            digest = self.digest_of(path)
            if digest:
                out[digest] = int(info.get("size") or 0)
        return out

    def has_object(self, hexdigest: str) -> bool:
        try:
            self.call(lambda: self.fs.info(self.object_path(hexdigest)))
            return True
        except FileNotFoundError:
            return False

    def _makedirs(self, path: str) -> None:
        if self.kind != "filesystem" or path in self._made:
            return
        self.call(lambda: self.fs.makedirs(path, exist_ok=True))
        self._made.add(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        self._require_writable()
        parent = path.rsplit("/", 1)[0]
        self._makedirs(parent)
        if self.kind == "object-store":
            self.call(lambda: self.fs.pipe_file(path, data))
            return
        tmp = f"{parent}/{TMP_MARK}{secrets.token_hex(6)}"
        self.call(lambda: self.fs.pipe_file(tmp, data))
        self._rename(tmp, path)

    def upload(self, local_path: str, hexdigest: str) -> None:
        self._require_writable()
        final = self.object_path(hexdigest)
        parent = final.rsplit("/", 1)[0]
        self._makedirs(parent)
        if self.kind == "object-store":
            self.call(lambda: self.fs.put_file(local_path, final, **self._big_kwargs()))
            return
        tmp = f"{parent}/{TMP_MARK}{secrets.token_hex(6)}"
        self.call(lambda: self.fs.put_file(local_path, tmp))
        self._rename(tmp, final)

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

    def get_object(self, hexdigest: str, local_path: str) -> None:
        """Download an object to a local file in one streamed request."""
        path = self.object_path(hexdigest)
        self.call(lambda: self.fs.get_file(path, local_path))

    def read_object(self, hexdigest: str) -> bytes:
        path = self.object_path(hexdigest)
        # s3fs asks for the size with a HEAD before every GET unless told not to split the read
        kwargs = {"max_concurrency": 1} if self.protocol in ("s3", "s3a") else {}
        return self.call(lambda: self.fs.cat_file(path, **kwargs))

    def remove_object(self, hexdigest: str) -> None:
        self._require_writable()
        path = self.object_path(hexdigest)
        try:
            self.call(lambda: self.fs.rm_file(path))
        except FileNotFoundError:
            pass

    def replace_object(self, local_path: str, hexdigest: str) -> None:
        """Put a good copy over a damaged object: whole under a temp name first, then the damaged
        one goes and the copy takes its name (an object store overwrites in one PUT)."""
        self._require_writable()
        final = self.object_path(hexdigest)
        if self.kind == "object-store":
            self.call(lambda: self.fs.put_file(local_path, final, **self._big_kwargs()))
            return
        parent = final.rsplit("/", 1)[0]
        self._makedirs(parent)
        tmp = f"{parent}/{TMP_MARK}{secrets.token_hex(6)}"
        self.call(lambda: self.fs.put_file(local_path, tmp))
        self.remove_object(hexdigest)
        self.call(lambda: self._move(tmp, final))

    def hash_object(self, hexdigest: str) -> str:
        """The digest of what the remote holds under an object's name, streamed."""
        from dvlite.digest import CHUNK, new_hasher

        path = self.object_path(hexdigest)

        def digest() -> str:
            h = new_hasher()
            with self.fs.open(path, "rb", block_size=CHUNK * 4) as f:
                while chunk := f.read(CHUNK * 4):
                    h.update(chunk)
            return h.hexdigest()

        return self.call(digest)

    # --- packs -------------------------------------------------------------------------------
    def pack_path(self, pack: str, ext: str) -> str:
        return f"{self.root}/packs/{pack}.{ext}"

    def _find(self, base: str) -> list[str]:
        try:
            return self.call(lambda: self.fs.find(base, withdirs=False))
        except FileNotFoundError:
            return []

    def pack_files(self) -> dict[str, dict[str, int | None]]:
        """pack digest -> {"pack": size, "idx": size} from one listing of `packs/` (a size is
        None where the backend's listing gives none). Names that are not a pack's are ignored."""
        try:
            found = self.call(lambda: self.fs.find(f"{self.root}/packs", withdirs=False, detail=True))
        except FileNotFoundError:
            return {}
        out: dict[str, dict[str, int | None]] = {}
        for path, info in found.items():
            match = _PACK_NAME.fullmatch(path.rstrip("/").rsplit("/", 1)[-1])
            if match:
                size = info.get("size")
                out.setdefault(match[1], {})[match[2]] = int(size) if size is not None else None
        return out

    def read_file(self, path: str) -> bytes:
        return self.call(lambda: self.fs.cat_file(path))

    def read_small(self, path: str, limit: int) -> bytes:
        """A whole small file (an index, the layout file), refused when bigger than `limit`."""
        data = self.read_range(path, 0, limit + 1)
        if len(data) > limit:
            raise FormatError(f"remote {self.name!r}: {path} is bigger than {limit} bytes; "
                              "not a file dvlite wrote")
        return data

    def read_range(self, path: str, start: int, end: int) -> bytes:
        if self.protocol in ("sftp", "ssh"):  # sshfs's cat_file ignores start/end
            def read() -> bytes:
                with self.fs.open(path, "rb", block_size=end - start) as f:
                    f.seek(start)
                    return f.read(end - start)

            return self.call(read)
        data = self.call(lambda: self.fs.cat_file(path, start=start, end=end))
        return data[start:end] if len(data) > end - start else data  # a backend that sent it all

    def temp_files(self) -> list[str]:
        paths = self._find(f"{self.root}/objects") + self._find(f"{self.root}/packs")
        return [p for p in paths if p.rsplit("/", 1)[-1].startswith(TMP_MARK)]

    def remove_path(self, path: str) -> None:
        try:
            self.call(lambda: self.fs.rm_file(path))
        except FileNotFoundError:
            pass

    def _require_writable(self) -> None:
        if self.kind == "http":
            raise RemoteError(
                f"remote {self.name!r} ({self.cfg.url}) is HTTP, which is read-only",
                hint="push to the storage behind it (a local directory, S3, SFTP, ...) instead",
            )

    def close(self) -> None:
        self._fs = None
