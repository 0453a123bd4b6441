"""`dvc.lock`: schema 2.0 (DVC 2.x and 3.x) and the DVC 1.x layout (stages at the top).

    schema: '2.0'
    stages:
      train:
        cmd: python train.py
        deps:
        - path: data/prepared        # relative to the stage's wdir
          hash: md5                  # DVC 3.x; absent: md5-dos2unix
          md5: 5c1f....dir
          size: 2048
          nfiles: 2
        params:
          params.yaml:
            train.alpha: 0.5
        outs:
        - path: model.pkl
          md5: 9a0b...
          size: 312

DVC 1.x wrote the same stage mappings directly at the top level, with only `path` and `md5`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dvlite import yamldoc
from dvlite.dvc.dvcfile import parse_hash
from dvlite.errors import FormatError

FILENAME = "dvc.lock"
SCHEMA = "2.0"
MAX_FILE = 64 << 20
STAGE_KEYS = {"cmd", "deps", "params", "outs"}
ITEM_KEYS = {"path", "md5", "hash", "size", "nfiles", "isexec", "etag", "checksum",
             "version_id", "files", "cloud"}


@dataclass(frozen=True)
class LockItem:
    """A dep or out as DVC last recorded it."""

    path: str  # as written: relative to the stage's wdir
    md5: str | None  # hex without `.dir`; None when DVC recorded no hash (e.g. a missing dep)
    is_dir: bool
    hash_name: str
    size: int | None
    nfiles: int | None


@dataclass(frozen=True)
class LockStage:
    name: str
    cmd: object  # str or list[str], as recorded
    deps: tuple[LockItem, ...]
    params: dict  # params file (relative to wdir) -> {key: value}
    outs: tuple[LockItem, ...]


def _item(raw, origin: str, where: str) -> LockItem:
    if not isinstance(raw, dict):
        raise FormatError(f"{origin}: {where}: expected a mapping")
    for key in raw:
        if key not in ITEM_KEYS:
            raise FormatError(f"{origin}: {where}: unknown key {key!r:.40}")
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        raise FormatError(f"{origin}: {where}: missing path")
    if raw.get("files") is not None:
        raise FormatError(f"{origin}: {where} {path}: cloud-versioned entries (files:) are not supported")
    sizes = [raw.get("size"), raw.get("nfiles")]
    if any(v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0) for v in sizes):
        raise FormatError(f"{origin}: {where} {path}: size and nfiles must be non-negative integers")
    if raw.get("md5") is None:
        return LockItem(path, None, False, "md5", *sizes)
    md5, is_dir, hash_name = parse_hash(raw, origin, f"{where} {path}")
    return LockItem(path, md5, is_dir, hash_name, *sizes)


def _stage(name: str, body, origin: str) -> LockStage:
    where = f"stage {name!r}"
    if not isinstance(body, dict):
        raise FormatError(f"{origin}: {where}: expected a mapping")
    for key in body:
        if key not in STAGE_KEYS:
            raise FormatError(f"{origin}: {where}: unknown key {key!r:.40}")
    cmd = body.get("cmd")
    if not (isinstance(cmd, str) or isinstance(cmd, list) and all(isinstance(c, str) for c in cmd)):
        raise FormatError(f"{origin}: {where}: cmd must be a string or a list of strings")
    lists = {}
    for key in ("deps", "outs"):
        raw = body.get(key) or []
        if not isinstance(raw, list):
            raise FormatError(f"{origin}: {where}: {key} must be a list")
        lists[key] = tuple(_item(r, origin, f"{where} {key[:-1]}") for r in raw)
    params = body.get("params") or {}
    if not isinstance(params, dict) or not all(
            isinstance(f, str) and isinstance(v, dict) for f, v in params.items()):
        raise FormatError(f"{origin}: {where}: params must map files to {{key: value}}")
    return LockStage(name, cmd, lists["deps"], params, lists["outs"])


def parse(data: bytes, origin: str = FILENAME) -> dict[str, LockStage]:
    """Every stage of a dvc.lock, by name; a 1.x lock is read as well as a 2.0 one."""
    if len(data) > MAX_FILE:
        raise FormatError(f"{origin}: larger than {MAX_FILE >> 20} MiB")
    doc = yamldoc.load(data, origin)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise FormatError(f"{origin}: not a dvc.lock (expected a mapping)")
    if "schema" in doc:
        if str(doc["schema"]) != SCHEMA:
            raise FormatError(f"{origin}: unknown dvc.lock schema {doc['schema']!r:.20} (expected {SCHEMA})")
        for key in doc:
            if key not in ("schema", "stages", "datasets"):
                raise FormatError(f"{origin}: unknown top-level key {key!r:.40}")
        if doc.get("datasets"):
            raise FormatError(f"{origin}: datasets are not supported by dvlite")
        stages = doc.get("stages") or {}
    else:  # DVC 1.x: the stages themselves
        stages = doc
    if not isinstance(stages, dict):
        raise FormatError(f"{origin}: 'stages' must be a mapping")
    return {str(name): _stage(str(name), body, origin) for name, body in stages.items()}
