"""A source repository at a commit from before it switched from DVC, read by `get` and `import`.

Such a commit has `.dvc` files and `dvc.lock` but no `.dvlite/config`. When the source is a
work tree on this machine that uses dvlite now, its outputs at that commit are brought into
its own cache exactly as its own `dvlite checkout` of the commit would do (from its DVC cache,
or its DVC remote, each object verified by md5 and linked in its md5 index), and copied from
there into the cache the command reads (verified again by digest). A source that never
switched, or one known only by URL, is refused with a clear error: reading DVC's objects of a
bare clone is not built (docs/migrating-from-dvc.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dvlite import scm
from dvlite.data.history import tracked_at
from dvlite.dvc.legacy import bring_in, unlinked
from dvlite.errors import BadInputError, IntegrityError
from dvlite.formats.pointer import SUFFIX, data_path_of
from dvlite.fsutil import LockHolder
from dvlite.repo import DIRNAME, Repo
from dvlite.sources.repos import Located, NotTrackedError, SourceRepo, SourceView, normalise
from dvlite.storage.cache import Cache


def is_pre_switch(git_dir: str, commit: str) -> bool:
    """The commit tracks data with DVC's files and has no dvlite config."""
    return scm.blob_at(git_dir, commit, ".dvc/config") is not None


def pre_switch_source(url: str, rev: str, commit: str, git_dir: str, odb: Cache,
                      origin: str | None, tmp: str) -> PreSwitchSource:
    if origin is None or not os.path.isdir(os.path.join(origin, DIRNAME)):
        raise BadInputError(
            f"{url} at {rev} is a commit from before the switch from DVC; dvlite reads such "
            "commits of another repository only from its work tree on this machine, after "
            "`dvlite migrate` there",
            hint="clone it, run `dvlite migrate --force` in the clone, and get from the clone")
    source = Repo(origin)
    view = SourceView(source.config, odb, os.path.join(tmp, "pack-index"))
    return PreSwitchSource(url, rev, commit, git_dir, view, True, source=source)


def _no_wait(_holder: LockHolder | None) -> None:
    pass


@dataclass
class PreSwitchSource(SourceRepo):
    source: Repo | None = None  # the source's work tree (its cache holds the objects)

    def locate(self, path: str) -> Located:
        rel = normalise(path)
        if rel.endswith(SUFFIX):
            rel = data_path_of(rel)
        self._bring_in(rel)
        for t in tracked_at(self.source, self.commit):
            if t.rel == rel:
                return Located(t, None)
            if rel.startswith(t.rel + "/") and t.pointer.kind == "dir":
                return Located(t, rel[len(t.rel) + 1:])
        raise NotTrackedError(f"{path} is not tracked in {self.url} at {self.rev}")

    def _bring_in(self, rel: str) -> None:
        wanted = [o for o in unlinked(self.source, self.commit)
                  if not rel or o.rel == rel or rel.startswith(o.rel + "/")
                  or o.rel.startswith(rel + "/")]
        if not wanted:
            return
        with self.source.lock("get", _no_wait):
            result = bring_in(self.source, wanted, self.commit, use_remote=True)
        if result.missing:
            path, what = result.missing[0]
            raise IntegrityError(f"{path} in {self.url} at {self.rev}: {what} is in neither its "
                                 "DVC cache, its workspace nor its DVC remote")

    def stage_outputs(self) -> list:
        return []

    def remote_name(self, remote: str | None) -> str:
        raise BadInputError(f"{self.url} at {self.rev} is a commit from before the switch from "
                            "DVC: its objects have no URL on a dvlite remote")

    def fetch(self, sizes: dict[str, int], remote: str | None) -> None:
        """Copy these objects from the source's cache, each verified by its digest."""
        for digest in sorted(self.view.odb.missing(sizes)):
            origin = f"{self.url} at {self.rev}: object {digest}"
            if not self.source.odb.contains(digest):
                raise IntegrityError(f"{origin} is not in its cache")
            with self.source.odb.open_object(digest) as f:
                self.view.odb.put_verified(f, digest, origin)
