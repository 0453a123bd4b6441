"""The experiment queue: one small JSON file per queued experiment in `.dvlite/tmp/exps/queue/`
(with its log beside it), and the states it goes through: queued, running, success, failed."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field

from dvlite import yamldoc
from dvlite.errors import BadInputError, FormatError
from dvlite.fsutil import TMP_MARK, atomic_write, read_limited
from dvlite.repo import Repo

VERSION = 1
MAX_ENTRY = 1 << 20
STATES = ("queued", "running", "success", "failed")


@dataclass
class Entry:
    name: str
    base: str  # the commit it starts from
    params: dict  # params file -> {dotted key: value}
    targets: list = field(default_factory=list)  # stages (default: all)
    queued: float = 0.0
    state: str = "queued"
    started: float | None = None
    finished: float | None = None
    pid: int | None = None  # the process running it (a process group leader), while running
    runner: str = ""  # local | dask
    commit: str | None = None  # the experiment's commit, on success
    error: str | None = None  # why it failed
    kill: bool = False  # asked to stop (a Dask run is cancelled by its client)

    @property
    def id(self) -> str:
        return f"{self.base[:12]}-{self.name}"

    def to_bytes(self) -> bytes:
        doc = {"version": VERSION, **asdict(self)}
        return (json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


def _from_bytes(data: bytes, origin: str) -> Entry:
    doc = yamldoc.load_json(data, origin, MAX_ENTRY)
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise FormatError(f"{origin}: not a dvlite queue entry of version {VERSION}")
    doc.pop("version")
    try:
        entry = Entry(**doc)
    except TypeError as exc:
        raise FormatError(f"{origin}: malformed queue entry ({exc})") from None
    if entry.state not in STATES or not isinstance(entry.params, dict):
        raise FormatError(f"{origin}: malformed queue entry")
    return entry


def directory(repo: Repo) -> str:
    path = os.path.join(repo.dvlite_dir, "tmp", "exps", "queue")
    os.makedirs(path, exist_ok=True)
    return path


def _path(repo: Repo, entry: Entry) -> str:
    return os.path.join(directory(repo), entry.id + ".json")


def log_path(repo: Repo, entry: Entry) -> str:
    return os.path.join(directory(repo), entry.id + ".log")


def save(repo: Repo, entry: Entry) -> None:
    atomic_write(_path(repo, entry), entry.to_bytes(), durable=False)


def load(repo: Repo, entry: Entry) -> Entry:
    """The entry as its file says now (another process may have changed it)."""
    path = _path(repo, entry)
    return _from_bytes(read_limited(path, MAX_ENTRY, path), path)


def entries(repo: Repo) -> list[Entry]:
    """Every entry, in the order they were queued (a damaged file is skipped)."""
    found = []
    top = directory(repo)
    for name in os.listdir(top):
        if not name.endswith(".json") or name.startswith(TMP_MARK):
            continue
        path = os.path.join(top, name)
        try:
            found.append(_from_bytes(read_limited(path, MAX_ENTRY, path), path))
        except (FormatError, OSError):
            continue
    return sorted(found, key=lambda e: (e.queued, e.name))


def add(repo: Repo, base: str, name: str, params: dict, targets: list[str]) -> Entry:
    entry = Entry(name=name, base=base, params=params, targets=list(targets), queued=time.time())
    save(repo, entry)
    return entry


def remove(repo: Repo, entry: Entry) -> None:
    for path in (_path(repo, entry), log_path(repo, entry)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def find(repo: Repo, name: str, base: str | None = None) -> Entry:
    """The entry called `name` (of `base` first when several commits have one)."""
    found = [e for e in entries(repo) if e.name == name]
    if len(found) > 1 and base is not None:
        found = [e for e in found if e.base == base] or found
    if not found:
        raise BadInputError(f"no queued experiment named {name!r}", hint="see `dvlite queue status`")
    if len(found) > 1:
        raise BadInputError(f"{len(found)} queued experiments are named {name!r}")
    return found[0]


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
