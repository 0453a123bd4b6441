"""`fsck`: re-hash every cache object, check every pack index and every pointer and manifest."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dvlite.data.reach import used_objects
from dvlite.outputs import load_tracked_leniently
from dvlite.progress import SILENT, Progress
from dvlite.repo import Repo
from dvlite.workspace.hasher import JOBS


@dataclass(frozen=True)
class FsckResult:
    checked: int
    corrupt: list[tuple[str, list[str]]]  # (digest, paths that use it)
    missing: list[tuple[str, list[str]]]
    repaired: bool
    damaged_packs: list[tuple[str, str]] = field(default_factory=list)  # (pack, why)
    problems: list[str] = field(default_factory=list)  # unreadable or unsafe pointers/manifests

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing and not self.damaged_packs and not self.problems


def fsck(repo: Repo, repair: bool, progress: Progress = SILENT) -> FsckResult:
    objects = list(repo.odb.iter_objects())
    damaged = sorted(repo.odb.damaged_packs().items())
    sizes = [repo.odb.size(d) for d in objects] if progress is not SILENT else [0] * len(objects)
    progress.set_size(sum(sizes))
    verdicts = []
    with ThreadPoolExecutor(JOBS) as pool:
        for ok, size in zip(pool.map(repo.odb.verify, objects), sizes):
            verdicts.append(ok)
            progress.relative_update(size)
    corrupt = [d for d, ok in zip(objects, verdicts) if not ok]
    corrupt_dir = f"{repo.cache_dir}/corrupt"
    if repair:
        for pack, _why in damaged:  # its objects become missing: pull or add brings them back
            repo.odb.quarantine_pack(pack, corrupt_dir)
        for digest in corrupt:
            repo.odb.quarantine(digest, corrupt_dir)
    tracked, bad = load_tracked_leniently(repo)
    used = used_objects(repo, [("workspace", t) for t in tracked])
    problems = [e.message for e in bad] + [e.message for e in used.unsafe]
    present = set(objects) - set(corrupt) if repair else set(objects)
    if repair and damaged:
        present = set(repo.odb.iter_objects())
    missing = sorted(d for d in used.users if d not in present and d not in corrupt)
    return FsckResult(
        len(objects),
        [(d, sorted(used.users.get(d, ()))) for d in corrupt],
        [(d, sorted(used.users[d])) for d in missing],
        repair,
        damaged,
        problems,
    )
