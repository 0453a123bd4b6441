"""`destroy`: take dvlite out of a repository. The data stays as plain files (absent ones are
checked out first, links into the cache become private copies); then the pointers, the
dvlite.lock files, their `.gitignore` lines and `.dvlite/` (with the cache inside it) go.
A cache elsewhere (`cache.dir`) is left, without this project's record in it."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass, field

from dvlite.data.checkout import checkout
from dvlite.data.edit import unprotect
from dvlite.gitignore import remove_ignore
from dvlite.outputs import LOCK_FILE, StageOut, dvlite_files, load_tracked, named, own_tracked
from dvlite.repo import Repo
from dvlite.storage import projects


@dataclass
class DestroyPlan:
    pointers: list[str] = field(default_factory=list)  # .dvl files to delete
    locks: list[str] = field(default_factory=list)  # dvlite.lock files to delete
    paths: list[str] = field(default_factory=list)  # tracked paths that stay as plain files
    cache: str = ""  # the cache directory
    cache_inside: bool = True  # the cache is in .dvlite/ and goes with it


@dataclass
class DestroyResult:
    plan: DestroyPlan
    restored: list[str] = field(default_factory=list)  # absent paths checked out first
    unprotected: list[str] = field(default_factory=list)  # links into the cache made copies
    lost: list[str] = field(default_factory=list)  # in neither the workspace nor the cache
    gitignores: list[str] = field(default_factory=list)  # .gitignore files that lost lines


def plan(repo: Repo) -> DestroyPlan:
    """What `destroy` removes (for the question the CLI asks first)."""
    files = dvlite_files(repo)
    own = own_tracked(repo, files)
    inside = os.path.join(os.path.realpath(repo.dvlite_dir), "")
    return DestroyPlan(
        pointers=[t.pointer_rel for t in own if not isinstance(t, StageOut)],
        locks=named(files, LOCK_FILE),
        paths=sorted({t.rel for t in own}),
        cache=repo.cache_dir,
        cache_inside=os.path.realpath(repo.cache_dir).startswith(inside),
    )


def destroy(repo: Repo) -> DestroyResult:
    """Remove dvlite from the repository, keeping every tracked path's data as plain files."""
    result = DestroyResult(plan(repo))
    tracked = load_tracked(repo)
    absent = [t.rel for t in tracked if not os.path.lexists(repo.abs(t.rel))]
    if absent:
        done = checkout(repo, [repo.abs(rel) for rel in absent])  # never forced
        result.restored = sorted({rel for rel in absent if os.path.lexists(repo.abs(rel))})
        result.lost = sorted({path for path, _ in done.missing + done.corrupt})
    present = [repo.abs(t.rel) for t in tracked if os.path.lexists(repo.abs(t.rel))]
    if present:
        result.unprotected = unprotect(repo, present)
    for pointer in result.plan.pointers + result.plan.locks:
        repo.guard.remove_file(pointer)
    for rel in result.plan.paths:
        changed = remove_ignore(repo, rel)
        if changed and changed not in result.gitignores:
            result.gitignores.append(changed)
    _remove_dvlite_dir(repo, result.plan)
    return result


def _remove_dvlite_dir(repo: Repo, destroy_plan: DestroyPlan) -> None:
    if not destroy_plan.cache_inside:  # a cache shared with other projects stays: unregister
        with contextlib.suppress(OSError):
            pid = projects.project_id(os.path.join(repo.dvlite_dir, "tmp"))
            os.unlink(os.path.join(destroy_plan.cache, projects.DIRNAME, pid))
    shutil.rmtree(repo.dvlite_dir, onerror=_writable_then_retry)


def _writable_then_retry(func, path, _exc_info) -> None:
    """rmtree meets read-only directories (a cache someone made so): open them up, retry."""
    parent = os.path.dirname(path)
    with contextlib.suppress(OSError):
        os.chmod(parent, stat.S_IMODE(os.lstat(parent).st_mode) | stat.S_IWUSR | stat.S_IXUSR)
    func(path)
