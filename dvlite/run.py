"""Pipelines in the workspace: repro, stage status, the run cache, lineage, params and metrics.

The library never prints: `repro` reports through an `on_event(Event)` callback the CLI gives.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from dvlite import lockfile, yamldoc
from dvlite import params as params_mod
from dvlite import pipeline as pipeline_mod
from dvlite.digest import ALGORITHM, Digest, hash_bytes
from dvlite.errors import BadInputError, DvliteError, FormatError, IntegrityError
from dvlite.fsutil import atomic_write, read_limited, sync_barrier
from dvlite.lockfile import Entry, Lock, StageLock
from dvlite.manifest import Entry as ManifestEntry
from dvlite.manifest import Manifest
from dvlite.pipeline import Pipeline, Stage
from dvlite.repo import Repo
from dvlite.tracked import Tracked, add_ignore, load_pointers, outputs_at
from dvlite.workspace import FileStat, Hasher, scan_tree, stat_single

RUNS_DIR = "runs"


# --- files ----------------------------------------------------------------------------------

def _read(path: str) -> bytes | None:
    try:
        return read_limited(path, yamldoc.MAX_BYTES, os.path.basename(path))
    except FileNotFoundError:
        return None


def has_pipeline(repo: Repo) -> bool:
    return os.path.isfile(repo.abs(pipeline_mod.FILENAME))


def load_pipeline(repo: Repo) -> Pipeline:
    data = _read(repo.abs(pipeline_mod.FILENAME))
    if data is None:
        raise BadInputError(f"no {pipeline_mod.FILENAME} in {repo.root}",
                            hint="add a stage with `dvlite stage add -n NAME ... CMD`")
    pointers = [(t.rel, t.pointer_rel) for t in load_pointers(repo)]
    return pipeline_mod.parse(data, pointers)


def load_lock(repo: Repo) -> Lock:
    data = _read(repo.abs(lockfile.FILENAME))
    return lockfile.EMPTY if data is None else lockfile.from_bytes(data)


def write_lock(repo: Repo, lock: Lock) -> None:
    repo.write(lockfile.FILENAME, lock.to_bytes())


def read_at(repo: Repo, rev: str | None, rel: str) -> bytes | None:
    """A file's bytes at git revision `rev`, or in the workspace when rev is None."""
    if rev is None:
        return _read(repo.abs(rel))
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


# --- measuring paths --------------------------------------------------------------------------

def hasher_for(repo: Repo) -> Hasher:
    return Hasher(repo.state, repo.odb, repo.root)


def measure(repo: Repo, hasher: Hasher, rel: str, store: bool, cache: bool = True) -> Entry | None:
    """What is at `rel` now (None if nothing); with `store`, its bytes go into the object store."""
    absolute = repo.abs(rel)
    if not os.path.lexists(absolute):
        return None
    if os.path.isdir(absolute):
        files = scan_tree(absolute, repo.odb.root)
        digests = hasher.digests(files, store=store)
        manifest = Manifest.build(
            ManifestEntry(f.rel, digests[f.rel], f.st.st_size, f.executable) for f in files)
        if store:
            sync_barrier(repo.odb.root)  # file objects are durable before the manifest naming them
            repo.odb.put_bytes(manifest.to_bytes(), durable=True)
        return Entry(rel, "dir", manifest.digest(), manifest.size, len(manifest.entries), cache)
    st = stat_single(absolute, repo.odb.root)
    hexdigest = hasher.digests([FileStat(rel, absolute, st)], store=store)[rel]
    return Entry(rel, "file", Digest(ALGORITHM, hexdigest), st.st_size, 1, cache)


# --- params ---------------------------------------------------------------------------------

class _ParamFiles:
    """Params files parsed once per command."""

    def __init__(self, repo: Repo, rev: str | None = None):
        self.repo, self.rev = repo, rev
        self.docs: dict[str, object] = {}

    def doc(self, rel: str):
        if rel not in self.docs:
            data = read_at(self.repo, self.rev, rel)
            self.docs[rel] = None if data is None else params_mod.parse(
                data, rel + (f" at {self.rev}" if self.rev else ""))
        return self.docs[rel]

    def values(self, stage: Stage) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for ref in stage.params:
            doc = self.doc(ref.file)
            if doc is None:
                raise BadInputError(f"stage {stage.name!r}: params file {ref.file} does not exist")
            if ref.key == "":
                if not isinstance(doc, dict):
                    raise BadInputError(f"stage {stage.name!r}: {ref.file} is not a mapping of params")
                out.setdefault(ref.file, {}).update(params_mod.lookup(doc, ""))
                continue
            try:
                out.setdefault(ref.file, {})[ref.key] = params_mod.lookup(doc, ref.key)
            except KeyError:
                raise BadInputError(f"stage {stage.name!r}: param {ref.key!r} is not in {ref.file}") from None
        return out


# --- staleness --------------------------------------------------------------------------------

@dataclass(frozen=True)
class StageStatus:
    name: str
    state: str  # up to date | stale | frozen
    reasons: tuple[str, ...]


@dataclass
class _Measured:
    deps: list[Entry]
    params: dict[str, dict]
    reasons: list[str]


def _show(v) -> str:
    return params_mod.show(v)


def _param_reasons(old: dict, new: dict) -> list[str]:
    reasons = []
    for file in sorted(set(old) | set(new)):
        a, b = old.get(file, {}), new.get(file, {})
        for key in sorted(set(a) | set(b)):
            if key not in a:
                reasons.append(f"new param {key}")
            elif key not in b:
                reasons.append(f"param {key} removed")
            elif a[key] != b[key]:
                fa = params_mod.flatten(a[key], key) if isinstance(a[key], dict) else {key: a[key]}
                fb = params_mod.flatten(b[key], key) if isinstance(b[key], dict) else {key: b[key]}
                for k in sorted(set(fa) | set(fb)):
                    va, vb = fa.get(k, params_mod.MISSING), fb.get(k, params_mod.MISSING)
                    if va != vb:
                        reasons.append(f"param {k}: {_show(va)} -> {_show(vb)}")
    return reasons


def _measure_stage(repo: Repo, hasher: Hasher, stage: Stage, entry: StageLock | None,
                   pfiles: _ParamFiles, missing_ok: bool) -> _Measured:
    deps = []
    reasons: list[str] = []
    for dep in stage.deps:
        cur = measure(repo, hasher, dep, store=False, cache=False)
        if cur is None:
            if not missing_ok:
                raise BadInputError(f"stage {stage.name!r}: dep {dep} does not exist")
            reasons.append(f"dep {dep} missing")
            continue
        deps.append(cur)
    params = pfiles.values(stage)
    if entry is None:
        return _Measured(deps, params, ["never run"])
    if stage.always_changed:
        reasons.append("always changed")
    if entry.cmd != stage.cmd_record():
        reasons.append("cmd changed")
    for cur in deps:
        old = entry.dep(cur.path)
        if old is None:
            reasons.append(f"new dep {cur.path}")
        elif old.digest != cur.digest:
            reasons.append(f"dep {cur.path} changed")
    reasons += [f"dep {d.path} removed" for d in entry.deps if d.path not in stage.deps]
    reasons += _param_reasons(entry.params, params)
    declared = stage.out_paths()
    for o in stage.outs:
        old = entry.out(o.path)
        if old is None:
            reasons.append(f"new out {o.path}")
            continue
        cur = measure(repo, hasher, o.path, store=False)
        if cur is None:
            reasons.append(f"out {o.path} missing")
        elif cur.digest != old.digest:
            reasons.append(f"out {o.path} changed")
    reasons += [f"out {o.path} removed" for o in entry.outs if o.path not in declared]
    return _Measured(deps, params, reasons)


def stage_status(repo: Repo) -> list[StageStatus]:
    """Every stage of dvlite.yaml with whether it is stale and why (no dvlite.yaml: [])."""
    if not has_pipeline(repo):
        return []
    pipeline = load_pipeline(repo)
    lock = load_lock(repo)
    hasher = hasher_for(repo)
    pfiles = _ParamFiles(repo)
    out = []
    for name in pipeline.order():
        stage = pipeline.stages[name]
        m = _measure_stage(repo, hasher, stage, lock.stages.get(name), pfiles, missing_ok=True)
        if stage.frozen:
            out.append(StageStatus(name, "frozen", tuple(m.reasons)))
        else:
            out.append(StageStatus(name, "stale" if m.reasons else "up to date", tuple(m.reasons)))
    repo.state.save()
    return out


# --- the run cache ------------------------------------------------------------------------------

def runs_dir(repo: Repo) -> str:
    return os.path.join(repo.cache_dir, RUNS_DIR)


def run_key(stage: Stage, deps: list[Entry], params: dict) -> str:
    doc = {
        "cmd": stage.cmd_record(),
        "wdir": stage.wdir,
        "deps": sorted([d.path, d.digest.hex] for d in deps),
        "params": params,
        "outs": sorted([o.path, o.cache] for o in stage.outs),
    }
    return hash_bytes(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hex


def _record_bytes(key: str, entry: StageLock) -> bytes:
    return lockfile.dump({"schema": lockfile.SCHEMA, "key": key, "run": entry.to_doc()})


def parse_record(data: bytes, origin: str) -> tuple[str, StageLock]:
    doc = yamldoc.load(data, origin)
    if not isinstance(doc, dict) or doc.get("schema") != lockfile.SCHEMA or "key" not in doc:
        raise FormatError(f"{origin}: not a dvlite run record of schema {lockfile.SCHEMA}")
    return str(doc["key"]), lockfile.parse_stage_doc("run", doc.get("run"), origin)


def save_record(repo: Repo, key: str, entry: StageLock) -> None:
    os.makedirs(runs_dir(repo), exist_ok=True)
    atomic_write(os.path.join(runs_dir(repo), key), _record_bytes(key, entry))


def load_record(repo: Repo, key: str) -> StageLock | None:
    path = os.path.join(runs_dir(repo), key)
    data = _read(path)
    if data is None:
        return None
    try:
        found, entry = parse_record(data, path)
    except FormatError:
        return None  # a damaged record only costs a run
    return entry if found == key else None


def _objects_of(repo: Repo, outs) -> tuple[dict[str, int], list[str]]:
    """Objects the outs need (digest -> size) and digests of manifests not in the cache."""
    need: dict[str, int] = {}
    unreadable = []
    for o in outs:
        if o.kind == "file":
            need[o.digest.hex] = o.size
            continue
        hexd = o.digest.hex
        need[hexd] = repo.odb.size(hexd) if repo.odb.contains(hexd) else 0
        try:
            manifest = Manifest.from_bytes(repo.odb.read_verified(hexd), o.path)
        except IntegrityError:
            unreadable.append(hexd)
            continue
        for e in manifest.entries:
            need[e.digest] = e.size
    return need, unreadable


def _restorable(repo: Repo, record: StageLock) -> bool:
    need, unreadable = _objects_of(repo, record.outs)
    return not unreadable and not repo.odb.missing(need)


def _write_uncached(repo: Repo, o: Entry) -> None:
    """Restore an out the lock does not track (cache: false) from the run cache's copy."""
    if o.kind == "file":
        repo.write(o.path, repo.odb.read_verified(o.digest.hex), durable=False, replace_link=True)
        return
    manifest = Manifest.from_bytes(repo.odb.read_verified(o.digest.hex), o.path)
    for e in manifest.entries:
        repo.write(f"{o.path}/{e.path}", repo.odb.read_verified(e.digest), durable=False,
                   mode=0o755 if e.executable else 0o644, replace_link=True)


def _records(repo: Repo):
    """(path, record) of every readable run record in the cache, by name."""
    top = runs_dir(repo)
    for name in sorted(os.listdir(top)) if os.path.isdir(top) else []:
        path = os.path.join(top, name)
        try:
            yield path, parse_record(_read(path) or b"", path)[1]
        except FormatError:
            continue


def run_cache_objects(repo: Repo) -> tuple[list[str], dict[str, int]]:
    """(run record files, digest -> size of every out object they need that the cache has or
    needs). Manifests of directory outs are listed with size 0 when not in the cache; fetch
    them first, then call again to learn the files they list."""
    records = []
    need: dict[str, int] = {}
    for path, entry in _records(repo):
        records.append(path)
        need.update(_objects_of(repo, entry.outs)[0])
    return records, need


def run_cache_outputs(repo: Repo) -> list[Tracked]:
    """The outs every local run record restores, as outputs push and fetch understand."""
    return [Tracked(f"{o.path} (run cache {os.path.basename(path)[:10]})", o.pointer())
            for path, entry in _records(repo) for o in entry.outs]


def push_run_cache(repo: Repo, remote) -> int:
    """Write every local run record to `<remote>/runs/<key>` (a `dvlite.remote.Remote`)."""
    records, _ = run_cache_objects(repo)
    for path in records:
        remote.write_bytes(f"{remote.root}/{RUNS_DIR}/{os.path.basename(path)}", _read(path) or b"")
    return len(records)


def pull_run_cache(repo: Repo, remote) -> int:
    """Copy run records from the remote that this cache lacks; returns how many were added."""
    base = f"{remote.root}/{RUNS_DIR}"
    try:
        paths = remote.call(lambda: remote.fs.find(base, withdirs=False))
    except FileNotFoundError:
        return 0
    added = 0
    os.makedirs(runs_dir(repo), exist_ok=True)
    for path in paths:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if len(name) != 32 or os.path.exists(os.path.join(runs_dir(repo), name)):
            continue
        data = remote.call(lambda p=path: remote.fs.cat_file(p))
        try:
            key, _entry = parse_record(data, path)
        except FormatError:
            continue
        if key != name:
            continue
        atomic_write(os.path.join(runs_dir(repo), name), data)
        added += 1
    return added


# --- repro ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    kind: str  # start | output | restored | up-to-date | frozen | would-run | skipped | done | failed
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
    skipped: list[str] = field(default_factory=list)  # after a failed upstream stage
    gitignores: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class StageFailed(DvliteError):
    exit_code = 1


def select_stages(pipeline: Pipeline, targets: list[str], single_item: bool, downstream: bool) -> list[str]:
    order = pipeline.order()
    for t in targets:
        if t not in pipeline.stages:
            raise BadInputError(f"no stage named {t!r} in {pipeline_mod.FILENAME}",
                                hint="stages: " + ", ".join(order) if order else None)
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
    from dvlite import track

    for o in stage.outs:
        if o.persist:
            if os.path.lexists(repo.abs(o.path)):
                try:
                    track.unprotect(repo, [repo.abs(o.path)])
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
          use_run_cache: bool = True, on_event: Callable[[Event], None] = lambda e: None) -> ReproResult:
    pipeline = load_pipeline(repo)
    names = select_stages(pipeline, targets, single_item, downstream)
    _check_deps_exist(repo, pipeline, names)
    lock = load_lock(repo)
    hasher = hasher_for(repo)
    pfiles = _ParamFiles(repo)
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
        m = _measure_stage(repo, hasher, stage, lock.stages.get(name), pfiles, missing_ok=dry)
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
            lock = _run_stage(repo, hasher, stage, m, lock, force, use_run_cache, result, on_event)
        except StageFailed as exc:
            broken.add(name)
            result.failed.append((name, exc.message))
            on_event(Event("failed", name, exc.message))
            if not keep_going:
                break
    repo.state.save()
    return result


def _run_stage(repo, hasher, stage: Stage, m: _Measured, lock: Lock, force: bool, use_run_cache: bool,
               result: ReproResult, on_event) -> Lock:
    key = run_key(stage, m.deps, m.params)
    record = None
    if use_run_cache and not force and not stage.always_changed:
        record = load_record(repo, key)
        if record is not None and not _restorable(repo, record):
            record = None
    if record is not None:
        entry = StageLock(stage.name, stage.cmd_record(), tuple(m.deps), m.params, record.outs)
        _remove_outs(repo, stage)
        lock = lock.with_stage(entry)
        write_lock(repo, lock)
        _restore_outs(repo, entry)
        result.gitignores += _ignore_outs(repo, entry)
        result.restored.append(stage.name)
        on_event(Event("restored", stage.name))
        return lock
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
    entry = StageLock(stage.name, stage.cmd_record(), tuple(m.deps), m.params, tuple(outs))
    lock = lock.with_stage(entry)
    write_lock(repo, lock)
    if use_run_cache and not stage.always_changed:
        save_record(repo, key, entry)
    result.gitignores += _ignore_outs(repo, entry)
    result.ran.append(stage.name)
    on_event(Event("done", stage.name))
    return lock


def _ignore_outs(repo: Repo, entry: StageLock) -> list[str]:
    return [g for g in (add_ignore(repo, o.path) for o in entry.outs if o.cache) if g]


def _restore_outs(repo: Repo, entry: StageLock) -> None:
    from dvlite import checkout as checkout_mod

    cached = [o.path for o in entry.outs if o.cache]
    if cached:
        done = checkout_mod.checkout(repo, [repo.abs(p) for p in cached], force=True)
        if not done.ok:
            bad = (done.missing + done.corrupt)[0]
            raise IntegrityError(f"cannot restore {bad[0]} from the run cache ({bad[1]})")
    for o in entry.outs:
        if not o.cache:
            _write_uncached(repo, o)


# --- stage add ----------------------------------------------------------------------------

def add_stage(repo: Repo, name: str, cmd: str, deps: list[str], outs: list[str], params: list[str],
              metrics: list[str], wdir: str | None) -> Stage:
    path = repo.abs(pipeline_mod.FILENAME)
    existing = _read(path)
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


# --- lineage ------------------------------------------------------------------------------

def _entry_doc(e: Entry) -> dict:
    return {"kind": e.kind, "digest": e.digest.hex, "size": e.size, "files": e.files}


def lineage(repo: Repo, path: str, rev: str | None) -> dict:
    """Where `path` came from at `rev` (or in the workspace): a tree of stages down to raw data."""
    lock = lock_at(repo, rev)
    if rev is None:
        pointers = load_pointers(repo)
    else:
        pointers = [t for t in outputs_at(repo.require_scm(), rev, rev) if t.pointer_rel != lockfile.FILENAME]
    hasher = hasher_for(repo)
    label = rev or "workspace"
    if lock.producer_of(path) is None and not any(
            path == t.rel or path.startswith(t.rel + "/") for t in pointers):
        raise BadInputError(f"{path} is not produced by any stage in {lockfile.FILENAME} "
                            f"nor tracked by a pointer at {label}")

    def workspace(rel: str, recorded: Digest) -> str:
        cur = measure(repo, hasher, rel, store=False)
        if cur is None:
            return "missing"
        return "matches" if cur.digest == recorded else "differs"

    def node(rel: str, recorded: Entry | None, seen: frozenset) -> dict:
        produced = lock.producer_of(rel)
        if produced is not None and rel not in seen:
            stage, out = produced
            doc = {"path": out.path, "source": "stage", **_entry_doc(out),
                   "workspace": workspace(out.path, out.digest)}
            if out.path != rel:
                doc["requested"] = rel
            doc["stage"] = {
                "name": stage.name,
                "cmd": stage.cmd,
                "params": stage.params,
                "deps": [node(d.path, d, seen | {rel}) for d in sorted(stage.deps, key=lambda d: d.path)],
            }
            return doc
        for t in pointers:
            if rel == t.rel or rel.startswith(t.rel + "/"):
                p = t.pointer
                doc = {"path": t.rel, "source": "tracked", "pointer": t.pointer_rel, "kind": p.kind,
                       "digest": p.digest.hex, "size": p.size, "files": p.files,
                       "workspace": workspace(t.rel, p.digest)}
                if recorded is not None and recorded.path == t.rel and recorded.digest != p.digest:
                    doc["recorded_digest"] = recorded.digest.hex  # the stage ran on other data
                return doc
        if recorded is None:
            raise BadInputError(f"{rel} has no record at {label}")
        return {"path": rel, "source": "file", **_entry_doc(recorded),
                "workspace": workspace(rel, recorded.digest)}

    result = {"rev": label, "target": path, "lineage": node(path, None, frozenset())}
    repo.state.save()
    return result


# --- params and metrics across revisions --------------------------------------------------------

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
