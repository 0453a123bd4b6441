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

A pointer written by `dvlite import-url` names the URL instead, and the version marker the
backend gave for it (what `dvlite update` compares before downloading again):

    source:
      url: "s3://bucket/raw/images"
      version:
        etag: "\"9b2cf...\""  # any of etag, version_id, checksum, mtime, size (a file)
        listing: "5e0c..."     # a directory: the digest of its listing (names and markers)
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
VERSION_KEYS = ("checksum", "etag", "listing", "mtime", "size", "version_id")  # canonical order
MAX_URL = 4096
MAX_MARKER = 1024  # characters of one version value


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
class UrlSource:
    """Where an output made by `import-url` came from: a URL and its version marker then."""

    url: str
    version: tuple[tuple[str, str | int], ...]  # (key, value) sorted by key; see VERSION_KEYS

    @property
    def marker(self) -> dict[str, str | int]:
        return dict(self.version)

    def to_lines(self) -> list[str]:
        lines = ["source:", f"  url: {json.dumps(self.url, ensure_ascii=False)}", "  version:"]
        return lines + [f"    {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in self.version]

    @classmethod
    def of(cls, url: str, marker: dict) -> UrlSource:
        return cls(url, tuple(sorted(marker.items())))

    @classmethod
    def from_doc(cls, doc: dict, origin: str) -> UrlSource:
        unknown = sorted(set(doc) - {"url", "version"}, key=str)
        if unknown:
            raise FormatError(f"{origin}: unknown key source.{unknown[0]!s:.40} in a URL source")
        url = doc.get("url")
        if not isinstance(url, str) or not url or len(url) > MAX_URL or "\x00" in url:
            raise FormatError(f"{origin}: source.url must be a non-empty string of at most "
                              f"{MAX_URL} characters")
        version = doc.get("version")
        if not isinstance(version, dict) or not version:
            raise FormatError(f"{origin}: source.version must be a non-empty mapping")
        for key, value in version.items():
            _check_marker(key, value, origin)
        return cls.of(url, version)


def _check_marker(key, value, origin: str) -> None:
    if key not in VERSION_KEYS:
        raise FormatError(f"{origin}: unknown key source.version.{key!s:.40} "
                          f"(known: {', '.join(VERSION_KEYS)})")
    if key == "size":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FormatError(f"{origin}: source.version.size must be a non-negative integer")
    elif not isinstance(value, str) or not value or len(value) > MAX_MARKER:
        raise FormatError(f"{origin}: source.version.{key} must be a non-empty string of at "
                          f"most {MAX_MARKER} characters")
    elif key == "listing" and not re.fullmatch(r"[0-9a-f]{32}", value):
        raise FormatError(f"{origin}: source.version.listing must be a digest (32 hex digits)")


def parse_source(doc, origin: str) -> Source | UrlSource:
    """The `source` block: a repository import (url, rev, rev_lock, path) or a URL import
    (url, version), never a mix."""
    if not isinstance(doc, dict):
        raise FormatError(f"{origin}: 'source' must be a mapping")
    if "version" in doc:
        mixed = [k for k in ("rev", "rev_lock", "path") if k in doc]
        if mixed:
            raise FormatError(f"{origin}: source has both 'version' (a URL import) and "
                              f"{mixed[0]!r} (a repository import)")
        return UrlSource.from_doc(doc, origin)
    return Source.from_doc(doc, origin)


@dataclass(frozen=True)
class Pointer:
    kind: str
    digest: Digest
    size: int
    files: int  # 1 for a file
    source: Source | UrlSource | None = None  # only outputs made by `import` or `import-url`

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
        plain = _plain(data)
        if plain is not None:
            return plain
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
        source = parse_source(doc["source"], origin) if "source" in doc else None
        return cls(doc["kind"], digest, size, files, source)


# Exactly what `to_bytes` writes for a pointer without a source: every value a plain scalar
# that YAML reads as the same string or integer (no leading zeros, no quotes, no comments).
_PLAIN = re.compile(b"version: %d\\n" % VERSION
                    + rb"kind: (file|dir)\nhash: ([a-z0-9-]{1,16})\ndigest: ([0-9a-f]{1,128})\n"
                    + rb"size: (0|[1-9][0-9]{0,18})\n(?:files: (0|[1-9][0-9]{0,18})\n)?")


def _plain(data: bytes) -> Pointer | None:
    """The pointer dvlite writes, read without loading YAML (a no-op `status` reads every
    pointer, and importing PyYAML costs more than the rest of reading them); None for anything
    else, which the YAML reader then reads or refuses."""
    m = _PLAIN.fullmatch(data)
    if m is None or (m[1] == b"dir") != (m[5] is not None):
        return None
    try:
        digest = Digest.parse(m[2].decode(), m[3].decode())
    except FormatError:
        return None
    return Pointer(m[1].decode(), digest, int(m[4]), int(m[5] or b"1"))


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
