"""`.dvliteignore`: gitignore rules that keep paths inside tracked directories out of dvlite,
matched by pathspec (on RE2: linear time, whatever patterns a committed file holds).

A scan asks once per directory which rule files can apply to its entries (`rules_at` for the
top, `rules_below` for each subdirectory); a directory no rule can reach costs nothing per
file. Rules follow git: each file speaks for paths below its own directory, the deepest file
that matches decides, within a file the last matching line decides, `!` re-includes, and
nothing below an ignored directory can be re-included (a scan never enters it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dvlite.errors import FormatError
from dvlite.fsutil import read_limited

IGNORE_FILE = ".dvliteignore"
MAX_BYTES = 1 << 20
MAX_RULES = 10_000
_GLOB = frozenset("*?[\\")


@dataclass(frozen=True)
class Match:
    """The line that decides about a path (`check-ignore --details`)."""

    path: str  # repo-relative, as asked
    source: str  # repo-relative path of the .dvliteignore holding the line
    line: int  # 1-based
    pattern: str  # the line as written
    ignored: bool  # False for a `!pattern` that re-includes the path


def _spec(lines: list[str], source: str):
    import pathspec

    try:
        return pathspec.GitIgnoreSpec.from_lines(lines, backend=_backend())
    except ValueError:
        for number, line in enumerate(lines, 1):
            try:
                pathspec.GitIgnoreSpec.from_lines([line], backend=_backend())
            except ValueError as exc:
                raise FormatError(f"{source}:{number}: invalid pattern {line!r} ({exc})") from None
        raise


def _backend() -> str:
    """RE2 when installed: its matching time is linear in the path, where Python's `re`
    backtracks exponentially on patterns like `*a*a*a*a*b` (a hostile file could hang a scan)."""
    try:
        import re2  # noqa: F401
    except ImportError:
        return "simple"
    return "re2"


def _segments(line: str) -> list[str] | None:
    """The path components of an anchored pattern (one with a `/` before its end), or None
    for a floating one, which may match at any depth. Only used to skip directories no
    pattern can reach, so a doubtful answer is "floating"."""
    text = line.rstrip(" \t")
    text = text.removeprefix("!")
    text = text.rstrip("/")
    if "/" not in text:
        return None
    return text.lstrip("/").split("/")


def _may_enter(pattern: list[str], below: list[str]) -> bool:
    """Whether an anchored pattern can match an entry of the directory `below` (components
    relative to the rule file's directory)."""
    for i, part in enumerate(below):
        if i >= len(pattern):
            return False
        seg = pattern[i]
        if seg == "**":
            return True
        if seg != part and not _GLOB.intersection(seg):
            return False
    return len(pattern) > len(below)


class RuleFile:
    """One `.dvliteignore`, compiled."""

    def __init__(self, rel_dir: str, data: bytes):
        self.rel_dir = rel_dir  # "" for the repository root
        self.source = f"{rel_dir}/{IGNORE_FILE}" if rel_dir else IGNORE_FILE
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{self.source}: not UTF-8 text") from None
        self.lines = [line.rstrip("\r") for line in text.split("\n")]
        if text.endswith("\n"):
            self.lines.pop()
        if len(self.lines) > MAX_RULES:
            raise FormatError(f"{self.source}: more than {MAX_RULES} lines")
        self.spec = _spec(self.lines, self.source)
        patterns = [line for line in self.lines if line.strip() and not line.startswith("#")]
        anchored = [_segments(p) for p in patterns]
        self.floating = any(a is None for a in anchored)
        self.anchored = [a for a in anchored if a is not None]
        self.empty = not patterns

    def decide(self, path: str) -> int | None:
        """The index of the line that decides about `path` (relative to this file's
        directory, a directory with a trailing `/`), or None when no line matches."""
        try:
            return self.spec.check_file(path).index
        except UnicodeEncodeError:  # a file name that is not UTF-8: match what can be read
            return self.spec.check_file(path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")).index

    def ignores(self, index: int) -> bool:
        return not self.lines[index].startswith("!")

    def may_apply_below(self, rel: str) -> bool:
        """Whether any line can match an entry of directory `rel` (relative to this file)."""
        if self.floating:
            return True
        below = rel.split("/")
        return any(_may_enter(p, below) for p in self.anchored)


class DirRules:
    """The rule files that can apply to the entries of one directory: (file, this directory
    relative to the file's directory, with a trailing `/` unless empty), deepest file first."""

    __slots__ = ("entries",)

    def __init__(self, entries: tuple[tuple[RuleFile, str], ...]):
        self.entries = entries

    def ignored(self, name: str, is_dir: bool) -> bool:
        found = self.match(name, is_dir)
        return found is not None and found[0].ignores(found[1])

    def match(self, name: str, is_dir: bool) -> tuple[RuleFile, int] | None:
        tail = name + "/" if is_dir else name
        for rule_file, prefix in self.entries:
            index = rule_file.decide(prefix + tail)
            if index is not None:
                return rule_file, index
        return None


class Ignores:
    """The `.dvliteignore` files of one repository, read as scans reach them (and kept)."""

    def __init__(self, root: str):
        self.root = root
        self._files: dict[str, RuleFile | None] = {}
        self._stats: dict[str, str] = {}  # rel_dir -> stat of its rule file ("-" when none)
        self._at: dict[str, DirRules | None] = {}

    def _file(self, rel_dir: str, exists: bool | None = None) -> RuleFile | None:
        if rel_dir not in self._files:
            path = os.path.join(self.root, *rel_dir.split("/"), IGNORE_FILE) if rel_dir else \
                os.path.join(self.root, IGNORE_FILE)
            found = None
            if exists is not False:
                try:
                    st = os.stat(path)
                    data = read_limited(path, MAX_BYTES, path)
                except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    self._stats[rel_dir] = "-"
                else:
                    self._stats[rel_dir] = f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"
                    found = RuleFile(rel_dir, data)
                    found = None if found.empty else found
            self._files[rel_dir] = found
        return self._files[rel_dir]

    def rules_at(self, rel_dir: str) -> DirRules | None:
        """The rules for the entries of `rel_dir` (repo-relative, "" for the root), reading the
        rule files of it and of every directory above it."""
        if rel_dir not in self._at:
            if rel_dir == "":
                own = self._file("")
                rules = DirRules(((own, ""),)) if own is not None else None
            else:
                parent = rel_dir.rpartition("/")[0]
                rules = self.rules_below(self.rules_at(parent), rel_dir, None)
            self._at[rel_dir] = rules
        return self._at[rel_dir]

    def rules_below(self, parent: DirRules | None, rel_dir: str,
                    has_file: bool | None) -> DirRules | None:
        """The rules for the entries of subdirectory `rel_dir`, given its parent's rules;
        `has_file` says whether it holds a `.dvliteignore` (None: look)."""
        name = rel_dir.rpartition("/")[2]
        entries = []
        own = self._file(rel_dir, has_file) if has_file is not False else None
        if own is not None:
            entries.append((own, ""))
        if parent is not None:
            for rule_file, prefix in parent.entries:
                below = prefix + name
                if rule_file.may_apply_below(below):
                    entries.append((rule_file, below + "/"))
        return DirRules(tuple(entries)) if entries else None

    def rel_of(self, path: str) -> str:
        """An absolute path below the root as the root-relative path the rules speak of."""
        rel = os.path.relpath(path, self.root).replace(os.sep, "/")
        return "" if rel == "." else rel

    def scan_rules(self, top_rel: str, prefix: str, parent: DirRules | None,
                   names) -> DirRules | None:
        """For a scan of the tree at `top_rel`: the rules for the entries of the directory it
        has just listed. `prefix` is that directory below the top ("" for the top, else
        ending in `/`), `parent` the rules of the directory above, `names` its entries."""
        if not prefix:
            return self.rules_at(top_rel)
        rel_dir = f"{top_rel}/{prefix[:-1]}" if top_rel else prefix[:-1]
        return self.rules_below(parent, rel_dir, IGNORE_FILE in names)

    def stamp(self, rel_dir: str) -> str:
        """The stat of every rule file from the root down to `rel_dir` (mixed into a tree's
        fingerprint: a changed rule above a tree changes what the tree holds)."""
        parts = rel_dir.split("/") if rel_dir else []
        dirs = [""] + ["/".join(parts[:i + 1]) for i in range(len(parts))]
        for d in dirs:
            self._file(d)
        return ";".join(f"{d}={self._stats.get(d, '-')}" for d in dirs)

    def check(self, rel: str, is_dir: bool) -> Match | None:
        """The line that decides whether `rel` is ignored, or None when none applies; a path
        inside an ignored directory is decided by that directory's line."""
        parts = rel.split("/")
        rules = self.rules_at("")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            found = rules.match(part, is_dir or not last) if rules is not None else None
            if found is not None and (last or found[0].ignores(found[1])):
                rule_file, index = found
                return Match(rel, rule_file.source, index + 1, rule_file.lines[index],
                             rule_file.ignores(index))
            if not last:
                rules = self.rules_at("/".join(parts[:i + 1]))
        return None

    def is_ignored(self, rel: str, is_dir: bool) -> bool:
        found = self.check(rel, is_dir)
        return found is not None and found.ignored
