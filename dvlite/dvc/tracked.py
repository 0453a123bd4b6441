"""What a commit from before the switch tracks: its `.dvc` files and the cached outs of its
`dvc.lock` files (with their `dvc.yaml`), named by DVC's md5, and which of them the md5 index
already links to dvlite objects.

dvlite's own files win: a path a `.dvl` pointer or a dvlite.lock tracks is never read from
DVC's files (after `dvlite migrate` without `--remove-dvc` both are there, and agree).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from dvlite.dvc import dvcfile, dvclock
from dvlite.dvc import pipelines as dvc_pipelines
from dvlite.dvc.paths import check_path, is_dvc_file
from dvlite.errors import FormatError
from dvlite.storage.md5index import Known, Md5Index

LOCK_NAME = dvclock.FILENAME
YAML_NAME = dvc_pipelines.DVC_YAML
# what `git ls-files` is asked for, beside dvlite's own files, and the names read at revisions
LISTED = ["*.dvc", LOCK_NAME, f"*/{LOCK_NAME}", YAML_NAME, f"*/{YAML_NAME}"]
DVC_SUFFIXES = (dvcfile.SUFFIX, LOCK_NAME, YAML_NAME)


@dataclass(frozen=True)
class LegacyOut:
    """One path a DVC file tracks, as DVC named its bytes."""

    rel: str  # repo-relative, `/` separators
    md5: str
    is_dir: bool
    hash_name: str  # md5 | md5-dos2unix
    origin: str  # the .dvc file or dvc.lock that records it (with " at REV" for history)
    stage: str = ""  # the dvc.lock stage that produced it ("" for a .dvc file)
    source: dvcfile.RepoSource | None = None  # `dvc import`: the repository it came from

    @property
    def key(self) -> tuple[str, bool, str]:
        return (self.md5, self.is_dir, self.hash_name)

    @property
    def name(self) -> str:
        return f"md5 {self.md5}{'.dir' if self.is_dir else ''}"


def _named(files: list[str], name: str) -> list[str]:
    return sorted(f for f in files if posixpath.basename(f) == name)


def _lock_outs(lock_rel: str, read: Callable[[str], bytes | None], label: str,
               options: dict) -> list[LegacyOut]:
    base = posixpath.dirname(lock_rel)
    yaml_rel = posixpath.join(base, YAML_NAME)
    lock_data, yaml_data = read(lock_rel), read(yaml_rel)
    if lock_data is None or yaml_data is None:
        return []  # a lock without its dvc.yaml: nothing says which outs are cached
    pf = dvc_pipelines.load(yaml_rel, yaml_data, lock_data, read, options)
    out = []
    for name, locked in pf.lock.items():
        stage = pf.stages.get(name)
        if stage is None:
            continue
        caching = {o.path: o.cache for o in stage.outs}
        for item in locked.outs:
            rel = check_path(item.path, lock_rel + label, "outs", stage.wdir)
            if item.md5 is not None and caching.get(rel, False):
                out.append(LegacyOut(rel, item.md5, item.is_dir, item.hash_name, lock_rel + label, name))
    return out


def legacy_outs(files: list[str], read: Callable[[str], bytes | None], label: str = "",
                options: dict | None = None) -> list[LegacyOut]:
    """Every output the DVC files among `files` track; `read(rel)` gives a file's bytes (None:
    absent); `label` (" at REV") goes into messages."""
    out = []
    for rel in sorted(f for f in files if is_dvc_file(f)):
        data = read(rel)
        if data is None:
            continue
        parsed = dvcfile.parse(data, rel + label)
        o = parsed.out
        out.append(LegacyOut(o.path, o.md5, o.is_dir, o.hash_name, rel + label, source=parsed.repo))
    for lock_rel in _named(files, LOCK_NAME):
        out += _lock_outs(lock_rel, read, label, options or {})
    return out


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def unclaimed(outs: list[LegacyOut], claimed: list[str]) -> list[LegacyOut]:
    """The outs that no dvlite-tracked path covers (dvlite's files win)."""
    if not claimed:
        return outs
    return [o for o in outs if not any(_overlaps(o.rel, c) for c in claimed)]


def resolve(index: Md5Index, outs: list[LegacyOut]) -> tuple[list[tuple[LegacyOut, Known]], list[LegacyOut]]:
    """(outs the index links to dvlite objects, with the link; outs it does not know yet)."""
    known = index.lookup([o.key for o in outs])
    linked = [(o, known[o.key]) for o in outs if o.key in known]
    return linked, [o for o in outs if o.key not in known]


def check_unique(outs: list[LegacyOut]) -> None:
    seen: dict[str, str] = {}
    for o in outs:
        if o.rel in seen and seen[o.rel] != o.origin:
            raise FormatError(f"{o.origin}: {o.rel} is also tracked by {seen[o.rel]}")
        seen[o.rel] = o.origin
