"""What a backend raised, as one line naming the remote; retrying what is worth retrying;
running remote work in parallel."""

from __future__ import annotations

import errno
import os
import re
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from dvlite.errors import DvliteError, IntegrityError, RemoteError
from dvlite.remotes.config import EXTRAS, RemoteConfig

T = TypeVar("T")
# HTTP statuses as words: a port or a byte count holding "401" is no refusal
_DENIED = re.compile(r"accessdenied|access denied|invalidaccesskeyid|signaturedoesnotmatch|"
                     r"\b40[13]\b|authentication|unauthorized|forbidden|authorizationfailure|"
                     r"permission denied")
_TRANSIENT = re.compile(r"timed out|timeout|throttl|slowdown|slow down|\b50[0234]\b|temporarily|"
                        r"connection reset|broken pipe")
_TIMEOUT = re.compile(r"timed out|timeout")
_UNREACHABLE = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNABORTED)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _unreachable(exc: BaseException, low: str, names: str) -> bool:
    if any(isinstance(e, OSError) and e.errno in _UNREACHABLE for e in _chain(exc)):
        return True
    return "connect" in names or "endpointconnection" in names \
        or "connection refused" in low or "cannot connect" in low or "could not connect" in low


def is_timeout(exc: BaseException) -> bool:
    """No answer in time: a timeout anywhere in the chain (fsspec's FSTimeoutError included)."""
    return any(isinstance(e, TimeoutError) or _TIMEOUT.search(f"{type(e).__name__} {e}".lower())
               for e in _chain(exc))


def _timeout_of(remote: RemoteConfig) -> float | None:
    try:
        return remote.timeout
    except DvliteError:  # a malformed value is reported where the remote is set up
        return None


def classify(exc: BaseException, remote: RemoteConfig) -> RemoteError:
    """Turn whatever a backend raised into one line naming the remote, URL and cause."""
    where = f"remote {remote.name!r} ({remote.url})"
    text = " ".join(f"{type(e).__name__}: {e}" for e in _chain(exc))
    low = text.lower()
    names = " ".join(type(e).__name__ for e in _chain(exc)).lower()
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    timeout = _timeout_of(remote)
    if timeout is not None and is_timeout(exc):
        return RemoteError(f"{where}: no answer within {timeout:g} s (the remote's timeout)",
                           hint="check that the server is up and the URL and port are right; "
                                "`dvlite remote modify NAME timeout SECONDS` waits longer")
    if any(isinstance(e, socket.gaierror) for e in _chain(exc)) or "name or service not known" in low:
        return RemoteError(f"{where}: unknown host ({first})", hint="check the URL")
    if _unreachable(exc, low, names):
        return RemoteError(f"{where}: cannot reach the server ({first})",
                           hint="check that it is running and the URL and port are right")
    if any(isinstance(e, PermissionError) for e in _chain(exc)) or _DENIED.search(low):
        return RemoteError(f"{where}: access denied ({first})",
                           hint="check the credentials: `dvlite remote modify --local NAME KEY VALUE`")
    if "nosuchbucket" in low or "bucket does not exist" in low or "containernotfound" in low:
        return RemoteError(f"{where}: no such bucket or container ({first})",
                           hint="create it first, or fix the URL with `dvlite remote modify NAME url URL`")
    if isinstance(exc, ModuleNotFoundError) or "install" in low and "to access" in low:
        extra = EXTRAS.get(remote.protocol, remote.protocol)
        return RemoteError(f"{where}: the {remote.protocol}:// backend is not installed",
                           hint=f"pip install 'dvlite[{extra}]'")
    transient = any(isinstance(e, (TimeoutError, ConnectionResetError)) for e in _chain(exc)) or \
        bool(_TRANSIENT.search(low))
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


def local_disk_failure(exc: BaseException, local: str | None = None) -> DvliteError | None:
    """A full or read-only local disk met while talking to a remote: our problem, not the
    remote's (exit 1, naming the local path: `local` when the caller knows it)."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _LOCAL_DISK:
            where = f": {local or e.filename}" if local or e.filename else ""
            return DvliteError(f"{e.strerror or os.strerror(e.errno)} (local disk){where}",
                               hint="free some space (`dvlite gc` lists what the cache no longer "
                                    "needs), then run the command again")
    return None


def retrying(fn: Callable[[], T], remote: RemoteConfig, attempts: int = 4,
             sleep: Callable[[float], None] = time.sleep, local: str | None = None) -> T:
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
            disk = local_disk_failure(exc, local)
            if disk is not None:
                raise disk from exc
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
