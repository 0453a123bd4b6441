"""Data from other repositories: `get`, `import`, `update`."""

from __future__ import annotations

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, find_repo, locked

REV = typer.Option(None, "--rev", help="Branch, tag or commit of the source (default: its HEAD).")
URL = typer.Argument(..., metavar="REPO_URL", help="A dvlite git repo: a path, file:// or git URL.")
PATH = typer.Argument(..., help="Tracked path in that repo (a file, a directory, or inside one).")
TARGETS = typer.Argument(None, help="Imported paths (default: every import).")


def get(
    url: str = URL,
    path: str = PATH,
    rev: str | None = REV,
    out: str | None = typer.Option(None, "-o", "--out", help="Where to write (default: the name, here)."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="A remote of the source repo."),
    json_out: bool = JSON,
) -> None:
    """Download a tracked path from another dvlite repository (no repository needed here)."""
    import contextlib

    from dvlite.errors import NotARepoError
    from dvlite.sources import repos as external

    try:
        repo = find_repo()
    except NotARepoError:
        repo = None
    guard = locked(repo, "get") if repo is not None else contextlib.nullcontext()
    with guard:
        result = external.get(repo, url, path, rev, out, remote)
    if json_out:
        return ui.emit_json(result)
    what = f"{result.files} files, " if result.kind == "dir" else ""
    ui.say(f"{result.out}: {what}{ui.human_size(result.size)} from {result.url} "
           f"at {result.rev} ({result.commit[:12]})")


def import_cmd(
    url: str = URL,
    path: str = PATH,
    rev: str | None = REV,
    out: str | None = typer.Option(None, "-o", "--out", help="Where to put it (default: the name, here)."),
    json_out: bool = JSON,
) -> None:
    """Like get, and write OUT.dvl recording the source URL, revision and commit."""
    from dvlite.sources import repos as external

    repo = find_repo()
    with locked(repo, "import"):
        result = external.import_(repo, url, path, rev, out)
    if json_out:
        return ui.emit_json(result)
    what = f"{result.files} files, " if result.kind == "dir" else ""
    src = result.source
    ui.say(f"imported {result.path}: {what}{ui.human_size(result.size)} from {src.url} "
           f"at {src.rev} ({src.rev_lock[:12]})")
    ui.git_hint([p for p in (result.pointer_path, result.gitignore) if p])


def update(
    targets: list[str] = TARGETS,
    rev: str | None = typer.Option(None, "--rev", help="Move to this revision (default: the recorded)."),
    json_out: bool = JSON,
) -> None:
    """Move imports to the newest commit of their revision, or to --rev."""
    from dvlite.sources import repos as external

    repo = find_repo()
    with locked(repo, "update"):
        results = external.update(repo, targets or [], rev)
    if json_out:
        return ui.emit_json(results)
    if not results:
        ui.say("No imports to update. Make one with `dvlite import REPO_URL PATH`.")
        return
    for r in results:
        src = r.source
        state = "updated" if r.changed else "up to date"
        ui.say(f"{r.path}: {state} ({src.url} at {src.rev}, {src.rev_lock[:12]})")
    ui.git_hint([r.pointer_path for r in results if r.changed])


def register(app: typer.Typer) -> None:
    app.command()(get)
    app.command(name="import")(import_cmd)
    app.command()(update)
