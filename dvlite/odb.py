"""The local content-addressed object store: `objects/ab/cdef...`, read-only files.

Objects are written once and never modified. A new object is streamed into a
temp file in the objects directory while it is hashed, then renamed to the name
its digest gives, so the bytes under a name are exactly the bytes hashed.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator

from dvlite.digest import Digest, hash_bytes, hash_fd, hash_file, new_hasher
from dvlite.errors import IntegrityError
from dvlite.fsutil import TMP_MARK, atomic_copy, atomic_write, copy_into, remove_file, temp_name

OBJECT_MODE = 0o444
SMALL = 4 << 20  # files below this are read in one call


class ObjectStore:
    def __init__(self, root: str):
        self.root = root
        self._dirs: set[str] = set()

    def path(self, hexdigest: str) -> str:
        return os.path.join(self.root, hexdigest[:2], hexdigest[2:])

    def contains(self, hexdigest: str) -> bool:
        try:
            os.stat(self.path(hexdigest))
            return True
        except FileNotFoundError:
            return False

    def missing(self, hexdigests: Iterable[str]) -> set[str]:
        wanted = set(hexdigests)
        if len(wanted) > 512:  # one listing per fan-out dir beats a stat per object
            return wanted - self.all_objects()
        return {h for h in wanted if not self.contains(h)}

    def all_objects(self) -> set[str]:
        return set(self.iter_objects())

    def iter_objects(self) -> Iterator[str]:
        with contextlib.suppress(FileNotFoundError):
            for fan in sorted(os.scandir(self.root), key=lambda e: e.name):
                if len(fan.name) != 2 or not fan.is_dir():
                    continue
                for obj in os.scandir(fan.path):
                    if not obj.name.startswith(TMP_MARK):
                        yield fan.name + obj.name

    def stamp(self) -> str:
        """Changes whenever an object is added to or removed from the store (fan-out dir mtimes)."""
        parts = []
        with contextlib.suppress(FileNotFoundError):
            for fan in os.scandir(self.root):
                if len(fan.name) == 2:
                    parts.append(f"{fan.name}:{fan.stat().st_mtime_ns}")
        return hash_bytes("\n".join(sorted(parts)).encode()).hex

    def size(self, hexdigest: str) -> int:
        return os.stat(self.path(hexdigest)).st_size

    def _fan_dir(self, hexdigest: str) -> str:
        d = os.path.join(self.root, hexdigest[:2])
        if d not in self._dirs:
            os.makedirs(d, exist_ok=True)
            self._dirs.add(d)
        return d

    def put_bytes(self, data: bytes, durable: bool = False) -> Digest:
        digest = hash_bytes(data)
        if not self.contains(digest.hex):
            self._fan_dir(digest.hex)
            atomic_write(self.path(digest.hex), data, mode=OBJECT_MODE, durable=durable)
        return digest

    def ingest(self, src: str, durable: bool = False) -> tuple[Digest, int]:
        """Hash `src` and store its bytes if the store lacks them.

        A small file is read once. A large one is copied inside the kernel (reflink or
        copy_file_range) and the copy is hashed from the page cache, so the digest is always
        of the bytes stored, even if `src` changes meanwhile.
        """
        with open(src, "rb", buffering=0) as f:
            # read(n) allocates n bytes up front; size the first read by the file instead
            if os.fstat(f.fileno()).st_size < SMALL:
                first = f.readall()
                if len(first) < SMALL:
                    return self.put_bytes(first, durable), len(first)
            os.makedirs(self.root, exist_ok=True)
            tmp = temp_name(os.path.join(self.root, "object"))
            try:
                with open(tmp, "w+b", buffering=0) as out:
                    size = copy_into(f.fileno(), out.fileno())
                    digest = hash_fd(out.fileno())
                    if durable:
                        os.fsync(out.fileno())
                if self.contains(digest.hex):
                    os.unlink(tmp)
                else:
                    os.chmod(tmp, OBJECT_MODE)
                    self._fan_dir(digest.hex)
                    os.replace(tmp, self.path(digest.hex))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        return digest, size

    def put_verified(self, source, hexdigest: str, origin: str) -> int:
        """Store `source` (bytes or a binary file) as object `hexdigest` if its bytes hash to it.

        Nothing enters the store under a name its bytes do not match; returns the size.
        """
        if isinstance(source, (bytes, bytearray, memoryview)):
            if hash_bytes(bytes(source)).hex != hexdigest:
                raise IntegrityError(f"corrupt object {origin}: its bytes do not match its digest")
            if not self.contains(hexdigest):
                self._fan_dir(hexdigest)
                atomic_write(self.path(hexdigest), bytes(source), mode=OBJECT_MODE, durable=False)
            return len(source)
        h = new_hasher()
        size = 0

        def on_chunk(chunk: bytes) -> None:
            nonlocal size
            h.update(chunk)
            size += len(chunk)

        def check() -> None:
            if h.hexdigest() != hexdigest:
                raise IntegrityError(f"corrupt object {origin}: its bytes do not match its digest")

        self._fan_dir(hexdigest)
        atomic_copy(source, self.path(hexdigest), mode=OBJECT_MODE, on_chunk=on_chunk,
                    before_replace=check)
        return size

    def temp_path(self, hexdigest: str) -> str:
        """A temp file name beside where `hexdigest` will live (same filesystem)."""
        return temp_name(os.path.join(self._fan_dir(hexdigest), hexdigest[2:]))

    def adopt(self, tmp: str, hexdigest: str, origin: str) -> None:
        """Move a downloaded temp file into the store if its bytes hash to `hexdigest`."""
        if hash_file(tmp).hex != hexdigest:
            raise IntegrityError(f"corrupt object {origin}: its bytes do not match its digest")
        os.chmod(tmp, OBJECT_MODE)
        os.replace(tmp, self.path(hexdigest))

    def read_verified(self, hexdigest: str) -> bytes:
        try:
            with open(self.path(hexdigest), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise IntegrityError(f"object {hexdigest} is not in the cache") from None
        if hash_bytes(data).hex != hexdigest:
            raise IntegrityError(
                f"cache object {hexdigest} is corrupt", hint="run `dvlite fsck --repair`"
            )
        return data

    def verify(self, hexdigest: str) -> bool:
        try:
            return hash_file(self.path(hexdigest)).hex == hexdigest
        except FileNotFoundError:
            return False

    def remove(self, hexdigest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            remove_file(self.path(hexdigest))

    def quarantine(self, hexdigest: str, corrupt_dir: str) -> str:
        os.makedirs(corrupt_dir, exist_ok=True)
        dest = os.path.join(corrupt_dir, hexdigest)
        try:
            os.replace(self.path(hexdigest), dest)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        return dest

    def clean_temp_files(self) -> int:
        """Remove leftovers of interrupted writes (root and fan-out dirs)."""
        removed = 0
        dirs = [self.root]
        with contextlib.suppress(FileNotFoundError):
            dirs += [e.path for e in os.scandir(self.root) if len(e.name) == 2 and e.is_dir()]
        for d in dirs:
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(d):
                    if entry.name.startswith(TMP_MARK):
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                            removed += 1
        return removed
