"""`.dvc` files of DVC 1, 2 and 3: the one output they track, and where an import came from.

    md5: 3a2f...                 # the stage's own md5 (ignored)
    frozen: true                 # imports
    deps:                        # imports only
    - path: data/raw             #   dvc import: the path inside the source repository
      repo: {url: ..., rev: v1, rev_lock: 5d2f...}
    - path: https://host/x.csv   #   dvc import-url: the source URL, with etag/checksum/md5
      etag: ...
    outs:
    - md5: 0f3c....dir           # `.dir` marks a directory
      size: 1234
      nfiles: 2                  # directories only
      hash: md5                  # DVC 3.x; absent: DVC 2.x's md5-dos2unix
      path: data

Everything is checked: unknown keys, bad types, paths that leave the repository, and the
constructs dvlite cannot express (commands, several outputs, external outputs, cloud
versioning) are one-line errors naming the file.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from dvlite import yamldoc
from dvlite.dvc.hashing import LEGACY, MD5, is_md5
from dvlite.dvc.paths import check_path
from dvlite.errors import FormatError

SUFFIX = ".dvc"
MAX_FILE = 1 << 20  # a .dvc file is a few hundred bytes; this bounds what is parsed
TOP_KEYS = {"md5", "frozen", "locked", "deps", "outs", "wdir", "meta", "desc",
            "always_changed", "cmd"}
OUT_KEYS = {"md5", "etag", "checksum", "size", "nfiles", "isexec", "version_id", "path",
            "cloud", "hash", "persist", "cache", "remote", "push", "files", "fs_config",
            "desc", "type", "labels", "meta", "metric", "plot"}
DEP_KEYS = {"path", "md5", "etag", "checksum", "size", "nfiles", "isexec", "version_id",
            "hash", "repo", "files", "fs_config", "cloud"}
REPO_KEYS = {"url", "rev", "rev_lock", "config", "remote"}


@dataclass(frozen=True)
class DvcOut:
    """One output as DVC recorded it."""

    path: str  # repo-relative, `/` separators
    md5: str  # hex, without `.dir`
    is_dir: bool
    hash_name: str  # md5 | md5-dos2unix
    size: int | None
    nfiles: int | None


@dataclass(frozen=True)
class RepoSource:
    """`dvc import`: a path in another (DVC) git repository."""

    url: str
    rev: str | None
    rev_lock: str | None
    path: str


@dataclass(frozen=True)
class UrlSource:
    """`dvc import-url`: a URL or external path, with the version marker DVC saw."""

    url: str
    marker: dict  # etag / checksum / md5 / version_id / size, as recorded


@dataclass(frozen=True)
class DvcFile:
    origin: str  # the .dvc file, repo-relative
    out: DvcOut
    frozen: bool
    repo: RepoSource | None = None
    url: UrlSource | None = None
    notes: tuple[str, ...] = ()  # what migrating drops (per-output remote, push: false, ...)


def _err(origin: str, msg: str, hint: str | None = None) -> FormatError:
    return FormatError(f"{origin}: {msg}", hint)


def _opt_int(doc: dict, key: str, origin: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _err(origin, f"{key} must be a non-negative integer, not {value!r:.40}")
    return value


def parse_hash(doc: dict, origin: str, where: str) -> tuple[str, bool, str]:
    """(md5 hex, is_dir, hash name) of an out or dep record."""
    raw = doc.get("md5")
    name = doc.get("hash")
    if name is not None and name != MD5:
        raise _err(origin, f"{where}: unknown hash {name!r:.40} (DVC writes 'md5')")
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)  # DVC coerces; YAML reads an all-digit md5 as a number
    if not isinstance(raw, str):
        raise _err(origin, f"{where}: missing md5")
    value = raw.lower()
    is_dir = value.endswith(".dir")
    hexpart = value[:-4] if is_dir else value
    if not is_md5(hexpart):
        raise _err(origin, f"{where}: bad md5 {raw!r:.50}")
    return hexpart, is_dir, MD5 if name == MD5 else LEGACY


def _check_keys(doc: dict, allowed: set, origin: str, where: str) -> None:
    for key in doc:
        if key not in allowed:
            raise _err(origin, f"{where}: unknown key {key!r:.40}")


def _parse_out(raw, origin: str, base: str) -> tuple[DvcOut, list[str]]:
    if not isinstance(raw, dict):
        raise _err(origin, "outs: each entry must be a mapping")
    _check_keys(raw, OUT_KEYS, origin, "outs")
    path_raw = raw.get("path")
    if isinstance(path_raw, str) and ("://" in path_raw or path_raw.startswith(("/", "~"))):
        raise _err(origin, f"external output {path_raw} is not supported by dvlite",
                   hint="track a copy inside the repository instead")
    path = check_path(path_raw, origin, "outs", base)
    if raw.get("files") is not None or raw.get("cloud") is not None:
        raise _err(origin, f"{path}: cloud-versioned outputs (files:/cloud:) are not supported")
    if raw.get("cache", True) is not True:
        raise _err(origin, f"{path}: an output with cache: false has no data to migrate",
                   hint="add the file to git instead, or track it with `dvlite add`")
    md5, is_dir, hash_name = parse_hash(raw, origin, f"outs {path}")
    notes = []
    if raw.get("remote") is not None:
        notes.append(f"{path}: per-output remote {raw['remote']!r} dropped (dvlite uses one remote)")
    if raw.get("push", True) is not True:
        notes.append(f"{path}: push: false dropped (dvlite pushes every tracked path)")
    out = DvcOut(path, md5, is_dir, hash_name, _opt_int(raw, "size", origin),
                 _opt_int(raw, "nfiles", origin))
    return out, notes


def _parse_import(raw, origin: str) -> tuple[RepoSource | None, UrlSource | None]:
    if not isinstance(raw, dict):
        raise _err(origin, "deps: each entry must be a mapping")
    _check_keys(raw, DEP_KEYS, origin, "deps")
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        raise _err(origin, "deps: missing path")
    repo = raw.get("repo")
    if repo is None:
        marker = {k: raw[k] for k in ("etag", "checksum", "md5", "version_id", "size") if k in raw}
        return None, UrlSource(path, marker)
    if not isinstance(repo, dict) or not isinstance(repo.get("url"), str):
        raise _err(origin, "deps: repo must be a mapping with a url")
    _check_keys(repo, REPO_KEYS, origin, "deps repo")
    strings = {k: repo.get(k) for k in ("rev", "rev_lock")}
    if any(v is not None and not isinstance(v, str) for v in strings.values()):
        raise _err(origin, "deps repo: rev and rev_lock must be strings")
    inner = check_path(path, origin, "deps")
    return RepoSource(repo["url"], strings["rev"], strings["rev_lock"], inner), None


def parse(data: bytes, origin: str) -> DvcFile:
    """Parse and validate one `.dvc` file; `origin` is its repo-relative path."""
    if len(data) > MAX_FILE:
        raise _err(origin, f"larger than {MAX_FILE >> 10} KiB; not a .dvc file")
    doc = yamldoc.load(data, origin)
    if not isinstance(doc, dict):
        raise _err(origin, "not a .dvc file (expected a mapping)")
    _check_keys(doc, TOP_KEYS, origin, "top level")
    if doc.get("cmd") is not None:
        raise _err(origin, "a stage with a command in a .dvc file is not supported",
                   hint="move the stage into dvc.yaml (`dvc stage add`), then migrate")
    wdir = doc.get("wdir") or "."
    if not isinstance(wdir, str):
        raise _err(origin, "wdir must be a string")
    base = posixpath.dirname(origin)
    base = posixpath.normpath(posixpath.join(base, wdir.replace("\\", "/"))) if wdir != "." else base
    if base == ".":
        base = ""
    outs = doc.get("outs")
    if not isinstance(outs, list) or len(outs) != 1:
        raise _err(origin, f"a .dvc file must track exactly one output, not {len(outs) if isinstance(outs, list) else 0}")
    out, notes = _parse_out(outs[0], origin, base)
    deps = doc.get("deps") or []
    if not isinstance(deps, list) or len(deps) > 1:
        raise _err(origin, "deps: at most one source (an import) is supported")
    repo, url = _parse_import(deps[0], origin) if deps else (None, None)
    frozen = doc.get("frozen", doc.get("locked", False))
    if not isinstance(frozen, bool):
        raise _err(origin, "frozen must be true or false")
    return DvcFile(origin, out, frozen, repo, url, tuple(notes))
