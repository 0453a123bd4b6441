"""`lineage`: where an artifact came from at a revision: its stage, command, inputs with
digests, params, and upstream, down to raw data."""

from __future__ import annotations

from dvlite.digest import Digest
from dvlite.errors import BadInputError
from dvlite.formats import lockfile
from dvlite.formats.lockfile import Entry
from dvlite.outputs import StageOut, load_pointers, outputs_at
from dvlite.pipelines.project import lock_at
from dvlite.pipelines.stages import measure
from dvlite.repo import Repo


def _entry_doc(e: Entry) -> dict:
    return {"kind": e.kind, "digest": e.digest.hex, "size": e.size, "files": e.files}


def lineage(repo: Repo, path: str, rev: str | None) -> dict:
    """Where `path` came from at `rev` (or in the workspace): a tree of stages down to raw data."""
    lock = lock_at(repo, rev)
    if rev is None:
        pointers = load_pointers(repo)
    else:
        pointers = [t for t in outputs_at(repo.require_scm(), rev, rev) if not isinstance(t, StageOut)]
    hasher = repo.hasher()
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
