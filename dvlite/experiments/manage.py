"""Keeping and dropping experiments: `exp apply` (its files and outputs into the workspace),
`exp branch`, `exp remove`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dvlite import scm as scm_mod
from dvlite.data.checkout import CheckoutResult, checkout
from dvlite.errors import BadInputError, ChangesWouldBeLostError
from dvlite.experiments import queue as queue_mod
from dvlite.experiments import refs
from dvlite.experiments.run import remember, remembered
from dvlite.outputs import lock_outputs
from dvlite.pipelines.project import read_at
from dvlite.repo import Repo
from dvlite.workspace.scan import FileStat, scan_tree, stat_single


@dataclass
class ApplyResult:
    name: str
    commit: str
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    checkout: CheckoutResult | None = None


def _changed_files(repo: Repo, exp: refs.ExpRef) -> list[tuple[str, str]]:
    """(status, repo-relative path) of the files the experiment changed from its base."""
    scm = repo.require_scm()
    out = []
    for status, path in scm_mod.changed_between(scm.worktree, exp.base, exp.commit):
        if path.startswith(scm.prefix):
            out.append((status, path[len(scm.prefix):]))
    return out


def _unsaved_outs(repo: Repo, outs) -> list[str]:
    """Outputs in the workspace whose bytes are neither the experiment's nor in the cache."""
    hasher = repo.hasher()
    lost: list[str] = []
    for t in outs:
        path = repo.abs(t.rel)
        if not os.path.lexists(path):
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            files, inside = scan_tree(path, repo.odb.objects_dir, ignores=repo.ignores), t.rel + "/"
        else:
            files, inside = [FileStat(t.rel, path, stat_single(path, repo.odb.objects_dir))], ""
        digests = hasher.digests(files, store=False)
        lost += [inside + f.rel for f in files if not repo.odb.contains(digests[f.rel])]
    repo.state.save()
    return lost


def apply(repo: Repo, name: str, force: bool = False) -> ApplyResult:
    """Write the experiment's version of every file it changed into the workspace, and check
    out its outputs. Refuses, before changing anything, when that would overwrite a change that
    is neither committed, nor the experiment's, nor the last experiment run or applied here."""
    exp = refs.resolve(repo, name)
    scm = repo.require_scm()
    changed = _changed_files(repo, exp)
    new = scm_mod.read_blobs(scm.worktree, [f"{exp.commit}:{scm.prefix}{p}" for _, p in changed])
    keep = [c for c in (scm_mod.head_commit(scm.worktree), remembered(repo)) if c]
    old = scm_mod.read_blobs(scm.worktree, [f"{c}:{scm.prefix}{p}" for c in keep for _, p in changed])
    conflicts = []
    for status, rel in changed:
        now = read_at(repo, None, rel)
        mine = new.get(f"{exp.commit}:{scm.prefix}{rel}")
        saved = {old.get(f"{c}:{scm.prefix}{rel}") for c in keep}
        if now is not None and now != mine and now not in saved:
            conflicts.append(rel)
    lock_files = [rel for _, rel in changed if rel.rsplit("/", 1)[-1] == "dvlite.lock"]
    outs = [t for rel in lock_files
            for t in lock_outputs(new.get(f"{exp.commit}:{scm.prefix}{rel}"), f"{rel} at {exp.name}")]
    conflicts += _unsaved_outs(repo, outs)
    if conflicts and not force:
        raise ChangesWouldBeLostError(
            f"applying {exp.name} would overwrite {len(conflicts)} uncommitted change(s); "
            "nothing was changed", sorted(conflicts),
            hint="commit them, or run `dvlite exp apply --force` to overwrite them")
    result = ApplyResult(exp.name, exp.commit)
    for status, rel in changed:
        data = new.get(f"{exp.commit}:{scm.prefix}{rel}")
        if status == "D" or data is None:
            if os.path.lexists(repo.abs(rel)):
                repo.guard.remove_file(rel)
                result.deleted.append(rel)
            continue
        mode = 0o755 if os.access(repo.abs(rel), os.X_OK) and os.path.isfile(repo.abs(rel)) else 0o644
        repo.write(rel, data, mode=mode, replace_link=True)
        result.written.append(rel)
    if outs:
        result.checkout = checkout(repo, [repo.abs(t.rel) for t in outs], force=True)
    remember(repo, exp.commit)
    return result


def branch(repo: Repo, name: str, branch_name: str) -> refs.ExpRef:
    exp = refs.resolve(repo, name)
    scm_mod.create_branch(refs.worktree(repo), branch_name, exp.commit)
    return exp


@dataclass
class RemoveResult:
    experiments: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)


def remove(repo: Repo, names: list[str], everything: bool = False, queued: bool = False) -> RemoveResult:
    """Delete experiment refs (by name, or all of them) and queue entries that are not running."""
    if not names and not everything and not queued:
        raise BadInputError("name the experiments to remove, or use --all or --queue")
    result = RemoveResult()
    worktree = refs.worktree(repo)
    entries = [e for e in queue_mod.entries(repo) if e.state != "running"]
    if everything or queued:
        for e in entries:
            if everything or e.state == "queued":
                queue_mod.remove(repo, e)
                result.queued.append(e.name)
    if everything:
        for e in refs.list_refs(repo):
            scm_mod.delete_ref(worktree, e.ref)
            result.experiments.append(e.name)
    for name in names:
        found = [e for e in entries if e.name == name]
        for e in found:
            queue_mod.remove(repo, e)
            result.queued.append(e.name)
        try:
            exp = refs.resolve(repo, name)
        except BadInputError:
            if found:
                continue
            raise
        scm_mod.delete_ref(worktree, exp.ref)
        result.experiments.append(exp.name)
    return result
