"""Writes and deletes inside the workspace that never pass through a symlink.

Tracked paths come from data other people commit. Before dvlite writes or deletes
`a/b/c`, every directory on the way (`a`, `a/b`) must be a real directory: a symlink
there, committed to git or made by the user, is refused (`SymlinkError`), never
traversed. A symlink that is itself the path being written is removed (the link, not what
it points to) only when the caller says so (`checkout --force`). Renames, unlinks and
`O_EXCL` creates never follow a symlink in the last component, so checking the components
before it is enough. Verified directories are remembered for the life of the guard.

This guards against data; it does not defend against another process changing the tree
while dvlite runs (see the threat model in docs/design.md).
"""

from __future__ import annotations

import errno
import os
import stat
import threading

from dvlite.errors import DvliteError
from dvlite.fsutil import remove_file, remove_tree


class SymlinkError(DvliteError):
    """dvlite was asked to write or delete through a symlink."""

    exit_code = 1


class Guard:
    def __init__(self, root: str):
        self.root = root
        self._real: set[str] = {""}  # repo-relative directories known to be real directories
        self._lock = threading.Lock()

    def abs(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/")) if rel else self.root

    def symlink_in(self, rel: str) -> str | None:
        """The first component of `rel` (itself included) that is a symlink, or None."""
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in self._real:
                continue
            try:
                st = os.lstat(self.abs(prefix))
            except FileNotFoundError:
                return None
            if stat.S_ISLNK(st.st_mode):
                return prefix
            if not stat.S_ISDIR(st.st_mode):
                return None
            with self._lock:
                self._real.add(prefix)
        return None

    def make_dirs(self, rel_dir: str) -> None:
        """Make sure `rel_dir` is a real directory, creating what is missing, through no symlink."""
        if rel_dir in self._real:
            return
        parts = rel_dir.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in self._real:
                continue
            path = self.abs(prefix)
            try:
                os.mkdir(path)
            except FileExistsError:
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    raise self.refusal(prefix) from None
                if not stat.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", path) from None
            with self._lock:
                self._real.add(prefix)

    def refusal(self, link: str, force_hint: bool = False) -> SymlinkError:
        """The error for a symlink dvlite will not go through (`force_hint`: the link is itself
        the tracked path, which `--force` replaces)."""
        target = os.readlink(self.abs(link))
        hint = (f"`--force` replaces the symlink {link} itself (never what it points to)"
                if force_hint else
                f"replace {link} by a real directory (or move the data there), then run the "
                "command again")
        return SymlinkError(f"{link} is a symlink (to {target}); dvlite does not write or delete "
                            "through symlinks", hint=hint)

    def check_parents(self, rel: str) -> None:
        """Refuse when a directory on the way to `rel` is a symlink."""
        parent = rel.rpartition("/")[0]
        if parent and parent not in self._real:
            link = self.symlink_in(parent)
            if link is not None:
                raise self.refusal(link)

    def prepare(self, rel: str, replace_link: bool = False) -> str:
        """The absolute path of `rel`, ready to be written: its parents real directories (made
        if missing); a symlink at `rel` itself refused, or with `replace_link` removed."""
        self.check_parents(rel)
        parent = rel.rpartition("/")[0]
        if parent:
            self.make_dirs(parent)
        path = self.abs(rel)
        if os.path.islink(path):
            if not replace_link:
                raise self.refusal(rel)
            os.unlink(path)
        return path

    def remove_file(self, rel: str) -> None:
        """Delete a file or a symlink (never what a symlink points to)."""
        self.check_parents(rel)
        remove_file(self.abs(rel))

    def remove_tree(self, rel: str) -> None:
        """Delete a directory and everything in it; a symlink there is removed as a link."""
        self.check_parents(rel)
        path = self.abs(rel)
        if os.path.islink(path) or not os.path.isdir(path):
            remove_file(path)
            return
        remove_tree(path)  # shutil.rmtree: never follows a symlink inside the tree
        with self._lock:
            self._real = {d for d in self._real if not (d == rel or d.startswith(rel + "/"))}

    def prune_empty(self, rel_dir: str, stop: str = "") -> None:
        """Remove `rel_dir` and its parents while they are empty, up to (not including) `stop`."""
        while rel_dir and rel_dir != stop and (not stop or rel_dir.startswith(stop + "/")):
            try:
                os.rmdir(self.abs(rel_dir))  # refuses a symlink (ENOTDIR) and a non-empty dir
            except OSError:
                return
            with self._lock:
                self._real.discard(rel_dir)
            rel_dir = rel_dir.rpartition("/")[0]
