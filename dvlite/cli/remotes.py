"""`dvlite remote ...` and the transfer commands: push, fetch, pull."""

from __future__ import annotations

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import (
    JSON,
    REVS,
    SCOPE_OPTIONS,
    complete_remote,
    complete_tracked,
    config_for,
    find_repo,
    locked,
    one_scope,
    progress_bar,
    report_problems,
)

REMOTE = typer.Option(None, "-r", "--remote", help="Remote name (default: core.remote).",
                      autocompletion=complete_remote)
TARGETS = typer.Argument(None, help="Pointers, tracked paths, or files inside them.",
                         autocompletion=complete_tracked)
JOBS = typer.Option(None, "-j", "--jobs", min=1, max=256, help="Parallel transfers (default per backend).")
RUN_CACHE = typer.Option(False, "--run-cache", help="Also move the pipeline run cache (records and outs).")


def _cfg():
    return find_repo(check_config=False).config


def _scoped(system: bool, global_: bool, project: bool) -> tuple[object, str | None]:
    """The config to edit and the scope named (None: the repository's files, as before)."""
    scope = one_scope(system=system, **{"global": global_}, project=project)
    return (config_for(scope) if scope else _cfg()), scope


SYSTEM, GLOBAL, PROJECT = SCOPE_OPTIONS["system"], SCOPE_OPTIONS["global"], SCOPE_OPTIONS["project"]


def remote_add(
    name: str = typer.Argument(...),
    url: str = typer.Argument(..., help="A path, file://, s3://, gs://, az://, sftp://, webdav://, http(s)://"),
    default: bool = typer.Option(False, "-d", "--default", help="Make it the default remote."),
    local: bool = typer.Option(False, "--local", help="Write to .dvlite/config.local (untracked)."),
    system: bool = SYSTEM,
    global_: bool = GLOBAL,
    project: bool = PROJECT,
    force: bool = typer.Option(False, "-f", "--force", help="Replace an existing remote of that name."),
) -> None:
    """Add a remote (--global: for every repository of yours)."""
    from dvlite.remotes.config import add_remote

    cfg, scope = _scoped(system, global_, project)
    add_remote(cfg, name, url, default=default, local=local, force=force, scope=scope)
    ui.say(f"added remote {name} -> {url}" + (" (default)" if default else ""))


def remote_list(json_out: bool = JSON) -> None:
    """List remotes."""
    from dvlite.remotes.config import remote_configs

    cfg = _cfg()
    remotes = remote_configs(cfg)
    default = cfg.get("core.remote")
    if json_out:
        return ui.emit_json([{"name": r.name, "url": r.url, "default": r.name == default} for r in remotes.values()])
    if not remotes:
        ui.say("No remotes. Add one with `dvlite remote add -d NAME URL`.")
    for r in remotes.values():
        ui.say(f"{r.name}\t{r.url}" + ("\t(default)" if r.name == default else ""))


def remote_remove(name: str = typer.Argument(..., autocompletion=complete_remote),
                  system: bool = SYSTEM, global_: bool = GLOBAL, project: bool = PROJECT) -> None:
    """Remove a remote (and its local options)."""
    from dvlite.remotes.config import remove_remote

    cfg, scope = _scoped(system, global_, project)
    remove_remote(cfg, name, scope)
    ui.say(f"removed remote {name}")


def remote_rename(old: str = typer.Argument(..., autocompletion=complete_remote),
                  new: str = typer.Argument(...),
                  system: bool = SYSTEM, global_: bool = GLOBAL, project: bool = PROJECT) -> None:
    """Rename a remote."""
    from dvlite.remotes.config import rename_remote

    cfg, scope = _scoped(system, global_, project)
    rename_remote(cfg, old, new, scope)
    ui.say(f"renamed remote {old} -> {new}")


def remote_default(
    name: str | None = typer.Argument(None, help="Set the default; without it, print it.",
                                      autocompletion=complete_remote),
    unset: bool = typer.Option(False, "--unset", help="Clear the default."),
    system: bool = SYSTEM,
    global_: bool = GLOBAL,
    project: bool = PROJECT,
) -> None:
    """Show or set the default remote."""
    from dvlite.remotes.config import set_default

    cfg, scope = _scoped(system, global_, project)
    if name is None and not unset:
        current = cfg.get("core.remote")
        if current is None:
            ui.say("No default remote.")
            raise typer.Exit(1)
        ui.say(current)
        return
    set_default(cfg, None if unset else name, scope)


def remote_modify(
    name: str = typer.Argument(..., autocompletion=complete_remote),
    key: str = typer.Argument(..., help="url, or an fsspec option: endpoint_url, key, secret, port, ..."),
    value: str | None = typer.Argument(None),
    local: bool = typer.Option(False, "--local", help="Write to .dvlite/config.local (for secrets)."),
    system: bool = SYSTEM,
    global_: bool = GLOBAL,
    project: bool = PROJECT,
    unset: bool = typer.Option(False, "--unset", help="Remove the option."),
) -> None:
    """Set or unset one option of a remote."""
    from dvlite.remotes.config import modify_remote

    cfg, scope = _scoped(system, global_, project)
    modify_remote(cfg, name, key, value, local=local, unset=unset, scope=scope)


# --- transfers ------------------------------------------------------------------------

def _revs(all_branches: bool, all_tags: bool, all_commits: bool):
    from dvlite.data.reach import Revisions

    return Revisions(all_branches, all_tags, all_commits, experiments=False)  # exp push sends those


def push(
    targets: list[str] = TARGETS,
    remote: str | None = REMOTE,
    jobs: int | None = JOBS,
    all_branches: bool = REVS["all_branches"],
    all_tags: bool = REVS["all_tags"],
    all_commits: bool = REVS["all_commits"],
    json_out: bool = JSON,
    run_cache: bool = RUN_CACHE,
) -> None:
    """Upload the objects the pointers name and the remote lacks."""
    from dvlite import sync

    repo = find_repo()
    with locked(repo, "push"), progress_bar("push", json_out) as cb:
        result = sync.push(repo, targets or [], remote, jobs, _revs(all_branches, all_tags, all_commits), cb,
                           run_cache=run_cache)
    if json_out:
        ui.emit_json(result)
    else:
        if result.uploaded:
            ui.say(f"pushed {result.uploaded} object(s), {ui.human_size(result.uploaded_bytes)} "
                   f"to {result.remote} ({result.present} already there)")
        elif not result.missing_locally and not result.failed:
            ui.say(f"Everything is already on {result.remote}.")
        else:
            ui.say(f"Nothing pushed to {result.remote}.")
        _report_missing(result.missing_locally, "not in the local cache, not pushed")
        if result.run_records:
            ui.say(f"pushed {result.run_records} run-cache record(s)")
        for path in result.skipped_manifests:
            ui.note(f"{path}: its manifest waits until every file of the directory is on the remote")
        for digest, reason in result.failed:
            ui.error(f"failed: {digest}: {reason}")
    if not result.ok:
        raise typer.Exit(1)


def fetch(
    targets: list[str] = TARGETS,
    remote: str | None = REMOTE,
    jobs: int | None = JOBS,
    all_branches: bool = REVS["all_branches"],
    all_tags: bool = REVS["all_tags"],
    all_commits: bool = REVS["all_commits"],
    json_out: bool = JSON,
    run_cache: bool = RUN_CACHE,
) -> None:
    """Download the objects the pointers name into the cache."""
    from dvlite import sync

    repo = find_repo()
    with locked(repo, "fetch"), progress_bar("fetch", json_out) as cb:
        result = sync.fetch(repo, targets or [], remote, jobs, _revs(all_branches, all_tags, all_commits), cb,
                            run_cache=run_cache)
    if json_out:
        ui.emit_json(result)
    else:
        _render_fetch(result)
    if not result.ok:
        raise typer.Exit(1)


def _render_fetch(result) -> None:
    if result.downloaded:
        ui.say(f"fetched {result.downloaded} object(s), {ui.human_size(result.downloaded_bytes)} "
               f"from {result.remote}")
    elif result.ok:
        ui.say("Everything is already in the cache.")
    if result.run_records:
        ui.say(f"fetched {result.run_records} run-cache record(s)")
    _report_missing(result.missing_on_remote, f"missing on {result.remote}")
    for digest, path in result.corrupt_on_remote:
        ui.error(f"corrupt object on {result.remote}: {path} (not stored)")
    for digest, reason in result.failed:
        ui.error(f"failed: {digest}: {reason}")


def _report_missing(items: list[tuple[str, list[str]]], what: str) -> None:
    report_problems([(", ".join(paths), digest) for digest, paths in items], what)


def pull(
    targets: list[str] = TARGETS,
    remote: str | None = REMOTE,
    jobs: int | None = JOBS,
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite workspace changes."),
    json_out: bool = JSON,
    run_cache: bool = RUN_CACHE,
) -> None:
    """Fetch, then check out: the workspace gets the data the pointers name."""
    from dvlite import sync
    from dvlite.data import checkout as checkout_mod
    from dvlite.data.reach import Revisions

    repo = find_repo()
    with locked(repo, "pull"):
        with progress_bar("pull", json_out) as cb:
            fetched = sync.fetch(repo, targets or [], remote, jobs, Revisions(), cb, run_cache=run_cache)
        checked = checkout_mod.checkout(repo, targets or [], force=force)
    if json_out:
        ui.emit_json({"fetch": fetched, "checkout": checked})
    elif fetched.ok and checked.ok and not (fetched.downloaded or fetched.run_records
                                            or checked.written or checked.removed):
        ui.say("Everything is up to date.")
    else:
        _render_fetch(fetched)
        ui.say(f"{len(checked.written)} written, {len(checked.removed)} removed, {checked.unchanged} unchanged")
        if not fetched.ok or not checked.ok:
            missing = {d for d, _ in fetched.missing_on_remote}
            report_problems([(p, d) for p, d in checked.missing if d not in missing], "not in the cache")
            report_problems(checked.corrupt, "corrupt in the cache (not checked out)")
    if not fetched.ok or not checked.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    remote_app = typer.Typer(help="Manage remotes (where data is pushed and pulled).", no_args_is_help=True)
    remote_app.command("add")(remote_add)
    remote_app.command("list")(remote_list)
    remote_app.command("remove")(remote_remove)
    remote_app.command("rename")(remote_rename)
    remote_app.command("default")(remote_default)
    remote_app.command("modify")(remote_modify)
    app.add_typer(remote_app, name="remote")
    for command in (push, fetch, pull):
        app.command()(command)

