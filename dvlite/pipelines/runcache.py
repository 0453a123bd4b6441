"""The run cache: a record of each successful stage run, named by a digest of what it ran on
(`runs/KEY` in the cache and on remotes), so a run with the same command, deps and params is
restored instead of run again (`repro`), and shared through any Storage."""

from __future__ import annotations

import json

from dvlite import yamldoc
from dvlite.digest import hash_bytes
from dvlite.errors import FormatError, IntegrityError
from dvlite.formats import lockfile
from dvlite.formats.lockfile import Entry, StageLock
from dvlite.outputs import Tracked
from dvlite.pipelines.spec import Stage
from dvlite.repo import Repo
from dvlite.storage.base import Storage
from dvlite.storage.layout import RUNS, record_of
from dvlite.storage.layout import run_key as record_key


def run_key(stage: Stage, deps: list[Entry], params: dict) -> str:
    doc = {
        "cmd": stage.cmd_record(),
        "wdir": stage.wdir,
        "deps": sorted([d.path, d.digest.hex] for d in deps),
        "params": params,
        "outs": sorted([o.path, o.cache] for o in stage.outs),
    }
    return hash_bytes(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hex


def _record_bytes(key: str, entry: StageLock) -> bytes:
    return lockfile.dump({"schema": lockfile.SCHEMA, "key": key, "run": entry.to_doc()})


def parse_record(data: bytes, origin: str) -> tuple[str, StageLock]:
    doc = yamldoc.load(data, origin)
    if not isinstance(doc, dict) or doc.get("schema") != lockfile.SCHEMA or "key" not in doc:
        raise FormatError(f"{origin}: not a dvlite run record of schema {lockfile.SCHEMA}")
    return str(doc["key"]), lockfile.parse_stage_doc("run", doc.get("run"), origin)


def save_record(repo: Repo, key: str, entry: StageLock) -> None:
    repo.odb.store(record_key(key), _record_bytes(key, entry))


def load_record(repo: Repo, key: str) -> StageLock | None:
    """The record of run `key`; None when there is none or it is damaged (that costs a run).
    A record naming an unsafe path is not damage: it is refused (UnsafePathError)."""
    try:
        data = repo.odb.load(record_key(key))
    except FileNotFoundError:
        return None
    try:
        found, entry = parse_record(data, repo.odb._file(record_key(key)))
    except FormatError:
        return None
    return entry if found == key else None


def objects_of(repo: Repo, outs) -> tuple[dict[str, int], list[str]]:
    """Objects the outs need (digest -> size) and digests of manifests not in the cache."""
    need: dict[str, int] = {}
    unreadable = []
    for o in outs:
        if o.kind == "file":
            need[o.digest.hex] = o.size
            continue
        hexd = o.digest.hex
        need[hexd] = repo.odb.size(hexd) if repo.odb.contains(hexd) else 0
        try:
            manifest = repo.odb.manifest(hexd, o.path)
        except IntegrityError:
            unreadable.append(hexd)
            continue
        for e in manifest.entries:
            need[e.digest] = e.size
    return need, unreadable


def restorable(repo: Repo, record: StageLock) -> bool:
    need, unreadable = objects_of(repo, record.outs)
    return not unreadable and not repo.odb.missing(need)


def write_uncached(repo: Repo, o: Entry) -> None:
    """Restore an out the lock does not track (cache: false) from the run cache's copy."""
    if o.kind == "file":
        repo.write(o.path, repo.odb.read_verified(o.digest.hex), durable=False, replace_link=True)
        return
    manifest = repo.odb.manifest(o.digest.hex, o.path)
    for e in manifest.entries:
        repo.write(f"{o.path}/{e.path}", repo.odb.read_verified(e.digest), durable=False,
                   mode=0o755 if e.executable else 0o644, replace_link=True)


def records(storage: Storage):
    """(key, record) of every readable run record a storage holds, by key."""
    for name in sorted(filter(None, map(record_of, storage.list(RUNS)))):
        try:
            yield name, parse_record(storage.load(record_key(name)), f"{storage.name}: {RUNS}/{name}")[1]
        except FormatError:
            continue


def outputs(repo: Repo) -> list[Tracked]:
    """The outs every local run record restores, as outputs push and fetch understand."""
    return [Tracked(f"{o.path} (run cache {key[:10]})", o.pointer())
            for key, entry in records(repo.odb) for o in entry.outs]


def push_records(repo: Repo, remote: Storage) -> int:
    """Copy every local run record to the remote (after the objects they restore)."""
    count = 0
    for key, _entry in records(repo.odb):
        remote.store(record_key(key), repo.odb.load(record_key(key)))
        count += 1
    return count


def pull_records(repo: Repo, remote: Storage) -> int:
    """Copy the run records this cache lacks from the remote; how many were added."""
    have = set(filter(None, map(record_of, repo.odb.list(RUNS))))
    added = 0
    for key in sorted(filter(None, map(record_of, remote.list(RUNS)))):
        if key in have:
            continue
        data = remote.load(record_key(key))
        try:
            found, _entry = parse_record(data, f"{remote.name}: {RUNS}/{key}")
        except FormatError:
            continue
        if found == key:
            repo.odb.store(record_key(key), data)
            added += 1
    return added
