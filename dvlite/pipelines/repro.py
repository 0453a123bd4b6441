"""`repro`: run the stale stages of the pipeline in order, restoring runs the run cache knows.

The library never prints: `repro` reports through an `on_event(Event)` callback the CLI gives.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from dvlite.errors import BadInputError, IntegrityError, StageFailed
from dvlite.formats.lockfile import StageLock
from dvlite.fsutil import sync_barrier
from dvlite.gitignore import add_ignore
from dvlite.pipelines import runcache
from dvlite.pipelines.checks import Finding, StageChecks
from dvlite.pipelines import spec as pipeline_mod
from dvlite.pipelines.project import Locks, load_locks, load_pipeline, write_lock
from dvlite.pipelines.dag import Pipeline
from dvlite.pipelines.spec import Stage
from dvlite.pipelines.stages import Measured, ParamFiles, measure, measure_stage
from dvlite.repo import Repo


@dataclass(frozen=True)
class Event:
    kind: str  # start | output | restored | up-to-date | frozen | would-run | skipped | done | failed
    #            | check-passed | check-failed | checks-skipped
    stage: str
    text: str = ""
    reasons: tuple[str, ...] = ()


@dataclass
class ReproResult:
    ran: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # from the run cache
    up_to_date: list[str] = field(default_factory=list)
    would_run: list[tuple[str, list[str]]] = field(default_factory=list)  # --dry
    failed: list[tuple[str, str]] = field(default_factory=list)  # (stage, why)
    hints: dict[str, str] = field(default_factory=dict)  # stage -> what to do about its failure
    skipped: list[str] = field(default_factory=list)  # after a failed upstream stage
    gitignores: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def select_stages(pipeline: Pipeline, targets: list[str], single_item: bool, downstream: bool) -> list[str]:
    order = pipeline.order()
    found = [pipeline.find(t) for t in targets]
    for t, stage in zip(targets, found):
        if stage is None:
            raise BadInputError(f"no stage named {t!r} in {pipeline_mod.FILENAME}",
                                hint="stages: " + ", ".join(order) if order else None)
    targets = [s.name for s in found if s is not None]
    if not targets:
        return order
    if single_item:
        chosen = set(targets)
    elif downstream:
        chosen = pipeline.descendants(targets)
    else:
        chosen = pipeline.ancestors(targets)
    return [n for n in order if n in chosen]


def _check_deps_exist(repo: Repo, pipeline: Pipeline, names: list[str]) -> None:
    for name in names:
        for dep in pipeline.stages[name].deps:
            if os.path.lexists(repo.abs(dep)) or pipeline.producer_of(dep) is not None:
                continue
            raise BadInputError(f"stage {name!r}: dep {dep} does not exist and no stage produces it",
                                hint="create it, or `dvlite checkout`/`dvlite pull` the data it names")


def _remove_outs(repo: Repo, stage: Stage) -> None:
    """Delete the outs a run replaces; make persistent ones private copies (never cache links)."""
    from dvlite.data.edit import unprotect

    for o in stage.outs:
        if o.persist:
            if os.path.lexists(repo.abs(o.path)):
                try:
                    unprotect(repo, [repo.abs(o.path)])
                except BadInputError:
                    pass  # not tracked yet: nothing links it to the cache
            continue
        if os.path.lexists(repo.abs(o.path)):
            repo.guard.remove_tree(o.path)  # a symlink there goes as a link


def _execute(repo: Repo, stage: Stage, on_event: Callable[[Event], None]) -> int:
    cwd = repo.abs(stage.wdir) if stage.wdir else repo.root
    if stage.wdir:
        repo.guard.make_dirs(stage.wdir)
    for cmd in stage.cmds:
        on_event(Event("start", stage.name, cmd))
        proc = subprocess.Popen(cmd, shell=True, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        with proc.stdout:
            for raw in iter(proc.stdout.readline, b""):
                on_event(Event("output", stage.name, raw.decode("utf-8", "replace").rstrip("\r\n")))
        code = proc.wait()
        if code != 0:
            return code
    return 0


def repro(repo: Repo, targets: list[str], *, force: bool = False, single_item: bool = False,
          downstream: bool = False, dry: bool = False, keep_going: bool = False,
          use_run_cache: bool = True, checks: bool = True,
          on_event: Callable[[Event], None] = lambda e: None) -> ReproResult:
    pipeline = load_pipeline(repo)
    names = select_stages(pipeline, targets, single_item, downstream)
    _check_deps_exist(repo, pipeline, names)
    stage_checks = StageChecks.load(repo, pipeline) if checks and not dry else None
    if not checks and not dry:
        on_event(Event("checks-skipped", "", "data contracts and metric gates not run (--no-checks)"))
    locks = load_locks(repo)
    hasher = repo.hasher()
    pfiles = ParamFiles(repo)
    result = ReproResult()
    broken: set[str] = set()  # failed or skipped: what depends on them does not run
    pending: set[str] = set()  # --dry: would run
    for name in names:
        stage = pipeline.stages[name]
        ups = pipeline.upstream_of(stage)
        bad = [u for u in ups if u in broken]
        if bad:
            broken.add(name)
            result.skipped.append(name)
            on_event(Event("skipped", name, f"upstream stage {bad[0]!r} failed"))
            continue
        if stage.frozen:
            on_event(Event("frozen", name))
            result.up_to_date.append(name)
            continue
        m = measure_stage(repo, hasher, stage, locks.entry(stage), pfiles, missing_ok=dry)
        reasons = list(m.reasons)
        if dry and not reasons:
            reasons += [f"upstream stage {u} would run" for u in ups if u in pending]
        if force and not reasons:
            reasons = ["forced"]
        if not reasons:
            result.up_to_date.append(name)
            on_event(Event("up-to-date", name))
            continue
        if dry:
            pending.add(name)
            result.would_run.append((name, reasons))
            on_event(Event("would-run", name, reasons=tuple(reasons)))
            continue
        try:
            _require(stage, stage_checks.before(stage, locks.entry(stage)) if stage_checks else [],
                     on_event, "not run")
            locks = _run_stage(repo, hasher, stage, m, locks, force, use_run_cache, result, on_event,
                               stage_checks)
        except StageFailed as exc:
            broken.add(name)
            result.failed.append((name, exc.message))
            if exc.hint:
                result.hints[name] = exc.hint
            on_event(Event("failed", name, exc.message))
            if not keep_going:
                break
    repo.state.save()
    return result


def _require(stage: Stage, findings: list[Finding], on_event, outcome: str) -> None:
    """Report each check; the first failure fails the stage."""
    for f in findings:
        on_event(Event("check-passed" if f.passed else "check-failed", stage.name, f.text))
    failed = [f for f in findings if not f.passed]
    if failed:
        raise StageFailed(f"stage {stage.name!r} {outcome}: {failed[0].text}",
                          hint="its lock entry was not updated; fix the data or the gate, or run "
                               "with --no-checks")


def _run_stage(repo, hasher, stage: Stage, m: Measured, locks: Locks, force: bool, use_run_cache: bool,
               result: ReproResult, on_event, stage_checks: StageChecks | None) -> Locks:
    last = locks.entry(stage)
    key = runcache.run_key(stage, m.deps, m.params)
    record = None
    if use_run_cache and not force and not stage.always_changed:
        record = runcache.load_record(repo, key)
        if record is not None and not runcache.restorable(repo, record):
            record = None
    if record is not None:
        entry = StageLock(stage.lock_key, stage.cmd_record(), tuple(m.deps), m.params, record.outs)
        _remove_outs(repo, stage)
        before, locks = locks, locks.with_entry(stage, entry)
        write_lock(repo, locks, stage)
        _restore_outs(repo, entry)
        if stage_checks is not None:  # the checks may have changed since the run was recorded
            try:
                _require(stage, stage_checks.after(stage, last), on_event, "failed its checks")
            except StageFailed:
                write_lock(repo, before, stage)
                raise
        result.gitignores += _ignore_outs(repo, entry)
        result.restored.append(stage.name)
        on_event(Event("restored", stage.name))
        return locks
    _remove_outs(repo, stage)
    code = _execute(repo, stage, on_event)
    if code != 0:
        raise StageFailed(f"stage {stage.name!r} failed: its command exited with code {code}",
                          hint="its lock entry was not updated; fix it and run `dvlite repro` again")
    outs = []
    for o in stage.outs:
        cur = measure(repo, hasher, o.path, store=True, cache=o.cache)
        if cur is None:
            raise StageFailed(f"stage {stage.name!r} did not produce its declared out {o.path}",
                              hint="its lock entry was not updated")
        outs.append(cur)
    if stage_checks is not None:
        _require(stage, stage_checks.after(stage, last), on_event, "failed its checks")
    sync_barrier(repo.odb.objects_dir)  # the outs' objects are durable before the lock names them
    entry = StageLock(stage.lock_key, stage.cmd_record(), tuple(m.deps), m.params, tuple(outs))
    locks = locks.with_entry(stage, entry)
    write_lock(repo, locks, stage)
    if use_run_cache and not stage.always_changed:
        runcache.save_record(repo, key, entry)
    result.gitignores += _ignore_outs(repo, entry)
    result.ran.append(stage.name)
    on_event(Event("done", stage.name))
    return locks


def _ignore_outs(repo: Repo, entry: StageLock) -> list[str]:
    return [g for g in (add_ignore(repo, o.path) for o in entry.outs if o.cache) if g]


def _restore_outs(repo: Repo, entry: StageLock) -> None:
    from dvlite.data import checkout as checkout_mod

    cached = [o.path for o in entry.outs if o.cache]
    if cached:
        done = checkout_mod.checkout(repo, [repo.abs(p) for p in cached], force=True)
        if not done.ok:
            bad = (done.missing + done.corrupt)[0]
            raise IntegrityError(f"cannot restore {bad[0]} from the run cache ({bad[1]})")
    for o in entry.outs:
        if not o.cache:
            runcache.write_uncached(repo, o)
