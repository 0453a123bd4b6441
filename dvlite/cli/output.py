"""All terminal output: human text through rich, or JSON.

rich is imported on first styled output, not at start-up: a no-op `dvlite status` prints
one plain line, and importing rich would be a third of its run time.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from functools import cache

CAP = 10  # changed files listed per directory before "and N more"


class Mode:
    """`-q` and `-v`, wherever they were typed (the entry point sets them once)."""

    quiet = False  # print nothing but errors (and what --json asks for)
    verbose = False  # more detail, and tracebacks on errors


@cache
def _console(stderr: bool):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)


def __getattr__(name: str):  # `ui.out` and `ui.err`, made when first used
    if name in ("out", "err"):
        return _console(name == "err")
    raise AttributeError(name)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def to_plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple, set)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


def emit_json(value) -> None:
    sys.stdout.write(json.dumps(to_plain(value), indent=2, ensure_ascii=False) + "\n")


def say(text: str, style: str | None = None) -> None:
    if Mode.quiet:
        return
    if style is None:
        sys.stdout.write(text + "\n")  # what rich prints for unstyled text, without loading it
        return
    _console(False).print(escape(text), style=style)


def note(text: str) -> None:
    if not Mode.quiet:
        _console(True).print(escape(text), style="dim")


def detail(text: str) -> None:
    """A line only `-v` shows."""
    if Mode.verbose and not Mode.quiet:
        _console(True).print(escape(text), style="dim")


def error(message: str, hint: str | None = None) -> None:
    err = _console(True)
    err.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        err.print(f"[yellow]hint:[/] {escape(hint)}")


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def listing(paths: list[str], indent: str = "    ", cap: int = CAP, console=None) -> None:
    if Mode.quiet and console is not _console(True):
        return
    console = console or _console(False)
    for p in paths[:cap]:
        console.print(escape(f"{indent}{p}"))
    if len(paths) > cap:
        console.print(escape(f"{indent}... and {len(paths) - cap} more"), style="dim")


def table(columns: list[str], rows: list[list[str]]) -> None:
    if Mode.quiet:
        return
    from rich.table import Table

    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for c in columns:
        t.add_column(c, justify="right" if c in ("size", "files") else "left")
    for row in rows:
        t.add_row(*[escape(str(c)) for c in row])
    _console(False).print(t)


def git_hint(paths: list[str]) -> None:
    if paths and not Mode.quiet:
        quoted = " ".join(_shell_quote(p) for p in paths)
        say("\nTo track the changes with git, run:\n")
        sys.stdout.write(f"\tgit add {quoted}\n")  # verbatim: rich would expand a tab in a name


def _shell_quote(p: str) -> str:
    import shlex

    return shlex.quote("./" + p if p.startswith("-") else p)  # not read as a git option
