"""`exp show`, `exp list`, `exp diff`: the workspace, the base commit and every experiment with
their params and metrics. The files of every commit are read by one batch of git (a few
processes whatever the number of experiments), so a table of 100 experiments takes well under
a second."""

from __future__ import annotations

from dataclasses import dataclass, field

from dvlite import scm as scm_mod
from dvlite.errors import DvliteError
from dvlite.experiments import overrides as ov
from dvlite.experiments import queue as queue_mod
from dvlite.experiments import refs
from dvlite.experiments.refs import ExpRef
from dvlite.formats import lockfile
from dvlite.formats.lockfile import Lock
from dvlite.pipelines import values
from dvlite.pipelines.dag import Pipeline
from dvlite.pipelines.project import (
    Locks,
    load_lock,
    lock_path,
    pipeline_at,
    pipeline_files,
    read_at,
)
from dvlite.repo import Repo

Key = tuple[str, str]  # (file, dotted key)


@dataclass
class Row:
    name: str
    kind: str  # workspace | baseline | experiment
    commit: str | None  # None for the workspace and queued experiments
    base: str | None
    created: float | None
    state: str  # "" (workspace, baseline) | queued | running | success | failed
    params: dict[Key, object] = field(default_factory=dict)
    metrics: dict[Key, object] = field(default_factory=dict)
    deps: dict[str, str] = field(default_factory=dict)  # path -> digest (with `deps`)
    error: str | None = None  # why the row is incomplete, or why the experiment failed


@dataclass
class _Source:
    commit: str
    pipe: Pipeline | None
    pipeline_bytes: dict[str, bytes | None]


def _base_source(repo: Repo, commit: str) -> _Source:
    pipe = pipeline_at(repo, commit)
    files = pipeline_files(repo, commit) if pipe is not None else []
    return _Source(commit, pipe, {f: read_at(repo, commit, f) for f in files})


def _needed(src: _Source, with_locks: bool) -> set[str]:
    paths = set(src.pipeline_bytes) | values.params_files(src.pipe)
    paths |= {o.path for o in values.metrics_outs(src.pipe)}
    if with_locks:
        paths |= {lock_path(f) for f in src.pipeline_bytes}
    return paths


def _lock_of(read, src: _Source, label: str) -> Lock:
    found = {}
    for f in src.pipeline_bytes:
        data = read(lock_path(f))
        if data is not None:
            found[lock_path(f)] = lockfile.from_bytes(data, f"{lock_path(f)} at {label}")
    return Locks(found).merged()


def _deps(lock: Lock) -> dict[str, str]:
    return {d.path: d.digest.hex for stage in lock.stages.values() for d in stage.deps}


def _fill(repo: Repo, row: Row, read, src: _Source, with_deps: bool) -> None:
    label = row.name
    try:
        lock_cache: list[Lock] = []

        def lock() -> Lock:
            if not lock_cache:
                lock_cache.append(_lock_of(read, src, label))
            return lock_cache[0]

        row.params = values.flat_params(read, values.params_files(src.pipe), label)
        row.metrics = values.flat_metrics(repo, read, src.pipe, lock, label)
        if with_deps:
            row.deps = _deps(lock())
    except DvliteError as exc:
        row.error = exc.message


def _commit_rows(repo: Repo, base: str, label: str, exps: list[ExpRef], with_deps: bool) -> list[Row]:
    """The baseline row of `base` and a row for each of its experiments."""
    scm = repo.require_scm()
    src = _base_source(repo, base)
    dates = scm_mod.commit_dates(scm.worktree, [base])
    rows = [Row(label, "baseline", base, None, dates.get(base, (None,))[0], "")]
    rows += [Row(e.name, "experiment", e.commit, base, e.created, "success") for e in exps]
    lock_paths = with_deps or any(o.cache for o in values.metrics_outs(src.pipe))
    needed = sorted(_needed(src, lock_paths))
    specs = [f"{r.commit}:{scm.prefix}{rel}" for r in rows for rel in needed]
    blobs = scm_mod.read_blobs(scm.worktree, specs)
    for row in rows:
        def read(rel: str, commit=row.commit):
            return blobs.get(f"{commit}:{scm.prefix}{rel}")

        own = src
        if any(read(f) != data for f, data in src.pipeline_bytes.items()):
            own = _base_source(repo, row.commit)  # an experiment that changed its pipeline

            def read(rel: str, commit=row.commit):
                return read_at(repo, commit, rel)
        _fill(repo, row, read, own, with_deps)
    return rows


def _workspace_row(repo: Repo, with_deps: bool) -> Row:
    row = Row("workspace", "workspace", None, None, None, "")
    try:
        pipe = pipeline_at(repo, None)
        row.params = values.flat_params(lambda rel: read_at(repo, None, rel), values.params_files(pipe))
        row.metrics = values.metrics_at(repo, None)
        if with_deps:
            row.deps = _deps(load_lock(repo))
    except DvliteError as exc:
        row.error = exc.message
    return row


def _queued_rows(entries: list[queue_mod.Entry], baseline: Row) -> list[Row]:
    rows = []
    for e in entries:
        params = {**baseline.params, **ov.flat(e.params)}
        rows.append(Row(e.name, "experiment", e.commit, e.base, e.started or e.queued, e.state,
                        params, {}, {}, e.error))
    return rows


def collect(repo: Repo, all_commits: bool = False, with_deps: bool = False) -> list[Row]:
    """The rows of `exp show`: the workspace, then per base commit (HEAD's, or with
    `all_commits` every commit that has experiments) the commit and its experiments, oldest first."""
    scm = repo.require_scm()
    head = scm_mod.head_commit(scm.worktree)
    exps = refs.list_refs(repo)
    pending = [e for e in queue_mod.entries(repo) if e.state != "success"]
    bases = [head] if head else []
    if all_commits:
        others = {e.base for e in exps} | {e.base for e in pending}
        dates = scm_mod.commit_dates(scm.worktree, sorted(others - set(bases)))
        bases += sorted(dates, key=lambda sha: -dates[sha][0])
    branch = scm_mod.current_branch(scm.worktree)
    rows = [_workspace_row(repo, with_deps)]
    for base in bases:
        label = (branch or base[:7]) if base == head else base[:7]
        group = _commit_rows(repo, base, label, [e for e in exps if e.base == base], with_deps)
        group += _queued_rows([e for e in pending if e.base == base], group[0])
        rows += group
    return rows


def listing(repo: Repo, all_commits: bool = False) -> dict[str, list[ExpRef]]:
    """`exp list`: base commit -> its experiments (HEAD's only, unless `all_commits`)."""
    head = scm_mod.head_commit(refs.worktree(repo))
    out: dict[str, list[ExpRef]] = {}
    for e in refs.list_refs(repo, None if all_commits else head or "0" * 40):
        out.setdefault(e.base, []).append(e)
    return out


def resolve_rev(repo: Repo, name: str) -> str:
    """An experiment name or a git revision, as a commit."""
    try:
        return refs.resolve(repo, name).commit
    except DvliteError:
        return repo.require_scm().resolve(name)


def diff(repo: Repo, a: str, b: str | None, show_all: bool = False):
    """`exp diff A [B]`: (params changes, metrics changes) from B (default: A's base commit, or
    HEAD for a revision) to A."""
    new = resolve_rev(repo, a)
    if b is None:
        old = scm_mod.parent_of(refs.worktree(repo), new) or new
    else:
        old = resolve_rev(repo, b)
    return (values.params_diff(repo, old, new, show_all), values.metrics_diff(repo, old, new, show_all),
            old, new)
