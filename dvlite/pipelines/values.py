"""Params and metrics across revisions: `params diff`, `metrics show`, `metrics diff`, and the flat
values of one revision read through any reader (the workspace, git history, a batch of blobs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dvlite import scm as scm_mod
from dvlite.formats import params as params_mod
from dvlite.formats.lockfile import Lock
from dvlite.pipelines import spec as pipeline_mod
from dvlite.pipelines.dag import Pipeline
from dvlite.pipelines.project import cached_out, lock_at, pipeline_at, read_at
from dvlite.repo import Repo

Reader = Callable[[str], "bytes | None"]  # repo-relative path -> its bytes, None when absent
EXPERIMENT_REFS = "refs/exps/*"  # experiments are shown by `exp show`, not by `metrics show -A`


@dataclass(frozen=True)
class ValueChange:
    path: str
    key: str
    old: object
    new: object
    change: object  # numeric delta, or None


def params_files(pipe: Pipeline | None) -> set[str]:
    """params.yaml and every params file a stage names."""
    files = {pipeline_mod.DEFAULT_PARAMS}
    if pipe is not None:
        files |= {r.file for s in pipe.stages.values() for r in s.params}
    return files


def metrics_outs(pipe: Pipeline | None) -> list:
    """The metrics outs of every stage (`Out`s), in stage order."""
    if pipe is None:
        return []
    return [o for stage in pipe.stages.values() for o in stage.outs if o.role == "metrics"]


def flat_params(read: Reader, files: set[str], label: str = "") -> dict[tuple[str, str], object]:
    """Every leaf of the params files by (file, dotted key); `label` names the revision in errors."""
    out = {}
    for rel in sorted(files):
        data = read(rel)
        if data is None:
            continue
        doc = params_mod.parse(data, rel + (f" at {label}" if label else ""))
        for k, v in params_mod.flatten(doc).items():
            out[(rel, k)] = v
    return out


def flat_metrics(repo: Repo, read: Reader, pipe: Pipeline | None, lock: Callable[[], Lock] | None,
                 label: str = "") -> dict[tuple[str, str], object]:
    """Every scalar metric by (file, dotted key). A metrics file `read` lacks is read from the
    object store through `lock()` (a cached metrics file), when given and its object is there."""
    out = {}
    for o in metrics_outs(pipe):
        data = read(o.path)
        if data is None and lock is not None:
            data = cached_out(repo, lock(), o.path)
        if data is None:
            continue
        doc = params_mod.parse(data, o.path + (f" at {label}" if label else ""))
        for k, v in params_mod.flatten(doc).items():
            if not isinstance(v, (dict, list)):
                out[(o.path, k)] = v
    return out


def _flat_files(repo: Repo, rev: str | None, files: set[str]) -> dict[tuple[str, str], object]:
    return flat_params(lambda rel: read_at(repo, rev, rel), files, rev or "")


def _changes(a: dict, b: dict, show_all: bool) -> list[ValueChange]:
    rows = []
    for path, key in sorted(set(a) | set(b)):
        old, new = a.get((path, key), params_mod.MISSING), b.get((path, key), params_mod.MISSING)
        if old == new and not show_all:
            continue
        rows.append(ValueChange(path, key, None if old is params_mod.MISSING else old,
                                None if new is params_mod.MISSING else new, params_mod.delta(old, new)))
    return rows


def params_diff(repo: Repo, a_rev: str | None, b_rev: str | None, show_all: bool = False) -> list[ValueChange]:
    a = a_rev or "HEAD"
    files = params_files(pipeline_at(repo, a)) | params_files(pipeline_at(repo, b_rev))
    return _changes(_flat_files(repo, a, files), _flat_files(repo, b_rev, files), show_all)


def metrics_at(repo: Repo, rev: str | None) -> dict[tuple[str, str], object]:
    """The metrics at `rev` (None: the workspace)."""
    pipe = pipeline_at(repo, rev)
    if pipe is None:
        return {}
    lock = (lambda: lock_at(repo, rev)) if rev is not None else None
    return flat_metrics(repo, lambda rel: read_at(repo, rev, rel), pipe, lock, rev or "")


def metrics_show(repo: Repo, all_commits: bool = False) -> list[dict]:
    """Metrics values: [{rev, path, key, value}], for the workspace or every commit (newest
    first; the commits of experiments are left to `exp show`)."""
    revs: list[tuple[str | None, str]] = [(None, "workspace")]
    if all_commits:
        worktree = repo.require_scm().worktree
        revs = [(sha, sha[:7]) for sha, _subject in scm_mod.log_without(worktree, EXPERIMENT_REFS)]
    rows = []
    for rev, label in revs:
        for (path, key), value in sorted(metrics_at(repo, rev).items()):
            rows.append({"rev": label, "path": path, "key": key, "value": value})
    return rows


def metrics_diff(repo: Repo, a_rev: str | None, b_rev: str | None, show_all: bool = False) -> list[ValueChange]:
    return _changes(metrics_at(repo, a_rev or "HEAD"), metrics_at(repo, b_rev), show_all)
