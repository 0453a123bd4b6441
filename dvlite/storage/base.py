"""The storage interface: a place that holds objects, whether the local cache or a remote.

A storage is a flat namespace of keys (`objects/ab/cdef…`, `packs/HEX.pack`, `runs/KEY`,
`dvlite-remote.json`: see layout.py) mapped to immutable blobs. Every method takes keys
relative to the storage's root, `/`-separated, and validated (`check_key`). `store` and
`store_file` make a blob appear whole or not at all (a temp name renamed into place, or one
PUT on an object store); `delete` of a missing key is not an error; `list` never shows temp
files. In the spirit of borgstore's backend interface: a handful of methods, one error root.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from typing import BinaryIO, NamedTuple

from dvlite.errors import UnsafePathError
from dvlite.fsutil import TMP_MARK
from dvlite.paths import why_unsafe


def check_key(key: str) -> str:
    """A key is a relative, normalised path that is not a temp file's name."""
    rule = why_unsafe(key)
    if rule is None and key.rsplit("/", 1)[-1].startswith(TMP_MARK):
        rule = "a temp file's name"
    if rule is not None:
        raise UnsafePathError(f"storage key {key!r}: {rule}")
    return key


class Listed(NamedTuple):
    """What a listing says of one blob."""

    size: int | None  # None where the backend's listing gives no size
    version: str | None  # what changes when the blob is rewritten (mtime, ETag...), if known


class Storage(ABC):
    """What every place that holds objects offers."""

    name: str  # for messages: a remote's name, or "cache"

    @abstractmethod
    def load(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """The blob's bytes (or bytes [start, end) of it); FileNotFoundError when absent."""

    @abstractmethod
    def store(self, key: str, data: bytes) -> None:
        """Put `data` under `key`, whole or not at all (an existing blob may be replaced)."""

    @abstractmethod
    def store_file(self, key: str, local_path: str) -> None:
        """Like `store`, streaming a local file."""

    @abstractmethod
    def fetch_file(self, key: str, local_path: str) -> None:
        """Copy the blob into a new local file; FileNotFoundError when absent."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the blob; nothing happens when it is absent."""

    @abstractmethod
    def list(self, prefix: str) -> dict[str, Listed]:
        """Every blob under `prefix/` (temp files left out) with what the listing says of it;
        {} when there is nothing."""

    @abstractmethod
    def stat(self, key: str) -> int:
        """The blob's size; FileNotFoundError when absent."""

    def open(self, key: str) -> BinaryIO:
        """A readable binary file of the blob (a storage may stream instead of loading)."""
        return io.BytesIO(self.load(key))

    def exists(self, key: str) -> bool:
        """Asked, never guessed: only FileNotFoundError means absent; other errors propagate."""
        try:
            self.stat(key)
            return True
        except FileNotFoundError:
            return False
