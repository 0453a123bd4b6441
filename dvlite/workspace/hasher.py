"""Digests of workspace files: from the stat cache where it knows them, else hashed (and with
`store`, ingested into the cache), small files in this thread and large ones in a pool."""

from __future__ import annotations

import os
from collections.abc import Iterable

from dvlite.digest import hash_stream
from dvlite.errors import BadInputError
from dvlite.progress import SILENT, Progress
from dvlite.storage.cache import Cache
from dvlite.storage.statcache import StatCache
from dvlite.workspace.scan import FileStat

JOBS = min(16, 4 * (os.cpu_count() or 1))
THREADED_ABOVE = 1 << 20  # files this big are hashed and stored in a thread pool


class Hasher:
    """Digests of workspace files, from the stat cache where it knows them."""

    def __init__(self, state: StatCache, odb: Cache, repo_root: str, progress: Progress = SILENT):
        self.state = state
        self.odb = odb
        self.repo_root = repo_root
        self.progress = progress  # the files hashed (the ones the stat cache knows cost nothing)
        self._planned = 0
        self._prefix = os.path.join(repo_root, "")

    def _key(self, path: str) -> str:
        if path.startswith(self._prefix):  # the common case: no relpath per file
            return path[len(self._prefix):]
        return os.path.relpath(path, self.repo_root)

    def known(self, path: str, st: os.stat_result) -> str | None:
        return self.state.get(self._key(path), st)

    def digests(self, files: Iterable[FileStat], store: bool) -> dict[str, str]:
        """rel -> hex for `files`; with `store`, every file's bytes end up in the object store."""
        result: dict[str, str] = {}
        todo: list[FileStat] = []
        for f in files:
            known = self.known(f.path, f.st)
            if known is not None and (not store or self.odb.contains(known)):
                result[f.rel] = known
            else:
                todo.append(f)

        def work(f: FileStat) -> tuple[FileStat, str, bool]:
            """(file, digest, whether it held still: the stat of the open file once read is the
            scanned one, so the digest is of the file as scanned and no second stat is needed)"""
            if not store:
                with open(f.path, "rb", buffering=0) as fh:
                    hexdigest, after = hash_stream(fh).hex, os.fstat(fh.fileno())
            else:
                digest, size, after = self.odb.ingest_file(f.path)
                if size != f.st.st_size:  # the manifest records the scanned size; they must agree
                    raise BadInputError(f"{f.path} changed while it was being added; run the "
                                        "command again")
                hexdigest = digest.hex
            st = f.st
            return f, hexdigest, (after.st_ino, after.st_mtime_ns, after.st_size) == (
                st.st_ino, st.st_mtime_ns, st.st_size)

        # Small files in this thread: their system calls are too short for threads to overlap,
        # and 8 threads contending for the GIL cost more than they save (add of 200,000 tiny
        # files: 8.7 s in one thread, 14.4 s in 8; see performance.md). Large files in threads.
        small = [f for f in todo if f.st.st_size < THREADED_ABOVE]
        large = [f for f in todo if f.st.st_size >= THREADED_ABOVE]
        if todo:
            self._planned += sum(f.st.st_size for f in todo)
            self.progress.set_size(self._planned)
        done = []

        def finished(items: Iterable[tuple[FileStat, str, bool]]) -> None:
            for item in items:
                done.append(item)
                self.progress.relative_update(item[0].st.st_size)

        with self.odb.batch():  # small objects go into packs
            finished(map(work, small))
            if len(large) > 1:
                from concurrent.futures import ThreadPoolExecutor  # here: a status need not load it

                with ThreadPoolExecutor(JOBS) as pool:
                    finished(pool.map(work, large))
            else:
                finished(map(work, large))
        for f, hexdigest, held_still in done:
            result[f.rel] = hexdigest
            if held_still:
                self.state.put(self._key(f.path), f.st, hexdigest)
        return result

    def remember(self, rel: str, st: os.stat_result, hexdigest: str) -> None:
        """Record a file just written (repo-relative `rel`) with the stat it was written with."""
        self.state.put(rel, st, hexdigest)

    def remember_written(self, path: str, hexdigest: str) -> None:
        self.state.put(self._key(path), os.stat(path), hexdigest)
