"""git's merge driver for `.dvl` pointers and `dvlite.lock` (`dvlite merge-driver %O %A %B %P`):
the three sides read bounded, the merged path validated, manifests fetched when missing."""

from __future__ import annotations

import os

from dvlite import paths, yamldoc
from dvlite.errors import DvliteError
from dvlite.formats.pointer import checked_data_path
from dvlite.fsutil import atomic_write, read_limited
from dvlite.gitside.merge import LOCK_NAME, MergeResult, merge_lock, merge_pointer
from dvlite.remotes.transfer import fetch_missing
from dvlite.repo import Repo


def run_driver(ancestor_path: str, ours_path: str, theirs_path: str, name: str,
               find_repo, fetch_for=None) -> MergeResult:
    """Merge git's three temp files into `ours_path` (git's %O %A %B %P).

    `find_repo(abs_dir)` opens the dvlite repo for a pointer; `fetch_for(repo)` returns a
    `fetch(digest)` that brings a manifest from the default remote, or None.
    """
    def read(path: str) -> bytes:
        return read_limited(path, yamldoc.MAX_BYTES, path)

    paths.check(name, "merge-driver: the merged file's path")
    ancestor, ours, theirs = read(ancestor_path), read(ours_path), read(theirs_path)
    if os.path.basename(name) == LOCK_NAME:
        merged, result = merge_lock(ancestor, ours, theirs, name)
    else:
        checked_data_path(name, "merge-driver: the merged file's path")
        repo = find_repo(os.path.dirname(os.path.abspath(name)) or ".")
        fetch = fetch_for(repo) if fetch_for is not None else None
        merged, result = merge_pointer(repo.odb, ancestor, ours, theirs, name, fetch)
    if merged != ours:
        atomic_write(ours_path, merged)
    return result


def fetcher(repo: Repo):
    """A `fetch(digest)` over the default remote that never raises (the merge reports what is missing)."""
    def fetch(digest: str) -> None:
        try:
            fetch_missing(repo, {digest: 0})
        except DvliteError:
            pass

    return fetch
