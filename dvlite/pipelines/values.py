"""Params and metrics across revisions: `params diff`, `metrics show`, `metrics diff`."""

from __future__ import annotations

from dataclasses import dataclass

from dvlite.formats import params as params_mod
from dvlite.pipelines import spec as pipeline_mod
from dvlite.pipelines.project import lock_at, pipeline_at, read_at
from dvlite.pipelines.dag import Pipeline
from dvlite.repo import Repo


@dataclass(frozen=True)
class ValueChange:
    path: str
    key: str
    old: object
    new: object
    change: object  # numeric delta, or None


def _params_files(pipe: Pipeline | None) -> set[str]:
    files = {pipeline_mod.DEFAULT_PARAMS}
    if pipe is not None:
        files |= {r.file for s in pipe.stages.values() for r in s.params}
    return files


def _flat_files(repo: Repo, rev: str | None, files: set[str]) -> dict[tuple[str, str], object]:
    out = {}
    for rel in sorted(files):
        data = read_at(repo, rev, rel)
        if data is None:
            continue
        doc = params_mod.parse(data, rel + (f" at {rev}" if rev else ""))
        for k, v in params_mod.flatten(doc).items():
            out[(rel, k)] = v
    return out


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
    files = _params_files(pipeline_at(repo, a)) | _params_files(pipeline_at(repo, b_rev))
    return _changes(_flat_files(repo, a, files), _flat_files(repo, b_rev, files), show_all)


def _metrics_at(repo: Repo, rev: str | None) -> dict[tuple[str, str], object]:
    pipe = pipeline_at(repo, rev)
    if pipe is None:
        return {}
    lock = lock_at(repo, rev)
    out = {}
    for stage in pipe.stages.values():
        for o in stage.outs:
            if o.role != "metrics":
                continue
            data = read_at(repo, rev, o.path)
            if data is None and rev is not None:  # a cached metrics file: its bytes are in the cache
                found = lock.producer_of(o.path)
                if found is not None and found[1].kind == "file" and repo.odb.contains(found[1].digest.hex):
                    data = repo.odb.read_verified(found[1].digest.hex)
            if data is None:
                continue
            doc = params_mod.parse(data, o.path + (f" at {rev}" if rev else ""))
            for k, v in params_mod.flatten(doc).items():
                if not isinstance(v, (dict, list)):
                    out[(o.path, k)] = v
    return out


def metrics_show(repo: Repo, all_commits: bool = False) -> list[dict]:
    """Metrics values: [{rev, path, key, value}], for the workspace or every commit."""
    revs: list[tuple[str | None, str]] = [(None, "workspace")]
    if all_commits:
        revs = [(sha, sha[:7]) for sha, _subject in repo.require_scm().log()]
    rows = []
    for rev, label in revs:
        for (path, key), value in sorted(_metrics_at(repo, rev).items()):
            rows.append({"rev": label, "path": path, "key": key, "value": value})
    return rows


def metrics_diff(repo: Repo, a_rev: str | None, b_rev: str | None, show_all: bool = False) -> list[ValueChange]:
    return _changes(_metrics_at(repo, a_rev or "HEAD"), _metrics_at(repo, b_rev), show_all)
