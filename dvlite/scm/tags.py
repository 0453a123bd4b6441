"""Annotated tags: the model registry's versions and stage assignments."""

from __future__ import annotations

import subprocess

from dvlite.errors import BadInputError
from dvlite.scm import _git, _identity

__all__ = ["MAX_TAG_MESSAGE", "annotated_tags", "create_tag"]

MAX_TAG_MESSAGE = 64 << 10


def annotated_tags(git_dir: str, patterns: list[str]) -> list[tuple[str, str, int, str]]:
    """(tag name, commit it points to, creation time, message) of the annotated tags matching
    `patterns` (`refs/tags/...` globs); lightweight tags are left out. Works in a work tree or
    a bare repository."""
    fmt = "%(refname:strip=2)%00%(objecttype)%00%(*objectname)%00%(creatordate:unix)%00%(contents)%01"
    proc = _git(git_dir, "for-each-ref", f"--format={fmt}", *patterns)
    out = []
    for record in proc.stdout.decode("utf-8", "replace").split("\x01"):
        parts = record.lstrip("\n").split("\0")
        if len(parts) != 5 or parts[1] != "tag" or not parts[3].isdigit():
            continue
        out.append((parts[0], parts[2], int(parts[3]), parts[4][:MAX_TAG_MESSAGE]))
    return out


def create_tag(worktree: str, name: str, commit: str, message: str) -> None:
    """An annotated tag `name` on `commit`; refused when the name is taken or invalid."""
    if _git(worktree, "check-ref-format", f"refs/tags/{name}", check=False).returncode != 0:
        raise BadInputError(f"{name!r} is not a valid git tag name")
    args = ["git", *_identity(worktree), "tag", "-a", "-F", "-", "--", name, commit]
    proc = subprocess.run(args, cwd=worktree, input=message.encode(), capture_output=True)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise BadInputError(f"cannot create tag {name!r}: "
                            f"{(lines or ['git tag failed'])[-1].removeprefix('fatal: ')}")
