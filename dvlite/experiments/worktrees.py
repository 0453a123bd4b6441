"""A queued experiment's own git work tree: detached at its base commit, its settings those of the
repository (remotes made absolute) with `cache.dir` pointing at the repository's cache, removed
when the experiment is done. The experiment runs there, so the workspace is never touched."""

from __future__ import annotations

import contextlib
import os
import shutil

from dvlite import scm as scm_mod
from dvlite.config import Config
from dvlite.experiments.queue import Entry
from dvlite.remotes.config import remote_configs
from dvlite.repo import DIRNAME, Repo
from dvlite.storage import projects


def portable_settings(repo: Repo) -> dict[str, str]:
    """The repository's config (shared and local) as a copy elsewhere needs it: remote URLs
    made absolute, without `cache.dir`."""
    settings = {k: v for k, v in repo.config.items().items() if k != "cache.dir"}
    for name, remote in remote_configs(repo.config).items():
        settings[f"remote.{name}.url"] = remote.url
    return settings


def configure(root: str, settings: dict[str, str], shared: bytes | None) -> None:
    """Give the dvlite repository at `root` (a fresh checkout) these settings, in its
    config.local; `shared` becomes its config when the checkout has none."""
    dvlite_dir = os.path.join(root, DIRNAME)
    os.makedirs(os.path.join(dvlite_dir, "tmp"), exist_ok=True)
    if shared is not None and not os.path.exists(os.path.join(dvlite_dir, "config")):
        with open(os.path.join(dvlite_dir, "config"), "wb") as f:
            f.write(shared)
    config = Config(dvlite_dir)
    for key, value in sorted(settings.items()):
        config.set(key, value, local=True)


def path_of(repo: Repo, entry: Entry) -> str:
    return os.path.join(repo.dvlite_dir, "tmp", "exps", "wt", entry.id)


def create(repo: Repo, entry: Entry) -> str:
    """A new work tree for `entry`; the dvlite repository root inside it."""
    scm = repo.require_scm()
    top = path_of(repo, entry)
    if os.path.lexists(top):  # left by a runner that died
        remove(repo, top)
    os.makedirs(os.path.dirname(top), exist_ok=True)
    scm_mod.worktree_add(scm.worktree, top, entry.base)
    root = os.path.join(top, scm.prefix.rstrip("/")) if scm.prefix else top
    shared = None
    with contextlib.suppress(OSError), open(os.path.join(repo.dvlite_dir, "config"), "rb") as f:
        shared = f.read()
    configure(root, {**portable_settings(repo), "cache.dir": repo.cache_dir}, shared)
    return root


def remove(repo: Repo, top: str) -> None:
    """Remove a work tree made by `create`, and its record among the cache's projects (it was a
    project using the cache while it ran, so `gc` kept what it was making)."""
    scm = repo.require_scm()
    root = os.path.join(top, scm.prefix.rstrip("/")) if scm.prefix else top
    tmp = os.path.join(root, DIRNAME, "tmp")
    if os.path.exists(os.path.join(tmp, projects.ID_FILE)):
        record = os.path.join(repo.cache_dir, projects.DIRNAME, projects.project_id(tmp))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(record)
    scm_mod.worktree_remove(scm.worktree, top)
    if os.path.lexists(top):
        shutil.rmtree(top, ignore_errors=True)


def leftovers(repo: Repo) -> list[str]:
    """Work trees of experiments that are no longer running (a runner was killed)."""
    top = os.path.join(repo.dvlite_dir, "tmp", "exps", "wt")
    try:
        return sorted(os.path.join(top, n) for n in os.listdir(top))
    except FileNotFoundError:
        return []
