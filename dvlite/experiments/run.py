"""Running an experiment: params written, `repro`, and the result recorded as a commit on an
experiment ref (made with git plumbing: the branch, HEAD and the index are never touched).
`exp run` does this in the workspace; `--queue` only records what to run."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from dvlite import scm as scm_mod
from dvlite.errors import BadInputError, StageFailed
from dvlite.experiments import overrides as ov
from dvlite.experiments import queue as queue_mod
from dvlite.experiments import refs
from dvlite.fsutil import atomic_write, read_limited
from dvlite.outputs import dvlite_files
from dvlite.pipelines import values
from dvlite.pipelines.dag import Pipeline
from dvlite.pipelines.project import load_pipeline, read_at
from dvlite.pipelines.repro import Event, ReproResult, repro
from dvlite.repo import Repo

WORKSPACE_FILE = "workspace"  # in .dvlite/tmp/exps/: the experiment the workspace last received


@dataclass
class ExpResult:
    name: str
    base: str
    commit: str | None  # None when a stage failed
    repro: ReproResult
    changes: dict


def tmp_dir(repo: Repo) -> str:
    path = os.path.join(repo.dvlite_dir, "tmp", "exps")
    os.makedirs(path, exist_ok=True)
    return path


def recorded_paths(repo: Repo, pipeline: Pipeline) -> list[str]:
    """What an experiment's commit holds besides git's tracked files: the pointers, every
    dvlite.yaml and dvlite.lock, the params files, outs kept out of the cache (metrics, plots)
    and the .gitignore beside each cached out (repo-relative)."""
    paths = set(dvlite_files(repo)) | values.params_files(pipeline)
    for stage in pipeline.stages.values():
        for o in stage.outs:
            paths.add(o.path if not o.cache else posixpath.join(posixpath.dirname(o.path), ".gitignore"))
    return sorted(p for p in paths if os.path.lexists(repo.abs(p)))


def record(repo: Repo, pipeline: Pipeline, base: str, name: str, changes: dict) -> str:
    """Commit the workspace as experiment `name` of `base` and point its ref there."""
    scm = repo.require_scm()
    message = f"dvlite experiment {name}" + (f"\n\n{ov.describe(changes)}\n" if changes else "\n")
    paths = [scm.prefix + p for p in recorded_paths(repo, pipeline)]
    commit = scm_mod.commit_work_tree(scm.worktree, base, paths, message, tmp_dir(repo))
    if not scm_mod.create_ref(scm.worktree, refs.ref_of(base, name), commit):
        raise BadInputError(f"an experiment named {name!r} of commit {base[:7]} already exists")
    return commit


def write_params(repo: Repo, changes: dict) -> list[str]:
    """Write every changed params file (each atomically); the files written."""
    new = {}
    for rel, keys in sorted(changes.items()):
        data = read_at(repo, None, rel)
        if data is None:
            raise BadInputError(f"-S: {rel} does not exist")
        new[rel] = ov.apply(data, rel, keys)
    for rel, data in new.items():  # all computed before the first write
        repo.write(rel, data)
    return sorted(new)


def run_experiment(repo: Repo, base: str, name: str, changes: dict, targets: list[str],
                   on_event: Callable[[Event], None] = lambda e: None) -> ExpResult:
    """In the work tree of `repo` (the workspace or a queue's own work tree): params, repro,
    and, when every stage succeeded, the experiment's commit."""
    write_params(repo, changes)
    result = repro(repo, targets, on_event=on_event)
    if not result.ok:
        return ExpResult(name, base, None, result, changes)
    commit = record(repo, load_pipeline(repo), base, name, changes)
    remember(repo, commit)
    return ExpResult(name, base, commit, result, changes)


def remember(repo: Repo, commit: str) -> None:
    """Note which experiment the workspace now holds (`exp apply` treats its files as saved)."""
    atomic_write(os.path.join(tmp_dir(repo), WORKSPACE_FILE), commit.encode() + b"\n", durable=False)


def remembered(repo: Repo) -> str | None:
    path = os.path.join(tmp_dir(repo), WORKSPACE_FILE)
    try:
        text = read_limited(path, 100, path).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if len(text) == 40 else None


def taken_names(repo: Repo, base: str) -> set[str]:
    return {e.name for e in refs.list_refs(repo, base)} | {
        e.name for e in queue_mod.entries(repo) if e.base == base}


def _checked(repo: Repo, args: list[str], rev: str | None) -> list[dict]:
    """The changes of each experiment the `-S` options make, checked against the pipeline and
    params files of the workspace (rev None) or of commit `rev`."""
    parsed = ov.parse_args(args)
    pipeline = load_pipeline(repo, rev, check=rev is None)
    known = {f for f in values.params_files(pipeline) if read_at(repo, rev, f) is not None}
    ov.check(parsed, known, lambda rel: read_at(repo, rev, rel),
             "the workspace" if rev is None else f"commit {rev[:7]}")
    return ov.grid(parsed)


def exp_run(repo: Repo, args: list[str], name: str | None, targets: list[str],
            on_event: Callable[[Event], None] = lambda e: None) -> ExpResult:
    """`exp run`: one experiment in the workspace (which keeps its results, like `repro`)."""
    base = refs.head(repo)
    combos = _checked(repo, args, None)
    if len(combos) > 1:
        raise BadInputError(f"the -S values make a sweep of {len(combos)} experiments",
                            hint="queue them with `dvlite exp run --queue ...`, then `dvlite queue start`")
    name = _name(repo, base, name)
    return run_experiment(repo, base, name, combos[0], targets, on_event)


def _name(repo: Repo, base: str, name: str | None, taken: set[str] | None = None) -> str:
    taken = taken_names(repo, base) if taken is None else taken
    if name is None:
        return refs.new_name(taken)
    refs.check_name(name)
    if name in taken:
        raise BadInputError(f"an experiment named {name!r} of commit {base[:7]} already exists",
                            hint="choose another name, or `dvlite exp remove` the old one")
    return name


def exp_queue(repo: Repo, args: list[str], name: str | None, targets: list[str]) -> list[queue_mod.Entry]:
    """`exp run --queue`: one entry per combination of the -S values, checked against HEAD's
    commit (what a queued experiment starts from); nothing is queued when any is wrong."""
    base = refs.head(repo)
    combos = _checked(repo, args, base)
    pipeline = load_pipeline(repo, base, check=False)
    for t in targets:
        if pipeline.find(t) is None:
            raise BadInputError(f"no stage named {t!r} in dvlite.yaml at {base[:7]}")
    taken = taken_names(repo, base)
    names = []
    for i, _ in enumerate(combos, start=1):
        wanted = None if name is None else (name if len(combos) == 1 else f"{name}-{i}")
        names.append(_name(repo, base, wanted, taken))
        taken.add(names[-1])
    return [queue_mod.add(repo, base, n, c, targets) for n, c in zip(names, combos)]


def uncommitted(repo: Repo) -> list[str]:
    """Files git tracks that differ from HEAD (queued experiments start without them)."""
    scm = repo.require_scm()
    return [p[len(scm.prefix):] for p in scm_mod.modified_tracked(scm.worktree) if p.startswith(scm.prefix)]


def failure_of(result: ReproResult) -> str:
    if result.failed:
        return result.failed[0][1]
    return "the pipeline did not finish"


def raise_failed(result: ExpResult) -> None:
    if result.commit is None:
        raise StageFailed(failure_of(result.repro),
                          hint="the experiment was not recorded; the workspace keeps what the run left")

