"""`dvlite migrate`: switch a DVC repository to dvlite (a dry run unless --force)."""

from __future__ import annotations

import os

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, progress_bar, waiting


def _render_plan(plan, remove_dvc: bool) -> None:
    if not plan.items:
        ui.say("Nothing to migrate: no .dvc files, dvc.yaml, .dvcignore or DVC config found.")
        return
    ui.table(["convert", "to", "what"],
             [[i.source, i.target + (" (exists)" if i.exists else ""), i.detail] for i in plan.items])
    if remove_dvc and plan.remove:
        ui.say(f"\nThen remove {len(plan.remove)} DVC file(s):")
        ui.listing(plan.remove, cap=20)
    _render_notes(plan.notes)
    ui.say("\nDry run: nothing converted. Run `dvlite migrate --force` to convert.", style="dim")


def _render_notes(notes: list[str]) -> None:
    if notes:
        ui.say("\nNotes:")
        ui.listing(notes, cap=50)


def _render_result(result, root: str) -> None:
    sources = f"{result.from_cache} from the DVC cache, {result.from_workspace} from the " \
              f"workspace, {result.from_remote} from the DVC remote"
    ui.say(f"Migrated: {len(result.written)} file(s) written, {len(result.unchanged)} unchanged; "
           f"{result.objects} object(s), {ui.human_size(result.bytes)} verified ({sources}).")
    if result.removed:
        ui.say(f"Removed {len(result.removed)} DVC file(s); .dvc/ stays (old commits read its cache).")
    _render_notes(result.notes)
    rel = [os.path.relpath(os.path.join(root, p)) for p in result.written]
    if result.initialised:
        rel += [os.path.relpath(os.path.join(root, ".dvlite", ".gitignore"))]
    ui.git_hint(sorted(set(rel)))
    if result.removed:
        gone = " ".join(os.path.relpath(os.path.join(root, p)) for p in result.removed)
        ui.say(f"\tgit rm --cached -q {gone}")


def migrate(
    force: bool = typer.Option(False, "-f", "--force", help="Convert (without it: a dry run)."),
    remove_dvc: bool = typer.Option(False, "--remove-dvc",
                                    help="Delete the converted DVC files afterwards."),
    json_out: bool = JSON,
) -> None:
    """Switch from DVC: convert .dvc files, dvc.yaml, dvc.lock, .dvcignore and DVC's config."""
    from dvlite.dvc import migrate as mig

    root = mig.find_root(os.getcwd())
    survey = mig.survey(root)
    if not force:
        plan = mig.plan(survey, remove_dvc)
        return ui.emit_json(plan) if json_out else _render_plan(plan, remove_dvc)
    # migrate takes the lock itself: it may have to create .dvlite/ first
    with progress_bar("migrating", json_out) as callback:
        result = mig.apply(survey, waiting, callback, remove_dvc)
    if json_out:
        return ui.emit_json(result)
    _render_result(result, root)


def register(app: typer.Typer) -> None:
    app.command()(migrate)
