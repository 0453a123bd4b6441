"""`dvc.yaml` to `dvlite.yaml` (the same text, validated) and `dvc.lock` to `dvlite.lock`.

The pipeline file is copied byte for byte: dvlite reads DVC's stage syntax, templating
included. It is checked first: expanded with `dvlite.pipelines.templating` and every stage parsed by
`dvlite.pipelines.spec`, so a construct dvlite cannot run stops the migration with its name.

The lock gets each dep and out as dvlite measures it (XXH3-128 digests, repo-relative paths),
found by DVC's md5: so a stage DVC saw as up to date is up to date for dvlite too. An entry
whose bytes are nowhere to be found is left out, and dvlite sees that stage as changed.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from dvlite import yamldoc
from dvlite.dvc import dvclock
from dvlite.dvc.objects import Importer, Missing
from dvlite.dvc.paths import check_path
from dvlite.errors import FormatError
from dvlite.formats import lockfile
from dvlite.pipelines import dag
from dvlite.pipelines import spec as pipeline
from dvlite.pipelines import templating

DVC_YAML = "dvc.yaml"
UNSUPPORTED_TOP = {"plots": "top-level plots", "metrics": "top-level metrics",
                   "params": "top-level params", "artifacts": "artifacts", "datasets": "datasets"}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")  # s3://x reads as s3:/x once normalised


@dataclass(frozen=True)
class PipelineFile:
    origin: str  # the dvc.yaml, repo-relative
    base_dir: str  # its directory, "" at the root
    data: bytes
    stages: dict  # expanded name -> dvlite Stage (repo-relative paths)
    templated: bool
    lock_origin: str | None
    lock: dict  # name -> dvclock.LockStage

    @property
    def target(self) -> str:
        return posixpath.join(self.base_dir, pipeline.FILENAME)

    @property
    def lock_target(self) -> str:
        return posixpath.join(self.base_dir, lockfile.FILENAME)


def _uses_templating(doc: dict) -> bool:
    stages = doc.get("stages") or {}
    return "vars" in doc or any(
        isinstance(b, dict) and ({"foreach", "matrix", "vars"} & set(b)) for b in stages.values()
    ) or templating._has_interpolation(stages)


def _refuse_external(origin: str, stage: pipeline.Stage) -> None:
    for path in (*stage.deps, *(o.path for o in stage.outs)):
        if _URL.match(path):
            raise FormatError(f"{origin}: stage '{stage.lock_key}': external path {path} is not "
                              "supported by dvlite", hint="download it in a stage command instead")


def load(origin: str, data: bytes, lock_data: bytes | None, read_file: Callable,
         options: dict) -> PipelineFile:
    """Parse, expand and validate one dvc.yaml (and its dvc.lock), as dvlite will read it."""
    doc = yamldoc.load(data, origin)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise FormatError(f"{origin}: expected a mapping with a 'stages' key")
    for key, what in UNSUPPORTED_TOP.items():
        if doc.get(key):
            raise FormatError(f"{origin}: {what} are not supported by dvlite",
                              hint=f"remove the top-level '{key}' section from {origin}, then migrate")
    base_dir = posixpath.dirname(origin)
    parsed = pipeline.parse_file(data, posixpath.join(base_dir, pipeline.FILENAME), read_file,
                                 options, origin=origin)
    for stage in parsed.stages.values():
        _refuse_external(origin, stage)
    dag.validate(dag.Pipeline(dict(parsed.stages)))
    stages = {s.lock_key: s for s in parsed.stages.values()}
    lock_origin = posixpath.join(base_dir, dvclock.FILENAME) if lock_data is not None else None
    lock = dvclock.parse(lock_data, lock_origin) if lock_data is not None else {}
    return PipelineFile(origin, base_dir, data, stages, _uses_templating(doc), lock_origin, lock)


def _entry(importer: Importer, item: dvclock.LockItem, rel: str, cache: bool, origin: str,
           notes: list[str], what: str) -> lockfile.Entry | None:
    if item.md5 is None:
        notes.append(f"{origin}: {what} {rel} has no recorded hash; dvlite will see the stage as changed")
        return None
    try:
        m = importer.measure(item.md5, item.is_dir, item.hash_name, rel, cache, origin)
    except Missing as exc:
        m, missing = None, str(exc)
    else:
        missing = f"{rel} (md5 {item.md5})"
    if m is None:
        notes.append(f"{origin}: {what} {missing} is in neither the DVC cache, the workspace "
                     "nor the DVC remote; dvlite will see the stage as changed")
        return None
    return lockfile.Entry(rel, m.kind, m.digest, m.size, m.files, cache)


def _stage_lock(pf: PipelineFile, importer: Importer, locked: dvclock.LockStage,
                notes: list[str]) -> lockfile.StageLock:
    stage = pf.stages[locked.name]
    origin = f"{pf.lock_origin}: stage '{locked.name}'"
    deps = []
    for item in locked.deps:
        rel = check_path(item.path, origin, "deps", stage.wdir)
        entry = _entry(importer, item, rel, False, origin, notes, "dep")
        deps += [entry] if entry else []
    outs = []
    caching = {o.path: o.cache for o in stage.outs}
    for item in locked.outs:
        rel = check_path(item.path, origin, "outs", stage.wdir)
        entry = _entry(importer, item, rel, caching.get(rel, True), origin, notes, "out")
        outs += [entry] if entry else []
    params = {check_path(file, origin, "params", stage.wdir): dict(values)
              for file, values in locked.params.items()}
    cmd = locked.cmd
    if isinstance(cmd, list) and len(cmd) == 1:
        cmd = cmd[0]  # dvlite records one command as a string, as it reads it
    return lockfile.StageLock(locked.name, cmd, tuple(deps), params, tuple(outs))


def convert_lock(pf: PipelineFile, importer: Importer, notes: list[str]) -> bytes:
    """The dvlite.lock for this pipeline; stages no longer in dvc.yaml are left out."""
    stages = {}
    for name, locked in pf.lock.items():
        if name not in pf.stages:
            notes.append(f"{pf.lock_origin}: stage '{name}' is not in {pf.origin}; left out")
            continue
        stages[name] = _stage_lock(pf, importer, locked, notes)
    return lockfile.Lock(stages).to_bytes()


def known_size(pf: PipelineFile) -> int:
    """Bytes the lock's records say there are (for progress)."""
    return sum(i.size or 0 for s in pf.lock.values() for i in (*s.deps, *s.outs))
