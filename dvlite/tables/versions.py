"""Tables at git revisions: a tracked file at a revision (read from the cache, or fetched
from the remote, through `dvlite.api.DataView`), and the commits that changed a file.

Revisions: any git revision; `None` for the data the workspace's pointers name; and
`WORKSPACE` for the file on disk as it is now (hashed through the stat cache, so its
statistics are cached too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dvlite.errors import BadInputError, FormatError
from dvlite.tables.formats import TableSource, detect_format
from dvlite.tables.local import WORKSPACE, label, workspace_source


@dataclass(frozen=True)
class Version:
    commit: str
    subject: str
    digest: str


def source_at(repo, rel: str, rev: str | None, fmt: str | None = None,
              remote: str | None = None) -> TableSource:
    """A tracked table at a revision (or the workspace file for WORKSPACE), without a checkout."""
    from dvlite.api.view import DataView

    if rev == WORKSPACE:
        return workspace_source(repo, rel, fmt)
    fmt = detect_format(rel, fmt)
    view = DataView(repo, rev, remote)
    name = label(rel, rev)
    try:
        node = view.lookup(rel)
    except FileNotFoundError:
        where = "the workspace pointers" if rev is None else rev
        raise BadInputError(f"{rel} is not tracked by dvlite at {where}") from None
    if node.kind != "file":
        raise BadInputError(f"{name} is a directory; name a table file inside it")
    with view.open_object(node) as f:  # brings the object into the cache when it is missing
        path = f.name if isinstance(getattr(f, "name", None), str) else None
    return TableSource(name, fmt, lambda: view.open_object(node), path, node.digest,
                       lambda: repo.odb.verify(node.digest))


def default_source(repo, rel: str, fmt: str | None = None, remote: str | None = None) -> TableSource:
    """No revision given: the workspace file when it is there, else what the pointers name."""
    if os.path.isfile(repo.abs(rel)):
        return workspace_source(repo, rel, fmt)
    return source_at(repo, rel, None, fmt, remote)


def digest_at(repo, rel: str, rev: str, remote: str | None = None) -> str | None:
    """The object a path names at a commit; None when it is not a tracked file there."""
    from dvlite.api.view import DataView

    try:
        node = DataView(repo, rev, remote).lookup(rel)
    except (FileNotFoundError, FormatError):
        return None
    return node.digest if node.kind == "file" else None


def versions_of(repo, rel: str, remote: str | None = None) -> list[Version]:
    """The commits of HEAD's history that changed the file, oldest first (one per change)."""
    scm = repo.require_scm()
    out: list[Version] = []
    last = None
    for sha, subject in reversed(scm.log(all_refs=False)):
        digest = digest_at(repo, rel, sha, remote)
        if digest is not None and digest != last:
            out.append(Version(sha, subject, digest))
        last = digest
    return out
