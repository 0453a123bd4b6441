"""The typer application: each command parses options, calls one operation, renders the result."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from dvlite import __version__
from dvlite.cli import output as ui
from dvlite.cli.common import JSON, REVS
from dvlite.cli.common import cwd_rel as _cwd_rel
from dvlite.cli.common import find_repo as _repo
from dvlite.cli.common import locked as _locked
from dvlite.cli.common import report_problems as _report_problems
from dvlite.errors import ChangesWouldBeLostError, DvliteError

app = typer.Typer(
    name="dvlite",
    help="Version data and models beside your code in git.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)



def _version(value: bool) -> None:
    if value:
        ui.say(f"dvlite {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """dvlite: data and model versioning beside git."""


# --- init -------------------------------------------------------------------------

@app.command()
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

@app.command()
def add(
    paths: list[str] = typer.Argument(..., help="Files, directories or glob patterns."),
    json_out: bool = JSON,
) -> None:
    """Track files and directories: store them in the cache and write PATH.dvl pointers."""
    from dvlite import track

    repo = _repo()
    with _locked(repo, "add"):
        results = track.add(repo, paths)
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

@app.command()
def status(
    targets: list[str] = typer.Argument(None, help="Tracked paths (default: all)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print nothing; exit 1 if anything changed."),
    cloud: bool = typer.Option(False, "-c", "--cloud", help="Compare the cache with a remote instead."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="Remote for --cloud."),
    json_out: bool = JSON,
) -> None:
    """Show tracked data that changed since it was added, or is missing."""
    from dvlite import track

    repo = _repo()
    if cloud or remote:
        return _cloud_status(repo, targets or [], remote, quiet, json_out)
    results = track.status(repo, targets or [])
    changed = [r for r in results if not r.clean]
    stages = []
    if not targets and os.path.exists(repo.abs("dvlite.yaml")):  # no pipeline: no import cost
        from dvlite.run import stage_status

        stages = stage_status(repo)
    stale = [s for s in stages if s.state == "stale"]
    if quiet:
        raise typer.Exit(1 if changed or stale else 0)
    if json_out:
        return ui.emit_json({"clean": not changed and not stale, "paths": results, "stages": stages})
    if not results and not stages:
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


def _cloud_status(repo, targets: list[str], remote: str | None, quiet: bool, json_out: bool) -> None:
    from dvlite.sync import cloud_status

    name, results = cloud_status(repo, targets, remote)
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

@app.command()
def checkout(
    targets: list[str] = typer.Argument(None, help="Tracked paths (default: all)."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite changes that are not in the cache."),
    relink: bool = typer.Option(False, "--relink", help="Re-apply the link type to every file."),
    json_out: bool = JSON,
) -> None:
    """Make the workspace match the pointers (after git checkout, pull, or a branch switch)."""
    from dvlite import checkout as checkout_mod

    repo = _repo()
    with _locked(repo, "checkout"):
        result = checkout_mod.checkout(repo, targets or [], force=force, relink=relink)
    if json_out:
        ui.emit_json(result)
    else:
        ui.say(
            f"{len(result.written)} written, {len(result.removed)} removed, "
            f"{result.unchanged} unchanged"
        )
        _report_problems(result.missing, "not in the cache")
        _report_problems(result.corrupt, "corrupt in the cache (not checked out)")
    if not result.ok:
        raise typer.Exit(4)


# --- diff, ls ---------------------------------------------------------------------

@app.command()
def diff(
    a_rev: str | None = typer.Argument(None, help="Old revision (default HEAD)."),
    b_rev: str | None = typer.Argument(None, help="New revision (default: the workspace)."),
    json_out: bool = JSON,
) -> None:
    """Files added, deleted, modified and renamed in tracked data between revisions."""
    from dvlite.history import diff_revs

    repo = _repo()
    result = diff_revs(repo, a_rev, b_rev)
    if json_out:
        return ui.emit_json(result)
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


@app.command("ls")
def ls_cmd(
    path: str | None = typer.Argument(None, help="Limit to this path."),
    rev: str | None = typer.Option(None, "--rev", help="List at a git revision."),
    recursive: bool = typer.Option(False, "-R", "--recursive", help="List files inside tracked directories."),
    json_out: bool = JSON,
) -> None:
    """List tracked paths, with sizes and whether each is in the cache."""
    from dvlite.history import ls

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


# --- gc, fsck ---------------------------------------------------------------------

@app.command()
def gc(
    force: bool = typer.Option(False, "-f", "--force", help="Delete (without it, only list)."),
    all_branches: bool = REVS["all_branches"],
    all_tags: bool = REVS["all_tags"],
    all_commits: bool = REVS["all_commits"],
    cloud: bool = typer.Option(False, "-c", "--cloud", help="Collect on a remote instead of the cache."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="Remote for --cloud."),
    projects: list[str] = typer.Option(
        None, "-p", "--projects",
        help="Every other project that uses this cache (cache.dir); replaces the cache's record."),
    json_out: bool = JSON,
) -> None:
    """List (or with --force delete) objects no kept pointer needs (workspace + chosen revisions),
    in this project and in every other project that uses the same cache."""
    from dvlite.maintain import Revisions
    from dvlite.maintain import gc as run_gc

    repo = _repo()
    revs = Revisions(all_branches, all_tags, all_commits)
    if cloud or remote:
        return _cloud_gc(repo, revs, remote, force, json_out)
    with _locked(repo, "gc"):
        result = run_gc(repo, revs, force, projects or None)
    if json_out:
        return ui.emit_json({"unused": result.unused, "total": result.total, "removed": result.removed,
                             "projects": result.projects, "orphan_packs": result.orphan_packs})
    if result.projects:
        ui.say(f"Keeping the data of {len(result.projects)} other project(s) using this cache: "
               + ", ".join(result.projects), style="dim")
    if not result.unused and not result.orphan_packs:
        ui.say("Nothing to collect: every cache object is in use.")
        return
    verb = "Removed" if force else "Would remove"
    ui.say(f"{verb} {len(result.unused)} object(s), {ui.human_size(result.total)}"
           + (f", and {len(result.orphan_packs)} pack(s) without an index." if result.orphan_packs else "."))
    if not force:
        ui.listing([f"{d} ({ui.human_size(s)})" for d, s in result.unused])
        ui.say("Dry run: nothing deleted. Run `dvlite gc --force` to delete.", style="dim")


def _cloud_gc(repo, revs, remote: str | None, force: bool, json_out: bool) -> None:
    from dvlite.sync import cloud_gc

    with _locked(repo, "gc --cloud"):
        result = cloud_gc(repo, revs, remote, force)
    if json_out:
        return ui.emit_json(result)
    if not result.unused and not result.temp_files:
        ui.say(f"Nothing to collect on {result.remote}: every object is in use.")
        return
    verb = "Removed" if force else "Would remove"
    ui.say(f"{verb} {len(result.unused)} object(s), {ui.human_size(result.unused_bytes)}, and "
           f"{len(result.temp_files)} leftover temp file(s) from {result.remote}.")
    if result.repacked or result.dropped:
        how = "Rewrote" if force else "Would rewrite"
        ui.say(f"{how} {len(result.repacked)} pack(s) without their unused objects; "
               f"{'dropped' if force else 'would drop'} {len(result.dropped)} pack(s) holding "
               "only unused objects.")
    if not force:
        ui.listing(result.unused)
        ui.say(f"Dry run: nothing deleted. Run `dvlite gc --cloud -r {result.remote} --force` to delete.",
               style="dim")


@app.command()
def fsck(
    repair: bool = typer.Option(False, "--repair",
                                help="Move corrupt objects and damaged packs aside (to cache/corrupt/)."),
    cloud: bool = typer.Option(False, "-c", "--cloud", help="Check what a remote holds instead."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="Remote for --cloud."),
    json_out: bool = JSON,
) -> None:
    """Re-hash every cache object; report corrupt and missing ones, damaged pack indexes, and
    pointers or manifests that cannot be used."""
    from dvlite.maintain import fsck as run_fsck

    repo = _repo()
    if cloud or remote:
        return _cloud_fsck(repo, remote, repair, json_out)
    with _locked(repo, "fsck"):
        result = run_fsck(repo, repair)
    if json_out:
        ui.emit_json(result)
    else:
        _render_fsck(result, repair)
    if not result.ok:
        raise typer.Exit(4)


def _render_fsck(result, repair: bool) -> None:
    ui.say(f"Checked {result.checked} object(s).")
    for problem in result.problems:
        ui.error(problem)
    for pack, why in result.damaged_packs:
        ui.error(f"damaged pack: {pack}: {why}"
                 + (" (moved aside)" if repair else ""))
    for label, items in (("corrupt", result.corrupt), ("missing", result.missing)):
        for digest, paths in items:
            ui.error(f"{label}: {digest} used by {', '.join(paths) or 'nothing in the workspace'}")
    if (result.corrupt or result.damaged_packs) and repair:
        ui.say("Corrupt objects and damaged packs moved aside; `dvlite pull` (or `dvlite add`) "
               "brings their data back.")
    elif result.damaged_packs or result.corrupt:
        ui.say("hint: `dvlite fsck --repair` moves them aside; then `dvlite pull` (or `dvlite add`) "
               "brings their data back", style="yellow")
    if result.ok:
        ui.say("No problems found.")


def _cloud_fsck(repo, remote: str | None, repair: bool, json_out: bool) -> None:
    from dvlite.cloud_fsck import cloud_fsck

    with _locked(repo, "fsck --cloud"):
        result = cloud_fsck(repo, remote, repair)
    if json_out:
        ui.emit_json(result)
    else:
        ui.say(f"Checked {result.packs} pack(s) and {result.objects} object(s) on {result.remote}.")
        for pack, why in result.damaged_packs:
            ui.error(f"damaged pack {pack}: {why}")
        for _digest, where in result.corrupt:
            ui.error(f"corrupt: {where}")
        if repair:
            if result.rewritten_packs or result.replaced:
                ui.say(f"Repaired: {len(result.rewritten_packs)} pack(s) rewritten, "
                       f"{len(result.replaced)} object(s) put back from the local cache.")
            if result.pushed:
                ui.say(f"Pushed {result.pushed} object(s) the workspace needs.")
            for digest in result.lost:
                ui.error(f"lost: {digest} was damaged on {result.remote} and is not in the local cache")
        elif not result.ok:
            ui.say(f"hint: `dvlite fsck --cloud -r {result.remote} --repair` mends it from the local "
                   "cache", style="yellow")
        if result.ok:
            ui.say("No problems found.")
    if not result.ok:
        raise typer.Exit(4)


# --- remove, move, unprotect ------------------------------------------------------

@app.command()
def remove(
    pointers: list[str] = typer.Argument(..., help="Pointer files (PATH.dvl) or tracked paths."),
) -> None:
    """Stop tracking: remove the pointer and its .gitignore line, keep the data."""
    from dvlite import track

    repo = _repo()
    with _locked(repo, "remove"):
        results = track.remove(repo, pointers)
    for r in results:
        ui.say(f"stopped tracking {r.path} (data kept)")
    hint = [_cwd_rel(repo, r.pointer_path) for r in results]
    hint += [_cwd_rel(repo, r.gitignore) for r in results if r.gitignore]
    ui.git_hint(hint)


@app.command()
def move(src: str = typer.Argument(...), dst: str = typer.Argument(...)) -> None:
    """Move tracked data and its pointer together."""
    from dvlite import track

    repo = _repo()
    with _locked(repo, "move"):
        r = track.move(repo, src, dst)
    ui.say(f"moved {r.src} -> {r.dst}")
    ui.git_hint([_cwd_rel(repo, r.src + ".dvl"), _cwd_rel(repo, r.dst + ".dvl")]
                + [_cwd_rel(repo, g) for g in r.gitignores])


@app.command()
def unprotect(paths: list[str] = typer.Argument(...)) -> None:
    """Replace linked (read-only) workspace files with private writable copies."""
    from dvlite import track

    repo = _repo()
    with _locked(repo, "unprotect"):
        done = track.unprotect(repo, paths)
    ui.say(f"{len(done)} file(s) made writable")


# --- config, doctor -----------------------------------------------------------------

@app.command()
def config(
    key: str | None = typer.Argument(None, help="section.option, e.g. cache.type"),
    value: str | None = typer.Argument(None),
    local: bool = typer.Option(False, "--local", help="Use .dvlite/config.local (untracked)."),
    list_all: bool = typer.Option(False, "-l", "--list", help="List every setting."),
    unset: bool = typer.Option(False, "--unset", help="Remove the key."),
) -> None:
    """Get or set configuration, git-style."""
    from dvlite.errors import BadInputError

    repo = _repo(check_config=False)  # `config` is how a bad setting gets fixed
    cfg = repo.config
    if list_all or key is None:
        for k, v in cfg.items("local" if local else "merged").items():
            ui.say(f"{k}={v}")
        return
    if unset:
        if not cfg.unset(key, local):
            raise BadInputError(f"{key} is not set")
        return
    if value is None:
        current = cfg.get(key)
        if current is None:
            raise typer.Exit(1)
        ui.say(current)
        return
    cfg.set(key, value, local)


@app.command()
def doctor(json_out: bool = JSON) -> None:
    """Versions, installed remote backends, working link types, repository paths."""
    from dvlite.doctor import report

    info = report(os.getcwd())
    if json_out:
        return ui.emit_json(info)
    ui.say(f"dvlite {info['dvlite']} on Python {info['python']} ({info['platform']})")
    ui.say(f"git: {info['git'] or 'not found'}")
    ui.say("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    backends = [f"{k} ({v})" for k, v in info["backends"].items() if v]
    ui.say("remote backends: local" + ("".join(", " + b for b in backends)))
    missing = [k for k, v in info["backends"].items() if not v]
    if missing:
        ui.say(f"not installed: {', '.join(missing)}", style="dim")
    if info["repo"] is None:
        ui.say("repository: none here")
        return
    ui.say(f"repository: {info['repo']}")
    ui.say(f"cache: {info['cache']}")
    works = [k for k, ok in info["link_types"].items() if ok]
    ui.say(f"link types that work here: {', '.join(works)} (cache.type = {info['cache.type']})")


from dvlite.cli import data as _data
from dvlite.cli import gitside as _gitside
from dvlite.cli import pipeline as _pipeline
from dvlite.cli.remotes import register as _register_remotes

_register_remotes(app)
_pipeline.register(app)
_gitside.register(app)
_data.register(app)


# --- entry point ----------------------------------------------------------------------

class Interrupted(BaseException):
    """Ctrl-C, raised in place of KeyboardInterrupt so that no library `except` swallows it
    and typer does not turn it into a silent exit."""


def _on_sigint(signum, frame) -> None:
    raise Interrupted()


def _click_exceptions():
    """The click exception classes typer raises (typer >= 0.26 vendors click as typer._click)."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer on the real click
        from click import exceptions
    return exceptions


def main() -> None:
    import signal

    click = _click_exceptions()
    argv = sys.argv[1:]
    verbose = any(a in ("-v", "--verbose") for a in argv)
    for stream in (sys.stdout, sys.stderr):  # print non-UTF-8 file names as their own bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    as_json = "--json" in argv
    from dvlite.fsutil import tune_allocator

    tune_allocator()
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        code = app(prog_name="dvlite", standalone_mode=False)
    except ChangesWouldBeLostError as exc:
        _fail(exc, verbose, as_json, paths=exc.paths)
    except DvliteError as exc:
        _fail(exc, verbose, as_json)
    except (Interrupted, KeyboardInterrupt, typer.Abort):
        ui.error("interrupted")
        sys.exit(130)
    except click.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage: unknown option, missing argument
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "dvlite"
        _fail(DvliteError(exc.format_message(), hint=f"see `{command} --help`"),
              verbose, as_json, code=exc.exit_code)
    except OSError as exc:
        _fail(_os_error(exc), verbose, as_json, cause=exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        _fail(
            DvliteError(f"unexpected {type(exc).__name__}: {exc}",
                        hint="run again with --verbose for the traceback and report it"),
            verbose, as_json, cause=exc,
        )
    sys.exit(code if isinstance(code, int) else 0)


def _os_error(exc: OSError) -> DvliteError:
    import errno

    where = f": {exc.filename}" if exc.filename else ""
    hint = None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space (`dvlite gc` lists what the cache no longer needs), then run it again"
    return DvliteError(f"{exc.strerror or exc}{where}", hint=hint)


def _fail(exc: DvliteError, verbose: bool, as_json: bool, paths=None, cause=None,
          code: int | None = None) -> None:
    if verbose:
        traceback.print_exception(cause or exc)
    code = exc.exit_code if code is None else code
    if as_json:
        ui.emit_json({"error": exc.message, "hint": exc.hint, "exit_code": code, "paths": paths})
    else:
        ui.error(exc.message, exc.hint)
        if paths:
            ui.listing(paths, cap=20, console=ui.err)
    sys.exit(code)
