"""Three-way merges of `.dvl` pointers (over the object store given) and `dvlite.lock`.

git calls the driver with the ancestor's, our and their version of one file (the
ancestor is empty when both branches added it). A directory pointer changed on both
sides is merged file by file against the ancestor's manifest; the merged manifest goes
into the cache and the pointer names it. What cannot be merged keeps our version and is
reported as a conflict, as git does for binary files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dvlite import yamldoc
from dvlite.errors import FormatError, IntegrityError
from dvlite.formats import lockfile
from dvlite.formats.manifest import Entry, Manifest
from dvlite.formats.pointer import SUFFIX, Pointer
from dvlite.storage.cache import Cache

LOCK_NAME = "dvlite.lock"


@dataclass
class MergeResult:
    path: str  # as git names it (%P)
    conflicts: list[str] = field(default_factory=list)  # data paths, or files inside a directory
    stale_stages: list[str] = field(default_factory=list)  # dvlite.lock: stages both sides changed
    merged_files: int = 0  # directory merges: files in the merged manifest
    reason: str | None = None  # why nothing could be merged (then `conflicts` names the output)

    @property
    def ok(self) -> bool:
        return not self.conflicts and self.reason is None


def _pick(base, ours, theirs):
    """The three-way rule for one path or key: (value to keep, whether both sides changed it
    differently). None means absent; on a clash ours is kept."""
    if ours == theirs or base == theirs:
        return ours, False
    if base == ours:
        return theirs, False
    return ours, True


def merge_entries(base: dict[str, Entry], ours: dict[str, Entry],
                  theirs: dict[str, Entry]) -> tuple[list[Entry], list[str]]:
    """Merge path -> entry maps: one-sided or identical changes combine; others keep ours, listed."""
    merged: dict[str, Entry] = {}
    conflicts: set[str] = set()
    for path in sorted(set(base) | set(ours) | set(theirs)):
        pick, clash = _pick(base.get(path), ours.get(path), theirs.get(path))
        if clash:
            conflicts.add(path)
        if pick is not None:
            merged[path] = pick
    # a file on one side where the other has a directory of that name: keep ours
    for path in list(merged):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in merged and path in merged:
                drop = path if ours.get(path) != merged[path] else parent
                conflicts.update((parent, path))
                del merged[drop]
    return list(merged.values()), sorted(conflicts)


def _pointer(data: bytes, origin: str) -> Pointer | None:
    return None if not data.strip() else Pointer.from_bytes(data, origin)


def _manifest(odb: Cache, p: Pointer | None, origin: str, fetch) -> dict[str, Entry]:
    if p is None or p.kind != "dir":
        return {}
    digest = p.digest.hex
    if not odb.contains(digest) and fetch is not None:
        fetch(digest)
    try:
        return odb.manifest(digest, origin).by_path()
    except IntegrityError as exc:
        raise IntegrityError(
            f"{origin}: the manifest {digest} is not in the cache ({exc.message})",
            hint="run `dvlite fetch --all-branches` (or pull the branch's data), then merge again",
        ) from None


def merge_pointer(odb: Cache, ancestor: bytes, ours: bytes, theirs: bytes, name: str,
                  fetch=None) -> tuple[bytes, MergeResult]:
    """The merged pointer bytes (ours when it conflicts) and what happened.

    `fetch(digest)` may bring a missing manifest from a remote (it may fail silently).
    """
    data_path = name.removesuffix(SUFFIX)
    result = MergeResult(name)
    a = _pointer(ancestor, f"{name} (ancestor)")
    o = _pointer(ours, f"{name} (ours)")
    t = _pointer(theirs, f"{name} (theirs)")
    if o == t or a == t:
        return ours, result
    if a == o:
        return theirs, result
    if o is None or t is None:
        result.reason = "deleted on one side and changed on the other"
    elif o.kind != "dir" or t.kind != "dir":
        result.reason = "changed differently on both sides" if o.kind == t.kind else "a file on one side, " \
            "a directory on the other"
    elif o.source != t.source:
        result.reason = "imported from different sources or revisions"
    if result.reason is not None:
        result.conflicts = [data_path]
        return ours, result
    base = _manifest(odb, a, f"{name} (ancestor)", fetch)
    entries, conflicts = merge_entries(
        base, _manifest(odb, o, f"{name} (ours)", fetch), _manifest(odb, t, f"{name} (theirs)", fetch)
    )
    result.conflicts = [f"{data_path}/{p}" for p in conflicts]
    manifest = Manifest.build(entries)
    result.merged_files = len(manifest.entries)
    digest = odb.put_bytes(manifest.to_bytes(), durable=True)
    if digest == o.digest:
        return ours, result
    merged = Pointer("dir", digest, manifest.size, len(manifest.entries))
    return merged.to_bytes(), result


# --- dvlite.lock ------------------------------------------------------------------------------

def _lock_doc(data: bytes, origin: str) -> dict:
    doc = yamldoc.load(data, origin)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict) or not isinstance(doc.get("stages") or {}, dict):
        raise FormatError(f"{origin}: not a dvlite lock file (expected a mapping with `stages`)")
    if doc:
        lockfile.from_bytes(data, origin)  # every path in it checked, as any reader does
    return doc


def _dump(doc: dict) -> bytes:
    return lockfile.dump(doc)


def merge_lock(ancestor: bytes, ours: bytes, theirs: bytes, name: str) -> tuple[bytes, MergeResult]:
    """Merge stage entries one by one; a stage both sides changed differently keeps ours (stale)."""
    result = MergeResult(name)
    a = _lock_doc(ancestor, f"{name} (ancestor)")
    o = _lock_doc(ours, f"{name} (ours)")
    t = _lock_doc(theirs, f"{name} (theirs)")
    top, top_conflicts = _merge_maps({k: v for k, v in a.items() if k != "stages"},
                                     {k: v for k, v in o.items() if k != "stages"},
                                     {k: v for k, v in t.items() if k != "stages"})
    if top_conflicts:
        result.reason = f"both sides changed {', '.join(top_conflicts)}"
        result.conflicts = [name]
        return ours, result
    stages, stale = _merge_maps(a.get("stages") or {}, o.get("stages") or {}, t.get("stages") or {})
    result.stale_stages = stale
    merged = {**top, "stages": stages}
    if merged == {**o, "stages": o.get("stages") or {}}:
        return ours, result
    return _dump(merged), result


def _merge_maps(a: dict, o: dict, t: dict) -> tuple[dict, list[str]]:
    out: dict = {}
    clashes = []
    for key in list(o) + [k for k in t if k not in o] + [k for k in a if k not in o and k not in t]:
        pick, clash = _pick(a.get(key), o.get(key), t.get(key))
        if clash:
            clashes.append(str(key))
        if pick is not None:
            out[key] = pick
    return out, sorted(clashes)
