"""The one validator for paths that come from data: pointers, manifests, locks, records, listings.

A path read from a file someone else wrote (a pointer name in a commit, an entry of a
manifest, an out in dvlite.lock, an import's source) is accepted only in one shape:
relative, `/`-separated, normalised (no empty, `.` or `..` component), without NUL, and
never naming `.git` or `.dvlite`. Anything else is an `UnsafePathError` (exit 4) that names
the file, the path and the rule it breaks, raised before anything is written.
"""

from __future__ import annotations

import re

from dvlite.errors import BadInputError, UnsafePathError

RESERVED = (".git", ".dvlite")  # never written through data: git's hooks, dvlite's own cache
# One plain component: not empty, `.` or `..`, not a reserved name, no `/` or NUL.
_COMPONENT = r"(?!\.\.?(?:/|\Z))(?!\.git(?:/|\Z))(?!\.dvlite(?:/|\Z))[^/\x00]+"
_PLAIN = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")


def _all_plain(paths: list[str]) -> bool:
    """Whether every path is plain, in a few scans of one joined string (50,000 entries: ~5 ms)."""
    joined = "\x00".join(paths)
    if (joined.count("\x00") != len(paths) - 1 or "//" in joined or "\x00\x00" in joined
            or "/\x00" in joined or "\x00/" in joined or joined.startswith("/")
            or joined.endswith("/") or not joined):
        return False
    if "/." in joined or "\x00." in joined or joined.startswith("."):  # hidden names: look closer
        return all(map(_PLAIN.fullmatch, paths))
    return True


def why_unsafe(path: object) -> str | None:
    """The rule `path` breaks, or None for a valid relative data path."""
    if not isinstance(path, str):
        return f"not a string ({type(path).__name__})"
    if _PLAIN.fullmatch(path):
        return None
    if path == "":
        return "empty path"
    if "\x00" in path:
        return "NUL character"
    if path.startswith("/"):
        return "absolute path"
    for part in path.split("/"):
        if part == "":
            return "empty component"
        if part in (".", ".."):
            return f"'{part}' component"
        if part in RESERVED:
            return f"names {part}/"
    return "not a normalised relative path"


def check(path: object, origin: str) -> str:
    """`path` itself when it is a valid relative data path; else UnsafePathError naming `origin`
    (the file it came from, and where in it)."""
    rule = why_unsafe(path)
    if rule is not None:
        raise UnsafePathError(f"{origin}: unsafe path {path!r}: {rule}",
                              hint="this file was written by someone else or damaged; "
                                   "dvlite never writes outside its place")
    return path  # type: ignore[return-value]


def check_entries(paths: list[str], origin: str) -> None:
    """Entries of one directory manifest: each valid, none also a directory of another."""
    if paths and not _all_plain(paths):
        for p in paths:
            check(p, origin)
    files = set(paths)
    if len(files) != len(paths):
        seen: set[str] = set()
        twice = next(p for p in paths if p in seen or seen.add(p))  # type: ignore[func-returns-value]
        raise UnsafePathError(f"{origin}: unsafe path {twice!r}: listed twice")
    dirs: set[str] = set()
    for parent in {p[:p.rfind("/")] for p in paths if "/" in p}:
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = parent[:max(parent.rfind("/"), 0)]
    clash = files & dirs
    if clash:
        first = min(clash)
        raise UnsafePathError(f"{origin}: unsafe path {first!r}: listed both as a file and as a "
                              "directory")


def join(*parts: str) -> str:
    """Join validated relative paths with `/`."""
    return "/".join(p for p in parts if p)


def is_inside(path: str, top: str) -> bool:
    """Whether repo-relative `path` is `top` or below it (both validated, `/` separators)."""
    return top == "" or path == top or path.startswith(top + "/")


def user_path(text: str) -> str:
    """A path a person typed, relative to some root, as a data path: `./a//b/` is `a/b`;
    `..`, `.git` and the like are refused (BadInputError). "" is the root itself."""
    parts = [p for p in text.replace("\\", "/").split("/") if p not in ("", ".")]
    joined = "/".join(parts)
    rule = why_unsafe(joined) if joined else None
    if rule is not None:
        raise BadInputError(f"invalid path {text!r} ({rule})")
    return joined
