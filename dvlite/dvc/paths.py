"""Paths read from DVC's files, through dvlite's one validator (`dvlite.paths`).

DVC writes paths relative to the file that records them (a `.dvc` file's directory, a stage's
`wdir`), sometimes with `..`; they are joined to that base and normalised first, then must be
a safe repo-relative path that is not inside `.dvc` either.
"""

from __future__ import annotations

import posixpath

from dvlite import paths
from dvlite.errors import UnsafePathError


def check_path(raw, origin: str, what: str, base: str = "") -> str:
    """`raw` joined to `base` (both relative) and normalised; UnsafePathError when it is not
    a path inside the repository."""
    if not isinstance(raw, str) or raw.startswith("/") or "://" in raw:
        return paths.check(raw if isinstance(raw, str) else repr(raw), f"{origin}: {what}")
    joined = posixpath.normpath(posixpath.join(base, raw.replace("\\", "/")))
    if joined.split("/", 1)[0] == ".dvc":
        raise UnsafePathError(f"{origin}: {what}: unsafe path {raw!r}: names .dvc/")
    paths.check(joined, f"{origin}: {what}: {raw!r} resolves to")
    return joined


def check_relpath(raw, origin: str, what: str) -> str:
    """A path inside a directory as a `.dir` listing records it: already normal."""
    return paths.check(raw, f"{origin}: {what}")


def is_dvc_file(rel: str) -> bool:
    """A `.dvc` file (not something inside DVC's own `.dvc/` directory)."""
    return rel.endswith(".dvc") and not rel.startswith(".dvc/") and rel != ".dvc"


def any_dvc_files(files: list[str]) -> bool:
    """Whether DVC's files (`.dvc` files, `dvc.lock`) are among repo-relative `files`: asked
    before importing what reads them."""
    return any(is_dvc_file(f) or f.rsplit("/", 1)[-1] == "dvc.lock" for f in files)
