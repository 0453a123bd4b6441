"""Finding, creating and opening a dvlite repository; it owns config, cache, state, scm, lock."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from functools import cached_property

from dvlite import scm as scm_mod
from dvlite.config import Config
from dvlite.config import cache_dir as config_cache_dir
from dvlite.errors import BadInputError, FormatError, NotARepoError
from dvlite.fsutil import LockHolder, atomic_write, remove_temp_files, repo_lock
from dvlite.guard import Guard, SymlinkError
from dvlite.progress import SILENT, Progress
from dvlite.storage import projects
from dvlite.storage.cache import Cache
from dvlite.storage.statcache import StatCache
from dvlite.workspace.hasher import Hasher
from dvlite.workspace.ignore import Ignores

DIRNAME = ".dvlite"
DVC_DIRNAME = ".dvc"
LOCAL_ONLY = ("cache/", "tmp/", "lock")  # never committed: ignored in .git/info/exclude too
GITIGNORE = "/config.local\n/cache/\n/tmp/\n/lock\n"
CACHE_SECTION = "[cache]\ntype = reflink,copy\n"


def find_root(start: str) -> str | None:
    cur = os.path.realpath(start)
    while True:
        if os.path.isdir(os.path.join(cur, DIRNAME)):
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return None
        cur = parent


def find_dvc_root(start: str) -> str | None:
    """The nearest directory at or above `start` holding DVC's `.dvc/` directory."""
    cur = os.path.realpath(start)
    while True:
        if os.path.isdir(os.path.join(cur, DVC_DIRNAME)) and not os.path.islink(os.path.join(cur, DVC_DIRNAME)):
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return None
        cur = parent


def exclude_local_files(root: str) -> None:
    """dvlite's local files (cache, temp files, lock) ignored in this clone whatever the commit."""
    worktree = scm_mod.find_worktree(root)
    if worktree is None:
        return
    rel = os.path.relpath(root, worktree).replace(os.sep, "/")
    top = "" if rel == "." else "/" + rel
    scm_mod.exclude_locally(worktree, [f"{top}/{DIRNAME}/{name}" for name in LOCAL_ONLY])


class Repo:
    def __init__(self, root: str):
        self.root = root
        self.dvlite_dir = os.path.join(root, DIRNAME)
        for own in (self.dvlite_dir, os.path.join(self.dvlite_dir, "tmp")):
            if os.path.islink(own):  # a symlink committed in its place would take our writes away
                raise SymlinkError(f"{own} is a symlink; dvlite keeps its own files only in a "
                                   "real directory", hint="replace it by a directory")
        self.config = Config(self.dvlite_dir)
        # set while a command that writes no pointer, lock or pipeline file runs (status):
        # its readers share one `git ls-files` (outputs.one_listing)
        self.held_listing: list[str] | None = None
        self.held_untracked: set[str] | None = None  # of the held listing, those git does not track

    @classmethod
    def find(cls, start: str = ".") -> Repo:
        root = find_root(start)
        if root is None and find_dvc_root(start) is not None:
            return cls.adopt(find_dvc_root(start))
        if root is None:
            raise NotARepoError(
                "not a dvlite repository (no .dvlite/ here or in any parent)",
                hint="run `dvlite init` at the top of your project",
            )
        return cls(root)

    @classmethod
    def adopt(cls, root: str) -> Repo:
        """A DVC repository (or a commit from before the switch) read by dvlite: `.dvlite/`
        holds only the cache and temp files, ignored through `.git/info/exclude` so that a
        later checkout of a commit with dvlite's own files never conflicts with them."""
        os.makedirs(os.path.join(root, DIRNAME, "tmp"), exist_ok=True)
        exclude_local_files(root)
        return cls(root)

    @classmethod
    def init(cls, path: str, no_scm: bool = False, force: bool = False) -> Repo:
        root = os.path.realpath(path)
        worktree = scm_mod.find_worktree(root)
        if worktree is None and not no_scm:
            raise NotARepoError(
                f"{root} is not inside a git work tree",
                hint="run `git init` first, or `dvlite init --no-scm`",
            )
        dvlite_dir = os.path.join(root, DIRNAME)
        adopted = not os.path.exists(os.path.join(dvlite_dir, "config"))  # only a cache so far
        if os.path.exists(dvlite_dir) and not force and not adopted:
            raise BadInputError(
                f"{dvlite_dir} already exists", hint="use --force to re-initialise (the cache and config are kept)"
            )
        os.makedirs(os.path.join(dvlite_dir, "cache", "objects"), exist_ok=True)
        os.makedirs(os.path.join(dvlite_dir, "tmp"), exist_ok=True)
        config_path = os.path.join(dvlite_dir, "config")
        if not os.path.exists(config_path):  # --force keeps the user's settings
            core = "[core]\n" + ("no_scm = true\n" if no_scm else "")
            atomic_write(config_path, (core + "\n" + CACHE_SECTION).encode())
        local = os.path.join(dvlite_dir, "config.local")
        if not os.path.exists(local):
            atomic_write(local, b"")
        atomic_write(os.path.join(dvlite_dir, ".gitignore"), GITIGNORE.encode())
        return cls(root)

    # --- parts ------------------------------------------------------------
    @cached_property
    def cache_dir(self) -> str:
        return config_cache_dir(self.config, self.dvlite_dir)  # relative to the file setting it

    @cached_property
    def odb(self) -> Cache:
        cache = Cache(self.cache_dir, pack_small=self.config.pack_small(),
                      shared=self.config.shared_cache() == "group")
        projects.register(self.cache_dir, self.root, os.path.join(self.dvlite_dir, "tmp"))
        return cache

    @property
    def index_dir(self) -> str:
        """Where the pack indexes of remotes are kept (immutable: a copy never goes stale)."""
        return os.path.join(self.dvlite_dir, "tmp", "pack-index")

    def hasher(self, progress: Progress = SILENT) -> Hasher:
        return Hasher(self.state, self.odb, self.root, progress)

    @cached_property
    def ignores(self) -> Ignores:
        """The .dvliteignore rules, read as scans reach them."""
        return Ignores(self.root)

    @cached_property
    def state(self) -> StatCache:
        return StatCache(os.path.join(self.dvlite_dir, "tmp", "state.db"))

    @cached_property
    def scm(self) -> scm_mod.Scm | None:
        if (self.config.get("core.no_scm") or "").lower() == "true":
            return None
        worktree = scm_mod.find_worktree(self.root)
        if worktree is None:
            raise NotARepoError(
                f"{self.root} is no longer inside a git work tree",
                hint="restore .git, or set core.no_scm = true",
            )
        return scm_mod.Scm(worktree, self.root)

    def require_scm(self) -> scm_mod.Scm:
        if self.scm is None:
            raise BadInputError("this command needs git history, but the repository is --no-scm")
        return self.scm

    @contextlib.contextmanager
    def lock(self, command: str, on_wait: Callable[[LockHolder | None], None]) -> Iterator[None]:
        os.makedirs(os.path.join(self.dvlite_dir, "tmp"), exist_ok=True)
        with repo_lock(
            os.path.join(self.dvlite_dir, "lock"), command, self.config.lock_timeout(), on_wait
        ):
            remove_temp_files(self.work_tmp)  # left by a command killed mid-write: ours alone now
            yield

    # --- writing into the workspace -------------------------------------------------
    @cached_property
    def guard(self) -> Guard:
        return Guard(self.root)

    @cached_property
    def work_tmp(self) -> str:
        """Where workspace writes make their temp files: an interrupted command leaves nothing
        beside the user's files, and the next locked command removes what it left here."""
        path = os.path.join(self.dvlite_dir, "tmp", "ws")
        os.makedirs(path, exist_ok=True)
        return path

    def write(self, rel: str, data: bytes | None = None, *, writer=None, mode: int = 0o644,
              durable: bool = True, replace_link: bool = False, before_replace=None) -> str:
        """Write repo-relative `rel` atomically, through no symlink; returns its absolute path."""
        path = self.guard.prepare(rel, replace_link)
        atomic_write(path, data, writer=writer, mode=mode, durable=durable,
                     before_replace=before_replace, tmp_dir=self.work_tmp)
        return path

    # --- paths --------------------------------------------------------------
    def rel(self, abs_path: str) -> str:
        return os.path.relpath(abs_path, self.root).replace(os.sep, "/")

    def abs(self, rel_path: str) -> str:
        return os.path.join(self.root, *rel_path.split("/"))

    def check_config(self) -> None:
        """Surface a malformed config early, with its file name."""
        try:
            self.config.link_types()
            self.config.lock_timeout()
            self.config.pack_small()
            self.config.shared_cache()
        except FormatError as exc:
            raise FormatError(f"{os.path.join(self.dvlite_dir, 'config')}: {exc.message}", exc.hint)
