"""Pointer files (`<path>.dvl`): the small YAML files committed to git.

    version: 1
    kind: file            # or dir
    hash: xxh3-128
    digest: 0f3c...       # of the file, or of the directory's manifest
    size: 1234            # bytes of data (for dir: total of all files)
    files: 2000           # dir only: number of files

The data path is the pointer's own path without `.dvl`.

A pointer written by `dvlite import` also names where its data came from:

    source:
      url: "https://example.com/team/data-registry.git"
      rev: "v1.0"         # the revision asked for (HEAD: the source's default branch)
      rev_lock: "5d2f..." # the commit that revision resolved to
      path: "data/images" # the tracked path inside the source repository
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from dvlite import paths, yamldoc
from dvlite.digest import Digest
from dvlite.errors import FormatError, UnsafePathError

SUFFIX = ".dvl"
VERSION = 1
MAX_BYTES = 64 << 10  # a pointer is a few lines
KINDS = ("file", "dir")
SOURCE_KEYS = ("url", "rev", "rev_lock", "path")


@dataclass(frozen=True)
class Source:
    """Where an imported output came from: a path in another dvlite repo at a commit."""

    url: str
    rev: str  # as asked; "HEAD" when no revision was given
    rev_lock: str  # the full commit id `rev` resolved to
    path: str  # relative to the source repository's root, `/` separators

    def to_lines(self) -> list[str]:
        # JSON strings are YAML double-quoted scalars: any URL or path round-trips unchanged
        return ["source:"] + [
            f"  {key}: {json.dumps(getattr(self, key), ensure_ascii=False)}" for key in SOURCE_KEYS
        ]

    @classmethod
    def from_doc(cls, doc, origin: str) -> Source:
        if not isinstance(doc, dict):
            raise FormatError(f"{origin}: 'source' must be a mapping")
        for key in SOURCE_KEYS:
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise FormatError(f"{origin}: source.{key} must be a non-empty string")
        if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", doc["rev_lock"]):
            raise FormatError(f"{origin}: source.rev_lock must be a full commit id")
        paths.check(doc["path"], f"{origin}: source.path")
        return cls(doc["url"], doc["rev"], doc["rev_lock"], doc["path"])


@dataclass(frozen=True)
class Pointer:
    kind: str
    digest: Digest
    size: int
    files: int  # 1 for a file
    source: Source | None = None  # set only for outputs made by `dvlite import`

    def to_bytes(self) -> bytes:
        lines = [
            f"version: {VERSION}",
            f"kind: {self.kind}",
            f"hash: {self.digest.algo}",
            f"digest: {self.digest.hex}",
            f"size: {self.size}",
        ]
        if self.kind == "dir":
            lines.append(f"files: {self.files}")
        if self.source is not None:
            lines += self.source.to_lines()
        return ("\n".join(lines) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, origin: str) -> Pointer:
        doc = yamldoc.load(data, origin, max_bytes=MAX_BYTES)
        if not isinstance(doc, dict):
            raise FormatError(f"{origin}: not a dvlite pointer (expected a mapping)")
        if "version" not in doc:
            raise FormatError(f"{origin}: missing key 'version'")
        if doc["version"] != VERSION:
            raise FormatError(
                f"{origin}: unknown pointer version {doc['version']!r}",
                hint="a newer dvlite wrote this file; upgrade dvlite",
            )
        for key in ("kind", "hash", "digest", "size"):
            if key not in doc:
                raise FormatError(f"{origin}: missing key {key!r}")
        if doc["kind"] not in KINDS:
            raise FormatError(f"{origin}: unknown kind {doc['kind']!r}")
        try:
            digest = Digest.parse(str(doc["hash"]), str(doc["digest"]))
        except FormatError as exc:
            raise FormatError(f"{origin}: {exc.message}") from exc
        size = doc["size"]
        files = doc.get("files", 1) if doc["kind"] == "dir" else 1
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in (size, files)):
            raise FormatError(f"{origin}: size and files must be non-negative integers")
        if doc["kind"] == "dir" and "files" not in doc:
            raise FormatError(f"{origin}: missing key 'files'")
        source = Source.from_doc(doc["source"], origin) if "source" in doc else None
        return cls(doc["kind"], digest, size, files, source)


def data_path_of(pointer_path: str) -> str:
    return pointer_path[: -len(SUFFIX)]


def checked_data_path(pointer_path: str, origin: str | None = None) -> str:
    """The data path a pointer file tracks, refused (UnsafePathError) when it would be the
    repository root, `..`, or inside .git or .dvlite (`...dvl`, `.dvl`, `sub/...dvl`)."""
    data_path = data_path_of(pointer_path)
    rule = paths.why_unsafe(data_path)
    if rule is not None:
        where = f"{origin}: " if origin and origin != pointer_path else ""
        raise UnsafePathError(f"{where}pointer {pointer_path!r} tracks an unsafe path "
                              f"{data_path!r}: {rule}",
                              hint="this file was committed by someone else or damaged; "
                                   "dvlite never writes outside its place")
    return data_path


def pointer_path_of(data_path: str) -> str:
    return data_path + SUFFIX
