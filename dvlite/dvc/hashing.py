"""DVC's md5 of files and of `.dir` manifests, under both of DVC's rules.

- `md5` (DVC 3.x): the md5 of the bytes.
- `md5-dos2unix` (DVC 2.x, and 3.x reading 2.x outputs, recorded without `hash:`): for a
  text file, the md5 of the bytes with every CRLF turned into LF, chunk by chunk (1 MiB).
  DVC 2.x judged "text" once, from the file's first 512 bytes; dvc-data (3.x) judges each
  chunk by its own first 512 bytes. The two agree for files under 1 MiB; for larger ones both
  are accepted, since either DVC may have written the record.

A directory's md5 is the md5 of `json.dumps(sorted [{"md5": ..., "relpath": ...}],
sort_keys=True)` with `.dir` appended; the `.dir` object in the cache holds that list,
sometimes with each file's `size`/`isexec` too (which the md5 leaves out).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from dvlite.digest import CHUNK, new_hasher
from dvlite.dvc.paths import check_relpath
from dvlite.errors import FormatError, IntegrityError

MD5 = "md5"
LEGACY = "md5-dos2unix"
HASH_NAMES = (MD5, LEGACY)
BLOCK = 512  # the text heuristic looks at this much
TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"
MAX_LISTING = 512 << 20  # a .dir object bigger than this is refused, not parsed
_HEX = re.compile(r"^[0-9a-f]{32}$")


def is_md5(value) -> bool:
    return isinstance(value, str) and bool(_HEX.match(value))


def is_text_block(block: bytes) -> bool:
    """DVC's guess (from Perl's -T): no NUL, and at most 30% bytes outside printable ASCII."""
    if not block:
        return True
    if b"\x00" in block:
        return False
    return len(block.translate(None, TEXT_CHARS)) / len(block) <= 0.30


class Md5Stream:
    """Feed the bytes of a file chunk by chunk (1 MiB chunks, as DVC reads); ask for its md5s."""

    def __init__(self, hash_name: str):
        if hash_name not in HASH_NAMES:
            raise FormatError(f"unknown DVC hash {hash_name!r}")
        self.hash_name = hash_name
        self.raw = hashlib.md5(usedforsecurity=False)
        self.v2 = self.v3 = None  # the two dos2unix readings, only for md5-dos2unix
        self._first_is_text: bool | None = None
        self._pending = b""
        if hash_name == LEGACY:
            self.v2 = hashlib.md5(usedforsecurity=False)
            self.v3 = hashlib.md5(usedforsecurity=False)

    def update(self, data: bytes) -> None:
        if self.v2 is None:
            self.raw.update(data)
            return
        self._pending += data  # re-cut into DVC's 1 MiB chunks: the rule is per chunk
        while len(self._pending) >= CHUNK:
            chunk, self._pending = self._pending[:CHUNK], self._pending[CHUNK:]
            self._chunk(chunk)

    def _chunk(self, chunk: bytes) -> None:
        if self._first_is_text is None:
            self._first_is_text = is_text_block(chunk[:BLOCK])
        converted = chunk.replace(b"\r\n", b"\n")
        self.v2.update(converted if self._first_is_text else chunk)
        self.v3.update(converted if is_text_block(chunk[:BLOCK]) else chunk)

    def candidates(self) -> set[str]:
        """Every md5 DVC could have recorded for these bytes under this rule."""
        if self.v2 is None:
            return {self.raw.hexdigest()}
        if self._pending:
            self._chunk(self._pending)
            self._pending = b""
        return {self.v2.hexdigest(), self.v3.hexdigest()}

    def matches(self, md5: str) -> bool:
        return md5 in self.candidates()

    def primary(self) -> str:
        """The md5 DVC 3.x computes now (dvc-data's per-chunk rule for md5-dos2unix)."""
        if self.v2 is None:
            return self.raw.hexdigest()
        self.candidates()
        return self.v3.hexdigest()


def md5_of_bytes(data: bytes, hash_name: str = MD5) -> str:
    stream = Md5Stream(hash_name)
    stream.update(data)
    return stream.primary()


def bytes_match(data: bytes, md5: str, hash_name: str) -> bool:
    stream = Md5Stream(hash_name)
    stream.update(data)
    return stream.matches(md5)


@dataclass(frozen=True)
class FileHashes:
    md5s: frozenset[str]  # what DVC may have recorded
    primary: str  # what DVC 3.x computes now
    v2: str  # what DVC 2.x computed (the same as primary but for big md5-dos2unix files)
    xxh3: str
    size: int


def hash_file(path: str, hash_name: str) -> FileHashes:
    """DVC's md5 candidates and dvlite's XXH3-128 of a file, in one read."""
    stream = Md5Stream(hash_name)
    xxh = new_hasher()
    size = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            chunk = view[:n] if stream.v2 is None else bytes(view[:n])
            stream.update(chunk)
            xxh.update(chunk)
            size += n
    md5s = stream.candidates()
    v2 = stream.v2.hexdigest() if stream.v2 is not None else stream.primary()
    return FileHashes(frozenset(md5s), stream.primary(), v2, xxh.hexdigest(), size)


# --- .dir manifests ---------------------------------------------------------------------

@dataclass(frozen=True)
class DirEntry:
    relpath: str
    md5: str
    size: int | None  # when the listing carries it
    isexec: bool | None


def listing_bytes(entries) -> bytes:
    """The bytes DVC hashes for a directory: the sorted list of {md5, relpath}."""
    doc = sorted(({"md5": e.md5, "relpath": e.relpath} for e in entries), key=lambda d: d["relpath"])
    return json.dumps(doc, sort_keys=True).encode("utf-8")


def dir_md5(entries) -> str:
    """A directory's md5, without the `.dir` suffix."""
    return hashlib.md5(listing_bytes(entries), usedforsecurity=False).hexdigest()


def parse_listing(data: bytes, origin: str) -> list[DirEntry]:
    """A `.dir` object's entries, validated (paths stay inside, md5s are md5s, no duplicates)."""
    if len(data) > MAX_LISTING:
        raise FormatError(f"{origin}: directory listing larger than {MAX_LISTING >> 20} MiB")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise FormatError(f"{origin}: not a DVC directory listing ({type(exc).__name__})") from exc
    if not isinstance(doc, list):
        raise FormatError(f"{origin}: not a DVC directory listing (expected a JSON list)")
    entries, seen = [], set()
    for item in doc:
        if not isinstance(item, dict):
            raise FormatError(f"{origin}: directory listing entries must be objects")
        rel = check_relpath(item.get("relpath"), origin, "directory listing")
        md5 = item.get("md5")
        if not is_md5(md5):
            raise FormatError(f"{origin}: {rel}: bad md5 {md5!r:.40}")
        size, isexec = item.get("size"), item.get("isexec")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise FormatError(f"{origin}: {rel}: bad size {size!r:.40}")
        if isexec is not None and not isinstance(isexec, bool):
            raise FormatError(f"{origin}: {rel}: bad isexec {isexec!r:.40}")
        if rel in seen:
            raise FormatError(f"{origin}: directory listing names {rel} twice")
        seen.add(rel)
        entries.append(DirEntry(rel, md5, size, isexec))
    return entries


def verify_listing(data: bytes, md5: str, origin: str) -> list[DirEntry]:
    """Parse a `.dir` object and check it is the directory `md5` names (its md5 ignores meta)."""
    entries = parse_listing(data, origin)
    if dir_md5(entries) != md5:
        raise IntegrityError(f"corrupt DVC object {origin}: its listing does not hash to {md5}.dir")
    return entries

