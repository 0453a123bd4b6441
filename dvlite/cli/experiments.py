"""Experiment commands: `exp run|show|diff|apply|branch|remove|list|push|pull` and `queue ...`."""

from __future__ import annotations

import time

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, find_repo, locked

MD = typer.Option(False, "--md", help="A Markdown table.")
REMOTE = typer.Option(None, "-r", "--remote", help="The dvlite remote for the data (default: core.remote).")
JOBS = typer.Option(None, "-j", "--jobs", help="Parallel transfers.")


def run(
    targets: list[str] = typer.Argument(None, help="Stages to run (default: all)."),
    set_params: list[str] = typer.Option(
        None, "-S", "--set-param",
        help="[FILE:]KEY=VALUE (FILE: params.yaml by default); VALUE may be a,b,c or "
             "range(start, stop, step) for a sweep (with --queue). Repeatable."),
    name: str | None = typer.Option(None, "-n", "--name", help="The experiment's name (default: generated)."),
    queue: bool = typer.Option(False, "--queue", help="Queue it (every combination of a sweep) for `dvlite queue start`."),
    json_out: bool = JSON,
) -> None:
    """Run the pipeline with changed params and record the result as an experiment."""
    from dvlite.cli.pipeline import print_event
    from dvlite.experiments import run as run_mod

    repo = find_repo()
    if queue:
        entries = run_mod.exp_queue(repo, set_params or [], name, targets or [])
        if json_out:
            return ui.emit_json([{"name": e.name, "base": e.base, "params": e.params} for e in entries])
        from dvlite.experiments.overrides import describe

        for e in entries:
            ui.say(f"Queued experiment {e.name}: {describe(e.params) or 'no changes'}")
        dirty = run_mod.uncommitted(repo)
        if dirty:
            ui.note(f"Queued experiments start from commit {entries[0].base[:7]}: the uncommitted "
                    f"changes of {len(dirty)} file(s) ({', '.join(dirty[:3])}"
                    f"{', ...' if len(dirty) > 3 else ''}) are not part of them.")
        ui.say("Run the queue with `dvlite queue start`.", style="dim")
        return
    with locked(repo, "exp run"):
        result = run_mod.exp_run(repo, set_params or [], name, targets or [],
                                 on_event=(lambda e: None) if json_out else print_event)
    if json_out:
        ui.emit_json({"name": result.name, "base": result.base, "commit": result.commit,
                      "params": result.changes, "ran": result.repro.ran,
                      "restored": result.repro.restored, "failed": result.repro.failed})
    run_mod.raise_failed(result)
    if not json_out:
        ui.say(f"\nRan experiment {result.name} (commit {result.commit[:10]} of {result.base[:7]}).",
               style="green")
        ui.say("Compare with `dvlite exp show`; keep it with `dvlite exp apply` or `dvlite exp branch`.",
               style="dim")


# --- exp show ----------------------------------------------------------------------------

def show(
    all_commits: bool = typer.Option(False, "-A", "--all-commits", help="Experiments of every commit, not only HEAD's."),
    sort_by: str | None = typer.Option(None, "--sort-by", help="A metric or param to sort experiments by."),
    sort_order: str = typer.Option("asc", "--sort-order", help="asc or desc."),
    only_changed: bool = typer.Option(False, "--only-changed", help="Only params and metrics that differ between rows."),
    drop: str | None = typer.Option(None, "--drop", help="Hide the columns matching this regex."),
    keep: str | None = typer.Option(None, "--keep", help="Keep the columns matching this regex (even if --drop matches)."),
    deps: bool = typer.Option(False, "--deps", help="Add the dependencies' digests that differ between rows."),
    json_out: bool = JSON,
    csv: bool = typer.Option(False, "--csv", help="CSV of every column."),
    md: bool = MD,
) -> None:
    """The workspace, the base commit and every experiment: params, metrics, state."""
    from dvlite.cli import exptable
    from dvlite.experiments import show as show_mod

    if sort_order not in ("asc", "desc"):
        raise typer.BadParameter("--sort-order is asc or desc")
    rows = show_mod.collect(find_repo(), all_commits, deps)
    columns = exptable.columns(rows, only_changed, drop, keep, deps)
    rows = exptable.sort_rows(rows, columns, sort_by, sort_order == "desc")
    if json_out:
        return ui.emit_json(exptable.as_json(rows))
    if csv:
        return exptable.write_csv(rows, columns)
    if md:
        return exptable.write_md(rows, columns)
    exptable.print_table(rows, columns)


def diff(
    a: str = typer.Argument(..., help="An experiment (or a git revision)."),
    b: str | None = typer.Argument(None, help="Compare with this one (default: A's base commit)."),
    show_all: bool = typer.Option(False, "--all", help="Unchanged values too."),
    json_out: bool = JSON,
    md: bool = MD,
) -> None:
    """Params and metrics that differ between two experiments (or an experiment and its base)."""
    from dvlite.cli.pipeline import changes_table
    from dvlite.experiments import show as show_mod

    params, metrics, old, new = show_mod.diff(find_repo(), a, b, show_all)
    if json_out:
        return ui.emit_json({"old": old, "new": new, "params": params, "metrics": metrics})
    old_label, new_label = b or old[:7], a
    changes_table(params, False, md, "params", old_label, new_label)
    changes_table(metrics, False, md, "metrics", old_label, new_label)


def apply(
    name: str = typer.Argument(..., help="The experiment."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite uncommitted changes."),
) -> None:
    """Put an experiment's params, lock, metrics and outputs into the workspace."""
    from dvlite.cli.common import report_problems
    from dvlite.experiments import manage

    repo = find_repo()
    with locked(repo, "exp apply"):
        result = manage.apply(repo, name, force)
    ui.say(f"Applied experiment {result.name} ({result.commit[:10]}): "
           f"{len(result.written) + len(result.deleted)} file(s)"
           + (f", {len(result.checkout.written)} output file(s) checked out" if result.checkout else ""))
    if result.checkout is not None and not result.checkout.ok:
        report_problems(result.checkout.missing, "are not in the cache")
        ui.say("Fetch them with `dvlite pull` (the workspace's dvlite.lock now names them).", style="yellow")
        raise typer.Exit(1)
    ui.say("Commit it to keep it on this branch (or make a branch with `dvlite exp branch`).", style="dim")


def branch(
    name: str = typer.Argument(..., help="The experiment."),
    branch_name: str = typer.Argument(..., help="The new branch."),
) -> None:
    """Make a git branch of an experiment's commit."""
    from dvlite.experiments import manage

    exp = manage.branch(find_repo(), name, branch_name)
    ui.say(f"Branch {branch_name!r} now points at experiment {exp.name} ({exp.commit[:10]}).")
    ui.say(f"Switch to it with `git checkout {branch_name} && dvlite checkout`.", style="dim")


def remove(
    names: list[str] = typer.Argument(None, help="Experiments to remove."),
    everything: bool = typer.Option(False, "--all", help="Every experiment and every entry of the queue that is not running."),
    queued: bool = typer.Option(False, "--queue", help="Every queued experiment that has not started."),
) -> None:
    """Remove experiments (their refs; the data goes at the next `gc`) or queued ones."""
    from dvlite.experiments import manage

    result = manage.remove(find_repo(), names or [], everything, queued)
    ui.say(f"Removed {len(result.experiments)} experiment(s)"
           + (f" and {len(result.queued)} queue entr{'y' if len(result.queued) == 1 else 'ies'}"
              if result.queued else "") + ".")


def list_(
    all_commits: bool = typer.Option(False, "-A", "--all-commits", help="Of every commit."),
    json_out: bool = JSON,
) -> None:
    """The experiments of HEAD's commit (or of every commit)."""
    from dvlite.experiments import show as show_mod

    found = show_mod.listing(find_repo(), all_commits)
    if json_out:
        return ui.emit_json({base: [{"name": e.name, "commit": e.commit, "created": e.created}
                                    for e in exps] for base, exps in found.items()})
    if not found:
        ui.say("No experiments.")
    for base, exps in found.items():
        ui.say(f"{base[:7]}:", style="bold")
        for e in exps:
            ui.say(f"    {e.name}")


def push(
    git_remote: str = typer.Argument(..., help="The git remote (name or URL)."),
    names: list[str] = typer.Argument(None, help="Experiments (default: all)."),
    remote: str | None = REMOTE,
    jobs: int | None = JOBS,
) -> None:
    """Push experiments: their refs to a git remote, their data to the dvlite remote."""
    from dvlite.experiments import share

    repo = find_repo()
    with locked(repo, "exp push"):
        result = share.push(repo, git_remote, names or [], remote, jobs)
    _report_data(result.data, "pushed")
    if result.data is not None and not result.data.ok:
        ui.error("some data could not be pushed; no experiment ref was pushed")
        raise typer.Exit(5)
    ui.say(f"Pushed {len(result.experiments)} experiment(s) to {git_remote}.")


def pull(
    git_remote: str = typer.Argument(..., help="The git remote (name or URL)."),
    names: list[str] = typer.Argument(None, help="Experiments (default: all)."),
    remote: str | None = REMOTE,
    jobs: int | None = JOBS,
) -> None:
    """Fetch experiments: their refs from a git remote, their data from the dvlite remote."""
    from dvlite.experiments import share

    repo = find_repo()
    with locked(repo, "exp pull"):
        result = share.pull(repo, git_remote, names or [], remote, jobs)
    ui.say(f"Fetched {len(result.experiments)} experiment(s) from {git_remote}.")
    _report_data(result.data, "fetched")
    if result.data is not None and not result.data.ok:
        ui.error("some of their data could not be fetched")
        raise typer.Exit(5)


def _report_data(data, verb: str) -> None:
    if data is None:
        return
    count = getattr(data, "uploaded", None)
    if count is None:
        count = data.downloaded
    ui.say(f"Data: {verb} {count} object(s) ({data.remote}).", style="dim")


# --- queue -------------------------------------------------------------------------------

def queue_start(
    jobs: int | None = typer.Option(None, "-j", "--jobs", help="Experiments run at once (default: 1 here; with --dask, all)."),
    dask: str | None = typer.Option(None, "--dask", help="Run them on this Dask scheduler (tcp://HOST:PORT)."),
    git_url: str | None = typer.Option(None, "--git-url", help="Where Dask workers clone the repository from (default: this repository's path)."),
    connect_timeout: float = typer.Option(10.0, "--connect-timeout", help="Seconds to reach the Dask scheduler."),
) -> None:
    """Run the queued experiments (each in its own temporary work tree), then return."""
    from dvlite.experiments import runner

    repo = find_repo()
    started = time.monotonic()

    def on_event(e) -> None:
        if e.kind == "started":
            ui.say(f"Started {e.name}.")
        elif e.kind == "success":
            ui.say(f"Experiment {e.name} succeeded ({e.text[:10]}).", style="green")
        elif e.kind == "note":
            ui.note(e.text)
        else:
            ui.say(f"Experiment {e.name} failed: {e.text} (see `dvlite queue logs {e.name}`)", style="red")

    if dask:
        from dvlite.experiments import dask as dask_mod

        result = dask_mod.run_queue(repo, dask, jobs, git_url, connect_timeout, on_event)
    else:
        result = runner.run_queue(repo, jobs or 1, on_event)
    total = len(result.succeeded) + len(result.failed)
    ui.say(f"{total} experiment(s) in {time.monotonic() - started:.1f} s: "
           f"{len(result.succeeded)} succeeded, {len(result.failed)} failed.")
    if result.failed:
        raise typer.Exit(1)


def queue_status(json_out: bool = JSON) -> None:
    """Every experiment of the queue and its state."""
    from dvlite.experiments import queue as queue_mod
    from dvlite.experiments.overrides import describe

    entries = queue_mod.entries(find_repo())
    if json_out:
        return ui.emit_json(entries)
    if not entries:
        ui.say("The queue is empty.")
        return
    rows = []
    for e in entries:
        when = e.finished or e.started or e.queued
        rows.append([e.name, e.base[:7], e.state, time.strftime("%H:%M:%S", time.localtime(when)),
                     (e.error or describe(e.params))[:60]])
    ui.table(["experiment", "base", "state", "since", "params / error"], rows)


def queue_logs(
    name: str = typer.Argument(..., help="The queued experiment."),
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing while it runs."),
) -> None:
    """The output of a queued experiment's run."""
    import os
    import sys

    from dvlite.errors import DvliteError
    from dvlite.experiments import queue as queue_mod

    repo = find_repo()
    entry = queue_mod.find(repo, name)
    path = queue_mod.log_path(repo, entry)
    if not os.path.exists(path) and entry.state == "queued" and not follow:
        ui.say(f"{name} has not started yet.")
        return
    pos = 0
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            sys.stdout.write(chunk.decode("utf-8", "replace"))
            sys.stdout.flush()
            pos += len(chunk)
        if not follow:
            return
        try:
            entry = queue_mod.load(repo, entry)
        except (OSError, DvliteError):  # removed meanwhile
            return
        if entry.state in ("success", "failed"):
            if os.path.exists(path) and os.path.getsize(path) > pos:
                continue
            return
        time.sleep(0.2)


def queue_kill(name: str = typer.Argument(..., help="The running experiment.")) -> None:
    """Stop a running experiment (it is recorded as failed)."""
    from dvlite.experiments import queue as queue_mod
    from dvlite.experiments import runner

    repo = find_repo()
    runner.kill(repo, queue_mod.find(repo, name))
    ui.say(f"Stopping {name}.")


def queue_remove(
    names: list[str] = typer.Argument(None, help="Entries to remove."),
    queued: bool = typer.Option(False, "--queued", help="Every entry that has not started."),
    failed: bool = typer.Option(False, "--failed", help="Every failed entry."),
    success: bool = typer.Option(False, "--success", help="Every succeeded entry (the experiments stay)."),
    everything: bool = typer.Option(False, "--all", help="Every entry that is not running."),
) -> None:
    """Remove entries (and their logs) from the queue; running ones are left (`queue kill`)."""
    from dvlite.errors import BadInputError
    from dvlite.experiments import queue as queue_mod

    repo = find_repo()
    if not (names or queued or failed or success or everything):
        raise BadInputError("name the entries to remove, or use --queued, --failed, --success or --all")
    states = {s for s, on in (("queued", queued), ("failed", failed), ("success", success)) if on}
    if everything:
        states = {"queued", "failed", "success"}
    chosen = [e for e in queue_mod.entries(repo) if e.state in states]
    chosen += [queue_mod.find(repo, n) for n in names or []]
    removed = 0
    for e in {e.id: e for e in chosen}.values():
        if e.state == "running":
            ui.note(f"{e.name} is running: stop it first with `dvlite queue kill {e.name}`")
            continue
        queue_mod.remove(repo, e)
        removed += 1
    ui.say(f"Removed {removed} queue entr{'y' if removed == 1 else 'ies'}.")


def register(app: typer.Typer) -> None:
    exp_app = typer.Typer(help="Run, compare, keep and share experiments.", no_args_is_help=True)
    for command in (run, show, diff, apply, branch, remove, push, pull):
        exp_app.command()(command)
    exp_app.command("list")(list_)
    queue_app = typer.Typer(help="The queue of experiments: run it here or on a Dask cluster.",
                            no_args_is_help=True)
    queue_app.command("start")(queue_start)
    queue_app.command("status")(queue_status)
    queue_app.command("logs")(queue_logs)
    queue_app.command("kill")(queue_kill)
    queue_app.command("remove")(queue_remove)
    app.add_typer(exp_app, name="exp")
    app.add_typer(queue_app, name="queue")
