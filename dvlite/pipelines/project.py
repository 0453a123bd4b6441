"""A repository's pipeline files: every dvlite.yaml (the root's and those in subdirectories,
one DAG) and the dvlite.lock beside each, now or at a git revision; `stage add`."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

from dvlite import yamldoc
from dvlite.errors import BadInputError, FormatError
from dvlite.formats import lockfile
from dvlite.formats.lockfile import Lock, StageLock
from dvlite.fsutil import read_limited
from dvlite.outputs import LOCK_FILE, PIPELINE_FILE, dvlite_files, load_pointers, named
from dvlite.pipelines import spec as pipeline_mod
from dvlite.pipelines.dag import Pipeline, combine
from dvlite.pipelines.spec import Stage
from dvlite.repo import Repo


def read_file(path: str) -> bytes | None:
    try:
        return read_limited(path, yamldoc.MAX_BYTES, os.path.basename(path))
    except FileNotFoundError:
        return None


def read_at(repo: Repo, rev: str | None, rel: str) -> bytes | None:
    """A file's bytes at git revision `rev`, or in the workspace when rev is None."""
    if rev is None:
        return read_file(repo.abs(rel))
    return repo.require_scm().read_at(rev, [rel]).get(rel)


def cached_out(repo: Repo, lock: Lock, rel: str) -> bytes | None:
    """The bytes of a cached file out as `lock` records it, when the cache holds them."""
    found = lock.producer_of(rel)
    if found is not None and found[1].kind == "file" and repo.odb.contains(found[1].digest.hex):
        return repo.odb.read_verified(found[1].digest.hex)
    return None


def out_at(repo: Repo, rev: str | None, rel: str, lock: Lock) -> bytes | None:
    """A stage out's bytes (a metrics or plots file) at `rev`: from git (or the workspace),
    else, for a cached out, from the cache through `lock`, the lock at `rev`."""
    data = read_at(repo, rev, rel)
    if data is None and rev is not None:
        data = cached_out(repo, lock, rel)
    return data


def pipeline_files(repo: Repo, rev: str | None = None) -> list[str]:
    """Every dvlite.yaml, the root's first (repo-relative)."""
    if rev is None:
        return named(dvlite_files(repo), PIPELINE_FILE)
    return named(list(repo.require_scm().files_at(rev, PIPELINE_FILE, limit=yamldoc.MAX_BYTES)),
                 PIPELINE_FILE)


def has_pipeline(repo: Repo) -> bool:
    return bool(pipeline_files(repo))


def _options(repo: Repo) -> dict:
    """DVC's templating options, when the config sets them (`parsing.bool`, `parsing.list`)."""
    return {k.removeprefix("parsing."): v for k, v in repo.config.items().items()
            if k.startswith("parsing.")}


def load_pipeline(repo: Repo, rev: str | None = None, check: bool = True) -> Pipeline:
    """The pipeline of every dvlite.yaml, templating resolved, validated (in the workspace: also
    against the `.dvl` pointers). In the workspace a repository without one is an error."""
    files = pipeline_files(repo, rev)
    if not files and rev is None:
        raise BadInputError(f"no {pipeline_mod.FILENAME} in {repo.root}",
                            hint="add a stage with `dvlite stage add -n NAME ... CMD`")
    parsed = []
    for path in files:
        origin = path + (f" at {rev}" if rev else "")
        data = read_at(repo, rev, path) or b""
        parsed.append(pipeline_mod.parse_file(data, path, lambda p: read_at(repo, rev, p),
                                              _options(repo), origin))
    tracked = [(t.rel, t.pointer_rel) for t in load_pointers(repo)] if rev is None and check else ()
    return combine(parsed, tracked, check=check)


def pipeline_at(repo: Repo, rev: str | None) -> Pipeline | None:
    """The pipeline at `rev` (None: the workspace), or None when there is none there."""
    if not pipeline_files(repo, rev):
        return None
    return load_pipeline(repo, rev, check=False)


def lock_path(stage_file: str) -> str:
    """The dvlite.lock beside a dvlite.yaml."""
    return posixpath.join(posixpath.dirname(stage_file), LOCK_FILE)


@dataclass(frozen=True)
class Locks:
    """The dvlite.lock of every pipeline file, by the lock's path."""

    files: dict[str, Lock]

    def entry(self, stage: Stage) -> StageLock | None:
        return self.files.get(lock_path(stage.file), lockfile.EMPTY).stages.get(stage.lock_key)

    def with_entry(self, stage: Stage, entry: StageLock) -> Locks:
        path = lock_path(stage.file)
        return Locks({**self.files, path: self.files.get(path, lockfile.EMPTY).with_stage(entry)})

    def merged(self, pipeline: Pipeline | None = None) -> Lock:
        """One lock of every entry, named as the stages are (`a/b:train`), for queries that span
        the files (which stage produced a path)."""
        stages = {}
        for path, lock in self.files.items():
            base = posixpath.dirname(path)
            for key, entry in lock.stages.items():
                name = pipeline_mod.qualified(posixpath.join(base, PIPELINE_FILE), key)
                stages[name] = StageLock(name, entry.cmd, entry.deps, entry.params, entry.outs)
        return Lock(stages)


def load_locks(repo: Repo, rev: str | None = None) -> Locks:
    """Every dvlite.lock (now, or at `rev`)."""
    if rev is None:
        paths = named(dvlite_files(repo), LOCK_FILE)
        found = {p: read_file(repo.abs(p)) for p in paths}
    else:
        found = repo.require_scm().files_at(rev, LOCK_FILE, limit=yamldoc.MAX_BYTES)
        found = {p: found[p] for p in named(list(found), LOCK_FILE)}
    label = f" at {rev}" if rev else ""
    return Locks({p: lockfile.from_bytes(data, p + label) for p, data in found.items() if data is not None})


def load_lock(repo: Repo) -> Lock:
    """Every lock entry of the workspace as one Lock (stages named as in the pipeline)."""
    return load_locks(repo).merged()


def lock_at(repo: Repo, rev: str | None) -> Lock:
    return load_locks(repo, rev).merged()


def write_lock(repo: Repo, locks: Locks, stage: Stage) -> None:
    """Write the dvlite.lock of `stage`'s pipeline file."""
    path = lock_path(stage.file)
    repo.write(path, locks.files[path].to_bytes())


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
    try:
        ok = name in pipeline_mod.parse_file(text).stages
    except FormatError:
        pipeline_mod.parse_stage(name, body)  # the stage's own error, if it has one
        ok = False
    if not ok:  # the file's layout defeated appending; write it out again in full
        import yaml

        doc = pipeline_mod.load_doc(existing or b"")
        doc.setdefault("stages", {})
        doc["stages"] = {**(doc["stages"] or {}), name: body}
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True).encode()
    others = [f for f in pipeline_files(repo) if f != pipeline_mod.FILENAME]
    files = [pipeline_mod.parse_file(text, pipeline_mod.FILENAME, lambda p: read_at(repo, None, p),
                                     _options(repo))]
    files += [pipeline_mod.parse_file(read_at(repo, None, f) or b"", f, lambda p: read_at(repo, None, p),
                                      _options(repo)) for f in others]
    new = combine(files, [(t.rel, t.pointer_rel) for t in load_pointers(repo)])  # before writing
    repo.write(pipeline_mod.FILENAME, text)
    return new.stages[name]
