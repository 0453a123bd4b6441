"""Pieces every command module shares: finding the repo, the lock, common options."""

from __future__ import annotations

import os

import typer

from dvlite.cli import output as ui

JSON = typer.Option(False, "--json", help="Machine-readable output.")


def complete_remote(incomplete: str) -> list[str]:
    """Shell completion: the remotes of the repository here (nothing outside one)."""
    try:
        from dvlite.remotes.config import remote_configs

        names = remote_configs(find_repo(check_config=False).config)
    except Exception:  # noqa: BLE001 - completion must never print an error
        return []
    return [n for n in sorted(names) if n.startswith(incomplete)]


def complete_tracked(incomplete: str) -> list[str]:
    """Shell completion: tracked paths (pointers and stage outs) starting with `incomplete`."""
    try:
        from dvlite.outputs import load_tracked

        repo = find_repo(check_config=False)
        rels = [os.path.relpath(repo.abs(t.rel)) for t in load_tracked(repo)]
    except Exception:  # noqa: BLE001 - completion must never print an error
        return []
    return sorted(r for r in set(rels) if r.startswith(incomplete))


REVS = {
    "all_branches": typer.Option(False, "--all-branches", help="Include the data of every branch tip."),
    "all_tags": typer.Option(False, "--all-tags", help="Include the data of every tag."),
    "all_commits": typer.Option(False, "--all-commits", help="Include the data of every commit."),
}


def find_repo(check_config: bool = True):
    from dvlite.repo import Repo

    repo = Repo.find(os.getcwd())
    if check_config:
        repo.check_config()
    return repo


def waiting(holder) -> None:
    """Said once while a command waits for the repository lock."""
    who = f"process {holder.pid} ({holder.command})" if holder else "another process"
    ui.note(f"waiting for the repository lock held by {who}...")


def locked(repo, command: str):
    """The repository lock, which every command that writes takes. They are the ones that
    move data, so the allocator is tuned here; read-only commands skip loading ctypes."""
    from dvlite.fsutil import tune_allocator

    tune_allocator()
    return repo.lock(command, waiting)


def progress_bar(label: str, quiet: bool = False):
    """A progress bar for long work (cli/progress.py: on a terminal, after about a second);
    none with `quiet`, `-q` or no terminal, decided before rich.progress (~25 ms) is imported."""
    import contextlib
    import sys

    from dvlite.progress import SILENT

    if quiet or ui.Mode.quiet or not sys.stderr.isatty():
        return contextlib.nullcontext(SILENT)
    from dvlite.cli.progress import work_progress

    return work_progress(label)


def cwd_rel(repo, rel: str) -> str:
    return os.path.relpath(repo.abs(rel))


def report_problems(items: list[tuple[str, str]], what: str) -> None:
    if items:
        ui.error(f"{len(items)} file(s) {what}:")
        for path, digest in items[:ui.CAP]:
            ui.err.print(f"    {ui.escape(path)} ({digest})", markup=True)
        if len(items) > ui.CAP:
            ui.err.print(f"    ... and {len(items) - ui.CAP} more")


# --- config scopes ----------------------------------------------------------------

SCOPE_OPTIONS = {
    "system": typer.Option(False, "--system", help="The machine's file (/etc/dvlite/config)."),
    "global": typer.Option(False, "--global",
                           help="Your file ($XDG_CONFIG_HOME/dvlite/config or ~/.config/dvlite/config)."),
    "project": typer.Option(False, "--project", help="The repository's .dvlite/config (committed)."),
    "local": typer.Option(False, "--local", help="The repository's .dvlite/config.local (untracked)."),
}


def config_scope_paths(environ=None):
    """Where the system and global config files are: `DVLITE_CONFIG_SYSTEM` and
    `DVLITE_CONFIG_GLOBAL` when set (as git's GIT_CONFIG_SYSTEM/GLOBAL), else /etc/dvlite/config
    and $XDG_CONFIG_HOME/dvlite/config (~/.config/dvlite/config)."""
    from dvlite.config import ScopePaths

    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CONFIG_HOME") or ""
    if not os.path.isabs(xdg):  # the XDG spec: a relative value is to be ignored
        home = env.get("HOME") or os.path.expanduser("~")
        xdg = os.path.join(home, ".config")
    return ScopePaths(system=env.get("DVLITE_CONFIG_SYSTEM") or "/etc/dvlite/config",
                      user=env.get("DVLITE_CONFIG_GLOBAL") or os.path.join(xdg, "dvlite", "config"))


def use_config_scopes() -> None:
    """Make every Config read the system and global files (called once at start)."""
    from dvlite.config import use_scope_paths

    use_scope_paths(config_scope_paths())


def one_scope(**flags: bool) -> str | None:
    from dvlite.errors import BadInputError

    chosen = [name for name, on in flags.items() if on]
    if len(chosen) > 1:
        raise BadInputError(f"choose one of --{', --'.join(chosen)}")
    return chosen[0] if chosen else None


def config_for(scope: str | None):
    """The repository's config, or (for --system/--global outside one) the user's alone."""
    from dvlite.config import Config
    from dvlite.errors import NotARepoError

    use_config_scopes()
    try:
        return find_repo(check_config=False).config  # `config` is how a bad setting gets fixed
    except NotARepoError:
        if scope in ("system", "global"):
            return Config(None)
        raise
