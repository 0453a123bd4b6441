"""Pieces every command module shares: finding the repo, the lock, common options."""

from __future__ import annotations

import os

import typer

from dvlite.cli import output as ui

JSON = typer.Option(False, "--json", help="Machine-readable output.")


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
    return repo.lock(command, waiting)


def cwd_rel(repo, rel: str) -> str:
    return os.path.relpath(repo.abs(rel))


def report_problems(items: list[tuple[str, str]], what: str) -> None:
    if items:
        ui.error(f"{len(items)} file(s) {what}:")
        for path, digest in items[:ui.CAP]:
            ui.err.print(f"    {ui.escape(path)} ({digest})", markup=True)
        if len(items) > ui.CAP:
            ui.err.print(f"    ... and {len(items) - ui.CAP} more")
