"""Tracking data: init, add, status, checkout, diff, ls, remove, move, unprotect."""

from __future__ import annotations

import os

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, complete_remote, complete_tracked, progress_bar
from dvlite.cli.common import cwd_rel as _cwd_rel
from dvlite.cli.common import find_repo as _repo
from dvlite.cli.common import locked as _locked
from dvlite.cli.common import report_problems as _report_problems

# --- init -------------------------------------------------------------------------

def init(
    no_scm: bool = typer.Option(False, "--no-scm", help="Allow a repository outside git."),
    force: bool = typer.Option(False, "-f", "--force", help="Re-initialise an existing repository."),
) -> None:
    """Create .dvlite/ here (in a git work tree, or with --no-scm anywhere)."""
    from dvlite.repo import Repo

    repo = Repo.init(os.getcwd(), no_scm=no_scm, force=force)
    ui.say(f"Initialised dvlite repository in {repo.dvlite_dir}")
    if not no_scm:
        ui.git_hint([".dvlite/config", ".dvlite/.gitignore"])


# --- add --------------------------------------------------------------------------

def add(
    paths: list[str] = typer.Argument(..., help="Files, directories or glob patterns."),
    json_out: bool = JSON,
) -> None:
    """Track files and directories: store them in the cache and write PATH.dvl pointers."""
    from dvlite.data.add import add as add_paths

    repo = _repo()
    with _locked(repo, "add"), progress_bar("add", json_out) as bar:
        results = add_paths(repo, paths, bar)
    if json_out:
        return ui.emit_json(results)
    for r in results:
        what = f"{r.files} files, " if r.kind == "dir" else ""
        verb = "added" if r.changed else "unchanged"
        ui.say(f"{verb}: {r.path} ({what}{ui.human_size(r.size)})")
    to_add = [_cwd_rel(repo, r.pointer_path) for r in results if r.changed]
    to_add += sorted({_cwd_rel(repo, r.gitignore) for r in results if r.gitignore})
    ui.git_hint(to_add)


# --- status -----------------------------------------------------------------------

def status(
    targets: list[str] = typer.Argument(None, help="Tracked paths (default: all).",
                                        autocompletion=complete_tracked),
    cloud: bool = typer.Option(False, "-c", "--cloud", help="Compare the cache with a remote instead."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="Remote for --cloud.",
                                      autocompletion=complete_remote),
    jobs: int | None = typer.Option(None, "-j", "--jobs", min=1, max=256,
                                    help="With --cloud: parallel requests (default per backend)."),
    json_out: bool = JSON,
) -> None:
    """Show tracked data that changed since it was added, or is missing."""
    from dvlite.data.status import status as workspace_status

    repo = _repo()
    quiet = ui.Mode.quiet  # `-q`: nothing printed, the exit code tells (1: something changed)
    if cloud or remote:
        return _cloud_status(repo, targets or [], remote, quiet, json_out, jobs)
    from dvlite.outputs import PIPELINE_FILE, any_dvc_files, named, one_listing

    with one_listing(repo) as files:  # status writes none of them: one `git ls-files`
        with progress_bar("status", json_out) as bar:  # files the stat cache cannot vouch for
            results = workspace_status(repo, targets or [], bar)
        changed = [r for r in results if not r.clean]
        stages = []
        if not targets and named(files, PIPELINE_FILE):
            from dvlite.pipelines.stages import stage_status

            stages = stage_status(repo)
        stale = [s for s in stages if s.state == "stale"]
        unlinked_rels = []  # a commit from before the switch, not brought in
        if any_dvc_files(files):
            from dvlite.dvc.legacy import unlinked

            unlinked_rels = [o.rel for o in unlinked(repo)]
    if quiet:
        raise typer.Exit(1 if changed or stale or unlinked_rels else 0)
    if json_out:
        return ui.emit_json({"clean": not changed and not stale and not unlinked_rels, "paths": results,
                             "stages": stages, "dvc_not_in_cache": unlinked_rels})
    if unlinked_rels:
        ui.say(f"{len(unlinked_rels)} path(s) tracked by DVC's files are not in the cache yet "
               "(`dvlite checkout` takes them from the DVC cache, `dvlite pull` from the DVC remote):",
               style="yellow")
        ui.listing(unlinked_rels)
    if not results and not stages and not unlinked_rels:
        ui.say("No tracked data. Track some with `dvlite add PATH`.")
        return
    if not changed and results:
        ui.say("Data and pointers are up to date.")
    for r in changed:
        ui.say(f"{r.path}: {', '.join(r.flags)}", style="yellow")
        for kind in ("added", "modified", "deleted"):
            paths = [c.path for c in r.changes if c.kind == kind]
            if paths:
                ui.say(f"    {kind}: {len(paths)}")
                ui.listing(paths, indent="        ")
    if stages:
        ui.say("Pipeline stages:" if stale else "Pipeline stages are up to date.")
        for s in stale:
            ui.say(f"    {s.name}: stale ({'; '.join(s.reasons)})", style="yellow")


def _cloud_status(repo, targets: list[str], remote: str | None, quiet: bool, json_out: bool,
                  jobs: int | None) -> None:
    from dvlite.remotes.cloud import cloud_status

    name, results = cloud_status(repo, targets, remote, jobs)
    behind = [r for r in results if r.state != "in sync"]
    if quiet:
        raise typer.Exit(1 if behind else 0)
    if json_out:
        return ui.emit_json({"remote": name, "in_sync": not behind, "paths": results})
    if not behind:
        ui.say(f"Cache and remote {name} are in sync.")
        return
    for r in behind:
        ui.say(f"{r.path}: {r.state} ({r.local}/{r.objects} objects local, {r.on_remote}/{r.objects} on {name})",
               style="yellow")


# --- checkout ---------------------------------------------------------------------

def checkout(
    targets: list[str] = typer.Argument(None, help="Tracked paths (default: all).",
                                        autocompletion=complete_tracked),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite changes that are not in the cache."),
    relink: bool = typer.Option(False, "--relink", help="Re-apply the link type to every file."),
    json_out: bool = JSON,
) -> None:
    """Make the workspace match the pointers (after git checkout, pull, or a branch switch)."""
    from dvlite.data.checkout import checkout as checkout_paths
    from dvlite.sync import bring_in_legacy

    repo = _repo()
    with _locked(repo, "checkout"):
        legacy = bring_in_legacy(repo, targets or [], use_remote=False)
        with progress_bar("checkout", json_out) as bar:
            result = checkout_paths(repo, targets or [], force=force, relink=relink, progress=bar)
    if json_out:
        ui.emit_json({**ui.to_plain(result), "dvc_missing": legacy.missing} if legacy.missing else result)
    else:
        ui.say(
            f"{len(result.written)} written, {len(result.removed)} removed, "
            f"{result.unchanged} unchanged"
        )
        _report_problems(result.missing, "not in the cache")
        _report_problems(result.corrupt, "corrupt in the cache (not checked out)")
        _report_problems(legacy.missing, "tracked by DVC's files, not in the DVC cache (`dvlite pull` "
                                         "fetches them from the DVC remote)")
    if not result.ok or not legacy.ok:
        raise typer.Exit(4)


# --- diff, ls ---------------------------------------------------------------------

def diff(
    a_rev: str | None = typer.Argument(None, help="Old revision (default HEAD)."),
    b_rev: str | None = typer.Argument(None, help="New revision (default: the workspace)."),
    targets: list[str] | None = typer.Option(None, "--targets", help="Limit to these paths (repeatable)."),
    table: bool = typer.Option(False, "--table", help="Also diff inside modified tables: schema and rows."),
    key: str | None = typer.Option(None, "--key", help="With --table: key column(s), comma-separated."),
    md: bool = typer.Option(False, "--md", help="With --table: the table diffs as Markdown."),
    json_out: bool = JSON,
) -> None:
    """Files added, deleted, modified and renamed in tracked data between revisions."""
    from dvlite.cli.tables import key_columns, render_diff
    from dvlite.data.history import diff_revs
    from dvlite.errors import BadInputError
    from dvlite.outputs import to_rel
    from dvlite.tables.ops import diff_changed

    repo = _repo()
    if (key or md) and not table:
        raise BadInputError("--key and --md go with --table")
    paths = [to_rel(repo, t) for t in targets or []]
    paths = [] if "" in paths else paths  # the repository root: everything
    result = diff_revs(repo, a_rev, b_rev, paths)
    tables = diff_changed(repo, a_rev, b_rev, paths, key_columns(key)) if table else []
    if json_out:
        return ui.emit_json({"a": result.a, "b": result.b, "changes": result.changes,
                             "unreadable": result.unreadable, "tables": tables} if table else result)
    if md:
        for t in tables:
            render_diff(t, md=True)
        return
    for path in result.unreadable:
        ui.error(f"{path}: manifest not in the cache; its files are not compared")
    if not result.changes:
        ui.say(f"No changes between {result.a} and {result.b}.")
        return
    rows = []
    for c in result.changes:
        name = f"{c.old_path} -> {c.path}" if c.kind == "renamed" else c.path
        size = ui.human_size(c.size)
        if c.kind == "modified" and c.old_size is not None and c.old_size != c.size:
            size = f"{ui.human_size(c.old_size)} -> {size}"
        rows.append([c.kind, name, size])
    ui.table(["change", "path", "size"], rows)
    counts = {k: sum(c.kind == k for c in result.changes) for k in ("added", "deleted", "modified", "renamed")}
    ui.say(", ".join(f"{n} {k}" for k, n in counts.items()))
    for t in tables:
        ui.say("")
        render_diff(t, md=False)


def ls_cmd(
    path: str | None = typer.Argument(None, help="Limit to this path."),
    rev: str | None = typer.Option(None, "--rev", help="List at a git revision."),
    recursive: bool = typer.Option(False, "-R", "--recursive", help="List files inside tracked directories."),
    json_out: bool = JSON,
) -> None:
    """List tracked paths, with sizes and whether each is in the cache."""
    from dvlite.data.history import ls

    repo = _repo()
    items = ls(repo, path, rev, recursive)
    if json_out:
        return ui.emit_json(items)
    rows = [
        [i.path + ("/" if i.kind == "dir" else ""), ui.human_size(i.size),
         str(i.files) if i.kind == "dir" else "", "yes" if i.in_cache else "no"]
        for i in items
    ]
    ui.table(["path", "size", "files", "in cache"], rows)


# --- remove, move, unprotect ------------------------------------------------------

def remove(
    pointers: list[str] = typer.Argument(..., help="Pointer files (PATH.dvl) or tracked paths.",
                                         autocompletion=complete_tracked),
    json_out: bool = JSON,
) -> None:
    """Stop tracking: remove the pointer and its .gitignore line, keep the data."""
    from dvlite.data import edit

    repo = _repo()
    with _locked(repo, "remove"):
        results = edit.remove(repo, pointers)
    if json_out:
        return ui.emit_json({"removed": results})
    for r in results:
        ui.say(f"stopped tracking {r.path} (data kept)")
    hint = [_cwd_rel(repo, r.pointer_path) for r in results]
    hint += [_cwd_rel(repo, r.gitignore) for r in results if r.gitignore]
    ui.git_hint(hint)


def move(src: str = typer.Argument(..., autocompletion=complete_tracked), dst: str = typer.Argument(...),
         json_out: bool = JSON) -> None:
    """Move tracked data and its pointer together."""
    from dvlite.data import edit

    repo = _repo()
    with _locked(repo, "move"):
        r = edit.move(repo, src, dst)
    if json_out:
        return ui.emit_json(r)
    ui.say(f"moved {r.src} -> {r.dst}")
    ui.git_hint([_cwd_rel(repo, r.src + ".dvl"), _cwd_rel(repo, r.dst + ".dvl")]
                + [_cwd_rel(repo, g) for g in r.gitignores])


def unprotect(paths: list[str] = typer.Argument(..., autocompletion=complete_tracked),
              json_out: bool = JSON) -> None:
    """Replace linked (read-only) workspace files with private writable copies."""
    from dvlite.data import edit

    repo = _repo()
    with _locked(repo, "unprotect"):
        done = edit.unprotect(repo, paths)
    if json_out:
        return ui.emit_json({"unprotected": [repo.rel(p) if os.path.isabs(p) else p for p in done]})
    ui.say(f"{len(done)} file(s) made writable")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(add)
    app.command()(status)
    app.command()(checkout)
    app.command()(diff)
    app.command('ls')(ls_cmd)
    app.command()(remove)
    app.command()(move)
    app.command()(unprotect)
