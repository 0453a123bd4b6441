"""Pointer files (`<path>.dvl`): the small YAML files committed to git.

    version: 1
    kind: file            # or dir
    hash: xxh3-128
    digest: 0f3c...       # of the file, or of the directory's manifest
    size: 1234            # bytes of data (for dir: total of all files)
    files: 2000           # dir only: number of files

The data path is the pointer's own path without `.dvl`.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from dvlite.digest import Digest
from dvlite.errors import FormatError

SUFFIX = ".dvl"
VERSION = 1
KINDS = ("file", "dir")


@dataclass(frozen=True)
class Pointer:
    kind: str
    digest: Digest
    size: int
    files: int  # 1 for a file

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
        return ("\n".join(lines) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, origin: str) -> Pointer:
        try:
            doc = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise FormatError(f"{origin}: invalid YAML{where}") from exc
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
        return cls(doc["kind"], digest, size, files)


def data_path_of(pointer_path: str) -> str:
    return pointer_path[: -len(SUFFIX)]


def pointer_path_of(data_path: str) -> str:
    return data_path + SUFFIX
