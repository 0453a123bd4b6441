"""`commit`: record the workspace as it is into the pointers (what `add` does for each tracked
path that changed) and into dvlite.lock (each stage's deps, params and outs as they are now,
after its command was run by hand or an out was edited), without running anything."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dvlite.data.add import add
from dvlite.data.status import Flag, status
from dvlite.errors import BadInputError
from dvlite.formats.lockfile import StageLock
from dvlite.formats.pointer import SUFFIX
from dvlite.fsutil import sync_barrier
from dvlite.gitignore import add_ignore
from dvlite.outputs import StageOut, load_pointers, owner_of, to_rel
from dvlite.pipelines.project import has_pipeline, load_locks, load_pipeline, lock_path, write_lock
from dvlite.pipelines.stages import ParamFiles, measure, measure_stage
from dvlite.repo import Repo


@dataclass(frozen=True)
class Committed:
    path: str  # the tracked path, or the stage's name
    kind: str  # pointer | stage
    file: str  # what was written: PATH.dvl, or the stage's dvlite.lock
    changed: bool


@dataclass
class CommitResult:
    committed: list[Committed] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path or stage, why)
    gitignores: list[str] = field(default_factory=list)


@dataclass
class _Chosen:
    pointers: list[str] = field(default_factory=list)  # data paths to record with `add`
    stages: list[str] = field(default_factory=list)
    named: bool = False  # targets were given: a stage that cannot be committed is an error


def _choose(repo: Repo, targets: list[str], pipeline) -> _Chosen:
    pointers = load_pointers(repo)
    if not targets:
        changed = [r.path for r in status(repo, []) if Flag.MODIFIED in r.flags
                   and Flag.DELETED not in r.flags and Flag.SYMLINK not in r.flags]
        stages = [n for n in pipeline.order() if not pipeline.stages[n].frozen] if pipeline else []
        by_rel = {t.rel for t in pointers}
        return _Chosen([p for p in changed if p in by_rel], stages)
    chosen = _Chosen(named=True)
    for arg in targets:
        if pipeline is not None and arg in pipeline.stages and not os.path.lexists(arg):
            chosen.stages.append(arg)
            continue
        rel = to_rel(repo, arg).removesuffix(SUFFIX)
        tracked = next((t for t in pointers if t.rel == rel), None) or owner_of(rel, pointers)
        if tracked is not None and not isinstance(tracked, StageOut):
            chosen.pointers.append(tracked.rel)
            continue
        found = pipeline.producer_of(rel) if pipeline is not None else None
        if found is None:
            raise BadInputError(f"{arg} is neither tracked by dvlite nor the out of a stage",
                                hint="`dvlite add` it first, or name a stage")
        chosen.stages.append(found[0].name)
    chosen.pointers = list(dict.fromkeys(chosen.pointers))
    chosen.stages = list(dict.fromkeys(chosen.stages))
    return chosen


def commit(repo: Repo, targets: list[str]) -> CommitResult:
    """Record the workspace state of `targets` (tracked paths, stage names, stage outs), or of
    every changed tracked path and every stage that is not frozen."""
    pipeline = load_pipeline(repo) if has_pipeline(repo) else None
    chosen = _choose(repo, targets, pipeline)
    result = CommitResult()
    if chosen.pointers:
        for r in add(repo, [repo.abs(p) for p in chosen.pointers]):
            result.committed.append(Committed(r.path, "pointer", r.pointer_path, r.changed))
            if r.gitignore:
                result.gitignores.append(r.gitignore)
    if chosen.stages:
        _commit_stages(repo, pipeline, chosen, result)
    return result


def _commit_stages(repo: Repo, pipeline, chosen: _Chosen, result: CommitResult) -> None:
    locks = load_locks(repo)
    hasher = repo.hasher()
    pfiles = ParamFiles(repo)
    for name in [n for n in pipeline.order() if n in chosen.stages]:
        stage = pipeline.stages[name]
        entry = locks.entry(stage)
        m = measure_stage(repo, hasher, stage, entry, pfiles, missing_ok=True)
        gone = [r for r in m.reasons if r.startswith("dep ") and r.endswith(" missing")]
        gone += [f"out {o.path} missing" for o in stage.outs if not os.path.lexists(repo.abs(o.path))]
        if gone:
            if chosen.named:
                raise BadInputError(f"stage {name!r} cannot be committed: {gone[0]}",
                                    hint="run its command (or `dvlite repro`) first")
            result.skipped.append((name, gone[0]))
            continue
        if entry is not None and not m.reasons:
            result.committed.append(Committed(name, "stage", lock_path(stage.file), False))
            continue
        outs = [measure(repo, hasher, o.path, store=True, cache=o.cache) for o in stage.outs]
        sync_barrier(repo.odb.objects_dir)  # the outs' objects are durable before the lock names them
        new = StageLock(stage.lock_key, stage.cmd_record(), tuple(m.deps), m.params, tuple(outs))
        locks = locks.with_entry(stage, new)
        write_lock(repo, locks, stage)
        result.gitignores += [g for g in (add_ignore(repo, o.path) for o in outs if o.cache) if g]
        result.committed.append(Committed(name, "stage", lock_path(stage.file), True))
    repo.state.save()
