"""Stages measured against the lock: what each depends on now, whether it is stale and why."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dvlite.digest import ALGORITHM, Digest
from dvlite.errors import BadInputError
from dvlite.formats import params as params_mod
from dvlite.formats.lockfile import Entry, StageLock
from dvlite.formats.manifest import Entry as ManifestEntry
from dvlite.formats.manifest import Manifest
from dvlite.fsutil import sync_barrier
from dvlite.pipelines.project import has_pipeline, load_locks, load_pipeline, read_at
from dvlite.pipelines.spec import Stage
from dvlite.repo import Repo
from dvlite.workspace.hasher import Hasher
from dvlite.workspace.scan import FileStat, scan_tree, stat_single


def measure(repo: Repo, hasher: Hasher, rel: str, store: bool, cache: bool = True) -> Entry | None:
    """What is at `rel` now (None if nothing); with `store`, its bytes go into the object store."""
    absolute = repo.abs(rel)
    if not os.path.lexists(absolute):
        return None
    if os.path.isdir(absolute):
        files = scan_tree(absolute, repo.odb.objects_dir, ignores=repo.ignores)
        digests = hasher.digests(files, store=store)
        manifest = Manifest.build(
            ManifestEntry(f.rel, digests[f.rel], f.st.st_size, f.executable) for f in files)
        if store:
            sync_barrier(repo.odb.objects_dir)  # file objects are durable before the manifest naming them
            repo.odb.put_bytes(manifest.to_bytes(), durable=True)
        return Entry(rel, "dir", manifest.digest(), manifest.size, len(manifest.entries), cache)
    st = stat_single(absolute, repo.odb.objects_dir)
    hexdigest = hasher.digests([FileStat(rel, absolute, st)], store=store)[rel]
    return Entry(rel, "file", Digest(ALGORITHM, hexdigest), st.st_size, 1, cache)


class ParamFiles:
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


@dataclass(frozen=True)
class StageStatus:
    name: str
    state: str  # up to date | stale | frozen
    reasons: tuple[str, ...]


@dataclass
class Measured:
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


def measure_stage(repo: Repo, hasher: Hasher, stage: Stage, entry: StageLock | None,
                   pfiles: ParamFiles, missing_ok: bool) -> Measured:
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
        return Measured(deps, params, ["never run"])
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
    return Measured(deps, params, reasons)


def stage_status(repo: Repo) -> list[StageStatus]:
    """Every stage of dvlite.yaml with whether it is stale and why (no dvlite.yaml: [])."""
    if not has_pipeline(repo):
        return []
    pipeline = load_pipeline(repo)
    locks = load_locks(repo)
    hasher = repo.hasher()
    pfiles = ParamFiles(repo)
    out = []
    for name in pipeline.order():
        stage = pipeline.stages[name]
        m = measure_stage(repo, hasher, stage, locks.entry(stage), pfiles, missing_ok=True)
        if stage.frozen:
            out.append(StageStatus(name, "frozen", tuple(m.reasons)))
        else:
            out.append(StageStatus(name, "stale" if m.reasons else "up to date", tuple(m.reasons)))
    repo.state.save()
    return out
