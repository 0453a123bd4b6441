"""A repository's pipeline files: dvlite.yaml and dvlite.lock, now or at a git revision, and
`stage add`."""

from __future__ import annotations

import os

from dvlite import yamldoc
from dvlite.errors import BadInputError, FormatError
from dvlite.formats import lockfile
from dvlite.formats.lockfile import Lock
from dvlite.fsutil import read_limited
from dvlite.outputs import load_pointers
from dvlite.pipelines import spec as pipeline_mod
from dvlite.pipelines.spec import Pipeline, Stage
from dvlite.repo import Repo


def read_file(path: str) -> bytes | None:
    try:
        return read_limited(path, yamldoc.MAX_BYTES, os.path.basename(path))
    except FileNotFoundError:
        return None


def has_pipeline(repo: Repo) -> bool:
    return os.path.isfile(repo.abs(pipeline_mod.FILENAME))


def load_pipeline(repo: Repo) -> Pipeline:
    data = read_file(repo.abs(pipeline_mod.FILENAME))
    if data is None:
        raise BadInputError(f"no {pipeline_mod.FILENAME} in {repo.root}",
                            hint="add a stage with `dvlite stage add -n NAME ... CMD`")
    pointers = [(t.rel, t.pointer_rel) for t in load_pointers(repo)]
    return pipeline_mod.parse(data, pointers)


def load_lock(repo: Repo) -> Lock:
    data = read_file(repo.abs(lockfile.FILENAME))
    return lockfile.EMPTY if data is None else lockfile.from_bytes(data)


def write_lock(repo: Repo, lock: Lock) -> None:
    repo.write(lockfile.FILENAME, lock.to_bytes())


def read_at(repo: Repo, rev: str | None, rel: str) -> bytes | None:
    """A file's bytes at git revision `rev`, or in the workspace when rev is None."""
    if rev is None:
        return read_file(repo.abs(rel))
    return repo.require_scm().read_at(rev, [rel]).get(rel)


def pipeline_at(repo: Repo, rev: str | None) -> Pipeline | None:
    data = read_at(repo, rev, pipeline_mod.FILENAME)
    if data is None:
        return None
    stages = pipeline_mod.load_doc(data, pipeline_mod.FILENAME + (f" at {rev}" if rev else ""))
    return Pipeline({str(n): pipeline_mod.parse_stage(n, b) for n, b in (stages.get("stages") or {}).items()})


def lock_at(repo: Repo, rev: str | None) -> Lock:
    data = read_at(repo, rev, lockfile.FILENAME)
    origin = lockfile.FILENAME + (f" at {rev}" if rev else "")
    return lockfile.EMPTY if data is None else lockfile.from_bytes(data, origin)


def add_stage(repo: Repo, name: str, cmd: str, deps: list[str], outs: list[str], params: list[str],
              metrics: list[str], wdir: str | None) -> Stage:
    path = repo.abs(pipeline_mod.FILENAME)
    existing = read_file(path)
    parsed_params: list = []
    for p in params:
        if ":" in p:
            file, keys = p.split(":", 1)
            parsed_params.append({file: [k for k in keys.split(",") if k]})
        else:
            parsed_params += [k for k in p.split(",") if k]
    body = pipeline_mod.stage_doc(name, cmd, deps, outs, parsed_params, metrics, wdir)
    text = pipeline_mod.append_stage(existing, name, body)
    pointers = [(t.rel, t.pointer_rel) for t in load_pointers(repo)]
    try:
        new = pipeline_mod.parse(text, pointers)
        ok = name in new.stages
    except FormatError:
        pipeline_mod.parse_stage(name, body)  # the stage's own error, if it has one
        new, ok = None, False
    if not ok:  # the file's layout defeated appending; write it out again in full
        import yaml

        doc = pipeline_mod.load_doc(existing or b"")
        doc.setdefault("stages", {})
        doc["stages"] = {**(doc["stages"] or {}), name: body}
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True).encode()
        new = pipeline_mod.parse(text, pointers)
    repo.write(pipeline_mod.FILENAME, text)
    return new.stages[name]
