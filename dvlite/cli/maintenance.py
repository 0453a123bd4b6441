"""Upkeep: gc, fsck (of the cache or a remote), config (in its four scopes), cache dir,
doctor."""

from __future__ import annotations

import os

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, REVS, SCOPE_OPTIONS, complete_remote, progress_bar
from dvlite.cli.common import config_for as _config_for
from dvlite.cli.common import find_repo as _repo
from dvlite.cli.common import locked as _locked
from dvlite.cli.common import one_scope as _one_scope

# --- gc, fsck ---------------------------------------------------------------------

def gc(
    force: bool = typer.Option(False, "-f", "--force", help="Delete (without it, only list)."),
    all_branches: bool = REVS["all_branches"],
    all_tags: bool = REVS["all_tags"],
    all_commits: bool = REVS["all_commits"],
    cloud: bool = typer.Option(False, "-c", "--cloud", help="Collect on a remote instead of the cache."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="Remote for --cloud.",
                                      autocompletion=complete_remote),
    jobs: int | None = typer.Option(None, "-j", "--jobs", min=1, max=256,
                                    help="With --cloud: parallel requests (default per backend)."),
    not_experiments: bool = typer.Option(False, "--not-experiments",
                                         help="Do not keep the data of experiments (refs/exps/)."),
    projects: list[str] = typer.Option(
        None, "-p", "--projects",
        help="Every other project that uses this cache (cache.dir); replaces the cache's record."),
    json_out: bool = JSON,
) -> None:
    """List (or with --force delete) objects no kept pointer needs (workspace + chosen revisions),
    in this project and in every other project that uses the same cache."""
    from dvlite.data.gc import gc as run_gc
    from dvlite.data.reach import Revisions

    repo = _repo()
    revs = Revisions(all_branches, all_tags, all_commits, experiments=not not_experiments)
    if cloud or remote:
        return _cloud_gc(repo, revs, remote, force, json_out, jobs)
    with _locked(repo, "gc"), progress_bar("gc", json_out) as bar:
        result = run_gc(repo, revs, force, projects or None, bar)
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


def _cloud_gc(repo, revs, remote: str | None, force: bool, json_out: bool, jobs: int | None) -> None:
    from dvlite.remotes.cloud import cloud_gc

    with _locked(repo, "gc --cloud"):
        result = cloud_gc(repo, revs, remote, force, jobs)
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


def fsck(
    repair: bool = typer.Option(False, "--repair",
                                help="Move corrupt objects and damaged packs aside (to cache/corrupt/)."),
    cloud: bool = typer.Option(False, "-c", "--cloud", help="Check what a remote holds instead."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="Remote for --cloud."),
    jobs: int | None = typer.Option(None, "-j", "--jobs", min=1, max=256,
                                    help="With --cloud: parallel requests (default per backend)."),
    json_out: bool = JSON,
) -> None:
    """Re-hash every cache object; report corrupt and missing ones, damaged pack indexes, and
    pointers or manifests that cannot be used."""
    from dvlite.data.fsck import fsck as run_fsck

    repo = _repo()
    if cloud or remote:
        return _cloud_fsck(repo, remote, repair, json_out, jobs)
    with _locked(repo, "fsck"), progress_bar("fsck", json_out) as bar:
        result = run_fsck(repo, repair, bar)
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


def _cloud_fsck(repo, remote: str | None, repair: bool, json_out: bool, jobs: int | None) -> None:
    from dvlite.remotes.fsck import cloud_fsck

    with _locked(repo, "fsck --cloud"):
        result = cloud_fsck(repo, remote, repair, jobs)
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


# --- config, cache dir --------------------------------------------------------------

def config(
    key: str | None = typer.Argument(None, help="section.option, e.g. cache.type"),
    value: str | None = typer.Argument(None),
    system: bool = SCOPE_OPTIONS["system"],
    global_: bool = SCOPE_OPTIONS["global"],
    project: bool = SCOPE_OPTIONS["project"],
    local: bool = SCOPE_OPTIONS["local"],
    list_all: bool = typer.Option(False, "-l", "--list", help="List every setting."),
    show_origin: bool = typer.Option(False, "--show-origin",
                                     help="With --list (or a KEY): the file each value comes from."),
    unset: bool = typer.Option(False, "--unset", help="Remove the key."),
    json_out: bool = JSON,
) -> None:
    """Get or set configuration, git-style: system < global < project < local."""
    from dvlite.errors import BadInputError

    scope = _one_scope(system=system, **{"global": global_}, project=project, local=local)
    cfg = _config_for(scope)
    if list_all or key is None:
        settings = cfg.settings(scope)
        if json_out:
            return ui.emit_json(settings)
        for s in settings:
            line = f"{s.key}={s.value}"
            ui.say(f"file:{_shown(s.path)}\t{line}" if show_origin else line)
        return
    if unset:
        if not cfg.unset(key, scope=scope or "project"):
            raise BadInputError(f"{key} is not set in the {scope or 'project'} config")
        return
    if value is None:
        found = cfg.settings(scope) if scope else None
        setting = next((s for s in found if s.key == key), None) if scope else cfg.origin(key)
        current = setting.value if setting else (None if scope else cfg.get(key))
        if current is None:
            raise typer.Exit(1)
        if json_out:
            return ui.emit_json({"key": key, "value": current,
                                 "scope": setting.scope if setting else "default",
                                 "path": setting.path if setting else None})
        ui.say(f"file:{_shown(setting.path)}\t{current}" if show_origin and setting else current)
        return
    cfg.set(key, value, scope=scope or "project")


def _shown(path: str) -> str:
    """A config file as `--show-origin` names it: relative when it is below the current directory."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def cache_dir(
    path: str | None = typer.Argument(None, help="The new cache directory (relative paths: to "
                                                 "the current directory; stored relative to "
                                                 "the config file)."),
    system: bool = SCOPE_OPTIONS["system"],
    global_: bool = SCOPE_OPTIONS["global"],
    project: bool = SCOPE_OPTIONS["project"],
    local: bool = SCOPE_OPTIONS["local"],
    unset: bool = typer.Option(False, "--unset", help="Go back to .dvlite/cache."),
    json_out: bool = JSON,
) -> None:
    """Show or set where the cache is (`cache.dir`)."""
    from dvlite.config import cache_dir as effective

    scope = _one_scope(system=system, **{"global": global_}, project=project, local=local)
    cfg = _config_for(scope)
    if unset:
        cfg.unset("cache.dir", scope=scope or "project")
    elif path is not None:
        target = cfg.file(scope or "project").path
        value = path if os.path.isabs(path) else os.path.relpath(
            os.path.abspath(path), os.path.dirname(os.path.abspath(target)))
        cfg.set("cache.dir", value, scope=scope or "project")
        if not json_out:
            return
    dvlite_dir = os.path.dirname(cfg.files["project"].path) if "project" in cfg.files else None
    shown = effective(cfg, dvlite_dir) if dvlite_dir else cfg.get_path("cache.dir")
    if json_out:
        origin = cfg.origin("cache.dir")
        return ui.emit_json({"cache_dir": shown, "scope": origin.scope if origin else "default",
                             "path": origin.path if origin else None})
    if shown is None:
        raise typer.Exit(1)
    ui.say(shown)


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


def register(app: typer.Typer) -> None:
    app.command()(gc)
    app.command()(fsck)
    app.command()(config)
    app.command()(doctor)
    cache_app = typer.Typer(help="The cache: where it is.", no_args_is_help=True)
    cache_app.command("dir")(cache_dir)
    app.add_typer(cache_app, name="cache")
