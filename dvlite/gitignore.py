"""The `.gitignore` line beside each tracked path, so git leaves the data to dvlite."""

from __future__ import annotations

import posixpath

from dvlite.repo import Repo


def _ignore_line(name: str) -> str:
    escaped = "".join("\\" + c if c in "\\*?[!#" else c for c in name)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "/" + escaped


def add_ignore(repo: Repo, rel: str) -> str | None:
    """Add `/name` to the .gitignore beside `rel`; return that .gitignore (rel) if changed."""
    head, name = posixpath.split(rel)
    if "\n" in name:
        return None  # git cannot express this name in .gitignore; the pointer still tracks it
    ignore = posixpath.join(head, ".gitignore")
    line = _ignore_line(name)
    lines = _read_lines(repo, ignore)
    if line in lines:
        return None
    repo.write(ignore, ("".join(x + "\n" for x in lines + [line])).encode("utf-8", "surrogateescape"))
    return ignore


def remove_ignore(repo: Repo, rel: str) -> str | None:
    head, name = posixpath.split(rel)
    ignore = posixpath.join(head, ".gitignore")
    line = _ignore_line(name)
    lines = _read_lines(repo, ignore)
    if line not in lines:
        return None
    kept = [x for x in lines if x != line]
    repo.write(ignore, ("".join(x + "\n" for x in kept)).encode("utf-8", "surrogateescape"))
    return ignore


def _read_lines(repo: Repo, rel: str) -> list[str]:
    repo.guard.check_parents(rel)
    try:
        with open(repo.abs(rel), "rb") as f:
            data = f.read(1 << 20)
    except FileNotFoundError:
        return []
    return data.decode("utf-8", "surrogateescape").splitlines()
