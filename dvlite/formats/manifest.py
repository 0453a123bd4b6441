"""Directory manifests: sorted entries with canonical bytes and a diff.

A manifest's identity is the digest of its canonical bytes:

    {"version": 1, "algo": "xxh3-128", "entries": [
    ["relative/path", "<digest hex>", <size>, <executable: true|false>],
    ...
    ]}

Entries are sorted by path (POSIX separators), one per line, so two manifests of
similar trees differ by a few lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from dvlite import paths, yamldoc
from dvlite.digest import ALGORITHM, Digest, hash_bytes
from dvlite.errors import FormatError

VERSION = 1
MAX_BYTES = 1 << 30  # a manifest of ~10 million files


class Entry(NamedTuple):  # a tuple: a million are made when a big manifest is read
    path: str
    digest: str  # hex, in the manifest's algorithm
    size: int
    executable: bool


_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')  # a path json.dumps would print unchanged
_HEXES = re.compile(r"[0-9a-f]*")


def _quoted(path: str) -> str:
    return f'"{path}"' if _PLAIN.fullmatch(path) else json.dumps(path, ensure_ascii=False)


@dataclass(frozen=True)
class Manifest:
    entries: tuple[Entry, ...]

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> Manifest:
        ordered = tuple(sorted(entries, key=lambda e: e.path))
        for a, b in zip(ordered, ordered[1:]):
            if a.path == b.path:
                raise FormatError(f"manifest lists {a.path!r} twice")
        return cls(ordered)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def by_path(self) -> dict[str, Entry]:
        return {e.path: e for e in self.entries}

    def to_bytes(self) -> bytes:
        lines = [f'{{"version": {VERSION}, "algo": "{ALGORITHM}", "entries": [']
        body = [
            f"[{_quoted(e.path)}, \"{e.digest}\", {e.size}, "
            f"{'true' if e.executable else 'false'}]"
            for e in self.entries
        ]
        lines.append(",\n".join(body))
        lines.append("]}")
        return ("\n".join(lines) + "\n").encode()

    def digest(self) -> Digest:
        return hash_bytes(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes, origin: str = "manifest") -> Manifest:
        """Parse and validate: every entry a safe relative path, no duplicates, no entry that
        is both a file and a directory (UnsafePathError, exit 4)."""
        # every entry is checked field by field below: no nesting gets through (and walking
        # the shape of 50,000 entries cost 0.17 s a read)
        doc = yamldoc.load_json(data, origin, max_bytes=MAX_BYTES, shape=False)
        if not isinstance(doc, dict) or "version" not in doc:
            raise FormatError(f"{origin}: not a dvlite manifest")
        if doc["version"] != VERSION:
            raise FormatError(f"{origin}: unknown manifest version {doc['version']!r}")
        if doc.get("algo") != ALGORITHM:
            raise FormatError(f"{origin}: unknown hash algorithm {doc.get('algo')!r}")
        try:
            entries = [Entry(p, d, s, x) for p, d, s, x in doc["entries"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{origin}: malformed manifest entries") from exc
        if not all(type(e.path) is str and type(e.digest) is str and type(e.size) is int
                   and e.size >= 0 and type(e.executable) is bool for e in entries):
            raise FormatError(f"{origin}: malformed manifest entries")
        digests = [e.digest for e in entries]
        if set(map(len, digests)) - {32} or not _HEXES.fullmatch("".join(digests)):
            bad = next(d for d in digests if len(d) != 32 or not _HEXES.fullmatch(d))
            raise FormatError(f"{origin}: bad {ALGORITHM} digest {bad[:40]!r} in the manifest")
        entries.sort(key=lambda e: e.path)
        paths.check_entries([e.path for e in entries], origin)
        return cls(tuple(entries))


@dataclass(frozen=True)
class Change:
    kind: str  # added | deleted | modified | renamed
    path: str
    size: int
    old_path: str | None = None  # set for renames only
    old_size: int | None = None  # set for modifications and renames


def diff(old: dict[str, Entry], new: dict[str, Entry]) -> list[Change]:
    """Changes from `old` to `new` (path -> entry maps), renames paired by digest."""
    deleted = {p: e for p, e in old.items() if p not in new}
    added = {p: e for p, e in new.items() if p not in old}
    changes = [
        Change("modified", p, e.size, old_size=old[p].size)
        for p, e in new.items()
        if p in old and (old[p].digest != e.digest or old[p].executable != e.executable)
    ]
    by_digest: dict[str, list[str]] = {}
    for p in sorted(deleted):
        by_digest.setdefault(deleted[p].digest, []).append(p)
    for p in sorted(added):
        candidates = by_digest.get(added[p].digest)
        if candidates:
            src = candidates.pop(0)
            del deleted[src]
            changes.append(Change("renamed", p, added[p].size, src, old_size=old[src].size))
        else:
            changes.append(Change("added", p, added[p].size))
    changes.extend(Change("deleted", p, e.size) for p, e in deleted.items())
    return sorted(changes, key=lambda c: (c.path, c.kind))
