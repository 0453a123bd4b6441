"""`dvlite.lock`: what each stage's last successful run used and produced (the lineage record).

    schema: 1
    stages:
      train:
        cmd: python src/train.py data/prepared model.pkl
        deps:
        - path: data/prepared
          kind: dir
          hash: xxh3-128
          digest: 5c1f...
          size: 2048
          files: 2
        params:
          params.yaml:
            train.alpha: 0.5
        outs:
        - path: model.pkl
          kind: file
          hash: xxh3-128
          digest: 9a0b...
          size: 312
          files: 1
          cache: true

Canonical: stages sorted by name, deps/outs sorted by path, keys sorted, trailing newline.
Paths are repo-relative with `/` separators.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from dvlite import paths, yamldoc
from dvlite.digest import Digest
from dvlite.errors import FormatError
from dvlite.formats.pointer import Pointer

FILENAME = "dvlite.lock"
SCHEMA = 1


@dataclass(frozen=True)
class Entry:
    """A dep or out as recorded: its path and what its bytes were."""

    path: str
    kind: str  # file | dir
    digest: Digest
    size: int
    files: int
    cache: bool = True  # outs only; deps are never cached by the stage

    def pointer(self) -> Pointer:
        return Pointer(self.kind, self.digest, self.size, self.files)

    def to_doc(self, with_cache: bool) -> dict:
        doc = {"path": self.path, "kind": self.kind, "hash": self.digest.algo,
               "digest": self.digest.hex, "size": self.size, "files": self.files}
        if with_cache:
            doc["cache"] = self.cache
        return doc


@dataclass(frozen=True)
class StageLock:
    name: str
    cmd: object  # str, or list[str]
    deps: tuple[Entry, ...]
    params: dict  # params file -> {key: value}
    outs: tuple[Entry, ...]

    def to_doc(self) -> dict:
        doc: dict = {"cmd": self.cmd}
        if self.deps:
            doc["deps"] = [d.to_doc(False) for d in sorted(self.deps, key=lambda e: e.path)]
        if self.params:
            doc["params"] = _sorted(self.params)
        if self.outs:
            doc["outs"] = [o.to_doc(True) for o in sorted(self.outs, key=lambda e: e.path)]
        return doc

    def dep(self, path: str) -> Entry | None:
        return next((d for d in self.deps if d.path == path), None)

    def out(self, path: str) -> Entry | None:
        return next((o for o in self.outs if o.path == path), None)


@dataclass(frozen=True)
class Lock:
    stages: dict[str, StageLock]

    def to_bytes(self) -> bytes:
        doc = {"schema": SCHEMA,
               "stages": {n: self.stages[n].to_doc() for n in sorted(self.stages)}}
        return dump(doc)

    def with_stage(self, entry: StageLock) -> Lock:
        return Lock({**self.stages, entry.name: entry})

    def without(self, names) -> Lock:
        return Lock({n: s for n, s in self.stages.items() if n not in set(names)})

    def cached_outs(self) -> list[tuple[str, Entry]]:
        """(stage, out) for every out whose bytes are in the cache, by path."""
        found = [(s.name, o) for s in self.stages.values() for o in s.outs if o.cache]
        return sorted(found, key=lambda x: x[1].path)

    def producer_of(self, path: str) -> tuple[StageLock, Entry] | None:
        for s in self.stages.values():
            for o in s.outs:
                if o.path == path or path.startswith(o.path + "/"):
                    return s, o
        return None


def _sorted(value):
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def dump(doc) -> bytes:
    """Canonical YAML: mapping keys in the order the writer built them (params sorted)."""
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True,
                          width=1 << 16).encode()


EMPTY = Lock({})


def _entry(raw, origin: str, where: str, is_out: bool) -> Entry:
    if not isinstance(raw, dict):
        raise FormatError(f"{origin}: {where}: expected a mapping")
    for key in ("path", "kind", "hash", "digest", "size", "files"):
        if key not in raw:
            raise FormatError(f"{origin}: {where}: missing key {key!r}")
    if raw["kind"] not in ("file", "dir"):
        raise FormatError(f"{origin}: {where}: unknown kind {raw['kind']!r}")
    try:
        digest = Digest.parse(str(raw["hash"]), str(raw["digest"]))
    except FormatError as exc:
        raise FormatError(f"{origin}: {where}: {exc.message}") from exc
    size, files = raw["size"], raw["files"]
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in (size, files)):
        raise FormatError(f"{origin}: {where}: size and files must be non-negative integers")
    cache = raw.get("cache", True) if is_out else False
    if not isinstance(cache, bool):
        raise FormatError(f"{origin}: {where}: malformed entry")
    return Entry(paths.check(raw["path"], f"{origin}: {where}"), raw["kind"], digest, size, files, cache)


def parse_stage_doc(name: str, body, origin: str) -> StageLock:
    if not isinstance(body, dict) or "cmd" not in body:
        raise FormatError(f"{origin}: stage {name!r}: missing key 'cmd'")
    cmd = body["cmd"]
    if not (isinstance(cmd, str) or isinstance(cmd, list) and all(isinstance(c, str) for c in cmd)):
        raise FormatError(f"{origin}: stage {name!r}: cmd must be a string or a list of strings")
    deps = _entries(body, "deps", origin, name, False)
    outs = _entries(body, "outs", origin, name, True)
    params = body.get("params") or {}
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise FormatError(f"{origin}: stage {name!r}: params must map files to {{key: value}}")
    return StageLock(name, cmd, deps, params, outs)


def _entries(body: dict, key: str, origin: str, name: str, is_out: bool) -> tuple[Entry, ...]:
    raw = body.get(key) or []
    if not isinstance(raw, list):
        raise FormatError(f"{origin}: stage {name!r}: {key} must be a list")
    return tuple(_entry(e, origin, f"stage {name!r} {key[:-1]}", is_out) for e in raw)


def from_bytes(data: bytes, origin: str = FILENAME) -> Lock:
    doc = yamldoc.load(data, origin)
    if doc is None:
        return EMPTY
    if not isinstance(doc, dict):
        raise FormatError(f"{origin}: not a dvlite lock file (expected a mapping)")
    if "schema" not in doc:
        raise FormatError(f"{origin}: missing key 'schema'",
                          hint="a lock file from DVC (dvc.lock) is not read; run `dvlite repro` to write one")
    if doc["schema"] != SCHEMA:
        raise FormatError(f"{origin}: unknown lock schema {doc['schema']!r} (this dvlite reads schema {SCHEMA})",
                          hint="a newer dvlite wrote this file; upgrade dvlite")
    stages = doc.get("stages") or {}
    if not isinstance(stages, dict):
        raise FormatError(f"{origin}: 'stages' must be a mapping")
    return Lock({str(n): parse_stage_doc(str(n), b, origin) for n, b in stages.items()})
