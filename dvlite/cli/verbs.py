"""The verbs git and DVC users reach for: `commit`, `freeze`, `unfreeze`, `du`, `root`,
`destroy`, `check-ignore`."""

from __future__ import annotations

import os
import sys

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, cwd_rel, find_repo, locked

# --- commit --------------------------------------------------------------------------------------

def commit(
    targets: list[str] = typer.Argument(None, help="Tracked paths, stage names or stage outs "
                                                   "(default: everything that changed)."),
    json_out: bool = JSON,
) -> None:
    """Record the workspace as it is into the pointers and dvlite.lock, running nothing."""
    from dvlite.pipelines.commit import commit as run_commit

    repo = find_repo()
    with locked(repo, "commit"):
        result = run_commit(repo, targets or [])
    if json_out:
        return ui.emit_json({
            "committed": result.committed,
            "skipped": [{"what": what, "why": why} for what, why in result.skipped],
            "gitignores": result.gitignores,
        })
    for c in result.committed:
        what = f"stage {c.path}" if c.kind == "stage" else c.path
        ui.say(f"{'committed' if c.changed else 'unchanged'}: {what} ({c.file})")
    for what, why in result.skipped:
        ui.say(f"skipped: stage {what}: {why}", style="yellow")
    if not result.committed and not result.skipped:
        ui.say("Nothing to commit: the pointers and dvlite.lock match the workspace.")
    files = [c.file for c in result.committed if c.changed] + result.gitignores
    ui.git_hint([cwd_rel(repo, f) for f in dict.fromkeys(files)])


# --- freeze, unfreeze ----------------------------------------------------------------------------

def _set_frozen(stage: str, freeze: bool, json_out: bool) -> None:
    from dvlite.pipelines.freeze import set_frozen

    repo = find_repo()
    with locked(repo, "freeze" if freeze else "unfreeze"):
        result = set_frozen(repo, stage, freeze)
    if json_out:
        return ui.emit_json(result)
    state = "frozen" if freeze else "not frozen"
    if result.changed:
        ui.say(f"stage {stage} is {state} now ({result.file})")
        ui.git_hint([cwd_rel(repo, result.file)])
    else:
        ui.say(f"stage {stage} was already {state}")


def freeze(stage: str = typer.Argument(..., help="The stage's name."), json_out: bool = JSON) -> None:
    """Set `frozen: true` on a stage in dvlite.yaml: `repro` leaves it alone."""
    _set_frozen(stage, True, json_out)


def unfreeze(stage: str = typer.Argument(..., help="The stage's name."), json_out: bool = JSON) -> None:
    """Remove `frozen: true` from a stage in dvlite.yaml."""
    _set_frozen(stage, False, json_out)


# --- du, root ------------------------------------------------------------------------------------

def du(
    path: str | None = typer.Argument(None, help="Limit to this path (a tracked path, a directory "
                                                  "holding some, or a path inside one)."),
    rev: str | None = typer.Option(None, "--rev", help="Sizes at a git revision."),
    depth: int = typer.Option(0, "-d", "--max-depth", min=0,
                              help="Also list directories inside tracked directories, N levels down."),
    json_out: bool = JSON,
) -> None:
    """Sizes of tracked data, from pointers and manifests: nothing is checked out."""
    from dvlite.data.du import du as run_du

    repo = find_repo()
    result = run_du(repo, path, rev, depth)
    if json_out:
        return ui.emit_json(result)
    rows = [[ui.human_size(e.size), str(e.files), e.path + ("/" if e.kind != "file" else "")]
            for e in result.entries]
    rows.append([ui.human_size(result.total), str(result.files), "total"])
    ui.table(["size", "files", "path"], rows)
    if result.unknown:
        ui.note(f"not broken down (manifest not in the cache, no remote had it): "
                f"{', '.join(result.unknown)}; `dvlite fetch` brings it")


def root(json_out: bool = JSON) -> None:
    """The repository's root, relative to the current directory (as `dvc root` prints it)."""
    repo = find_repo(check_config=False)
    rel = os.path.relpath(repo.root)
    if json_out:
        return ui.emit_json({"root": rel, "absolute": repo.root})
    ui.say(rel)


# --- destroy -------------------------------------------------------------------------------------

def destroy(
    force: bool = typer.Option(False, "-f", "--force", help="Do not ask for confirmation."),
    json_out: bool = JSON,
) -> None:
    """Remove dvlite from this repository: the data stays as plain files; pointers, dvlite.lock
    files, their .gitignore lines and .dvlite/ (with the cache inside it) are deleted."""
    from dvlite.data.destroy import destroy as run_destroy
    from dvlite.data.destroy import plan
    from dvlite.errors import BadInputError

    repo = find_repo(check_config=False)
    what = plan(repo)
    if not force:
        if not sys.stdin.isatty():
            raise BadInputError("destroy asks for confirmation, and there is no terminal to ask",
                                hint="run `dvlite destroy -f` to remove dvlite without asking")
        cache = "the cache inside it" if what.cache_inside else f"not the cache at {what.cache}"
        ui.say(f"This removes {len(what.pointers)} pointer file(s), {len(what.locks)} dvlite.lock "
               f"file(s) and {repo.dvlite_dir} ({cache}). The data of {len(what.paths)} tracked "
               "path(s) stays as plain files.")
        if not typer.confirm("Remove dvlite from this repository?", default=False):
            raise typer.Exit(1)
    with locked(repo, "destroy"):
        result = run_destroy(repo)
    if json_out:
        return ui.emit_json(result)
    ui.say(f"dvlite removed: {len(what.pointers)} pointer(s) and {len(what.locks)} dvlite.lock "
           f"file(s) deleted, {len(result.restored)} path(s) checked out first, "
           f"{len(result.unprotected)} link(s) into the cache made copies")
    if result.lost:
        ui.error(f"{len(result.lost)} tracked file(s) were in neither the workspace nor the cache:")
        ui.listing(result.lost, console=ui.err)
    if not what.cache_inside:
        ui.say(f"The cache at {what.cache} is kept (other projects may use it).")
    ui.say("The data is no longer ignored by git; add what belongs in git yourself.")
    files = what.pointers + what.locks + result.gitignores + [repo.rel(repo.dvlite_dir)]
    ui.git_hint([cwd_rel(repo, f) for f in files])


# --- check-ignore --------------------------------------------------------------------------------

def check_ignore(
    paths: list[str] = typer.Argument(..., help="Paths to check (relative to the current directory)."),
    details: bool = typer.Option(False, "-d", "--details",
                                 help="Show the file, line and pattern that decided each path."),
    non_matching: bool = typer.Option(False, "-n", "--non-matching",
                                      help="With --details, list paths no pattern matches too."),
    json_out: bool = JSON,
) -> None:
    """Which paths .dvliteignore excludes from dvlite. Exits 1 when none is."""
    from dvlite.outputs import to_rel
    from dvlite.workspace.ignore import Ignores

    repo = find_repo(check_config=False)
    ignores = Ignores(repo.root)
    rows = []
    for arg in paths:
        rel = to_rel(repo, arg.rstrip("/") or arg)
        is_dir = arg.endswith("/") or os.path.isdir(arg)
        found = ignores.check(rel, is_dir) if rel else None
        rows.append((arg, found))
    ignored = [arg for arg, found in rows if found is not None and found.ignored]
    if json_out:
        ui.emit_json([{"path": arg, "ignored": bool(found and found.ignored),
                       "source": found.source if found else None,
                       "line": found.line if found else None,
                       "pattern": found.pattern if found else None} for arg, found in rows])
    else:
        for arg, found in rows:
            if details and found is not None:
                sys.stdout.write(f"{found.source}:{found.line}:{found.pattern}\t{arg}\n")
            elif details and non_matching:
                sys.stdout.write(f"::\t{arg}\n")
            elif found is not None and found.ignored:
                sys.stdout.write(f"{arg}\n")
    if not ignored:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(commit)
    app.command()(freeze)
    app.command()(unfreeze)
    app.command()(du)
    app.command()(root)
    app.command()(destroy)
    app.command("check-ignore")(check_ignore)
