"""The model registry: `model register`, `model promote`, `model ls`, `model get`."""

from __future__ import annotations

import os

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, find_repo


def _metrics_text(metrics: dict) -> str:
    flat = [f"{k}={v}" for values in metrics.values() for k, v in values.items()]
    return ", ".join(flat[:4]) + (" ..." if len(flat) > 4 else "")


def register_cmd(
    name: str = typer.Argument(..., help="Model name (lowercase letters, digits, - and _)."),
    path: str = typer.Option(..., "--path", help="The tracked artifact (file or directory)."),
    version: str = typer.Option(..., "--version", help="vMAJOR.MINOR.PATCH."),
    stage: str | None = typer.Option(None, "--stage", help="Also assign this stage."),
    rev: str = typer.Option("HEAD", "--rev", help="The commit that produced it."),
    json_out: bool = JSON,
) -> None:
    """Record a model version as an annotated git tag NAME@vX.Y.Z (GTO's convention)."""
    from dvlite.models.registry import register
    from dvlite.outputs import to_rel

    repo = find_repo()
    made, stage_tag = register(repo, name, to_rel(repo, path), version, rev, stage)
    if json_out:
        return ui.emit_json({"tag": made.tag, "stage_tag": stage_tag, "commit": made.commit,
                             "record": made.record})
    a = made.record.artifact
    ui.say(f"Created tag {made.tag} on {made.commit[:10]}: {a.path} ({a.kind}, {ui.human_size(a.size)})")
    if stage_tag:
        ui.say(f"Created tag {stage_tag}: {name} {version} is in stage {stage}")
    ui.say("Share it with `git push --tags` (or `git push origin " + made.tag + "`).")


def promote_cmd(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="A registered version, vX.Y.Z."),
    stage: str = typer.Option(..., "--stage", help="The stage to assign (dev, staging, prod, ...)."),
) -> None:
    """Assign a stage to a registered version: tag NAME#STAGE#N."""
    from dvlite.models.registry import promote

    tag = promote(find_repo(), name, version, stage)
    ui.say(f"Created tag {tag}: {name} {version} is in stage {stage}")


def ls_cmd(json_out: bool = JSON) -> None:
    """Every model: its versions, the stages they hold, their metrics."""
    from dvlite.models.registry import read_registry

    repo = find_repo()
    models = read_registry(repo.require_scm().worktree)
    if json_out:
        return ui.emit_json([{"name": m.name, "stages": m.stages, "versions": [
            {"version": v.version, "tag": v.tag, "commit": v.commit, "stages": v.stages,
             "artifact": v.record.artifact, "metrics": v.record.metrics, "params": v.record.params}
            for v in m.versions]} for m in models.values()])
    if not models:
        ui.say("No models registered. Register one with `dvlite model register NAME --path PATH --version v1.0.0`.")
        return
    rows = []
    for m in models.values():
        for v in reversed(m.versions):
            a = v.record.artifact
            rows.append([m.name, v.version, ", ".join(sorted(v.stages)), v.commit[:10],
                         a.path if a else "(not made by dvlite)", _metrics_text(v.record.metrics)])
    ui.table(["model", "version", "stages", "commit", "artifact", "metrics"], rows)


def get_cmd(
    ref: str = typer.Argument(..., help="NAME@vX.Y.Z, NAME#STAGE, or NAME (its latest version)."),
    out: str | None = typer.Option(None, "-o", "--out", help="Where to write it (default: its name)."),
    repo_url: str | None = typer.Option(None, "--repo", help="Another repository (URL or path)."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="Remote to fetch from."),
    json_out: bool = JSON,
) -> None:
    """Download a model version's artifact (verified), without a checkout."""
    from dvlite.errors import NotARepoError
    from dvlite.models.registry import get

    try:
        repo = find_repo()
    except NotARepoError:
        if repo_url is None:
            raise
        repo = None
    chosen, result = get(repo, ref, out, repo_url, remote)
    if json_out:
        return ui.emit_json({"model": chosen.name, "version": chosen.version, "tag": chosen.tag,
                             "get": result})
    ui.say(f"{chosen.name} {chosen.version} ({chosen.tag}): {result.path} -> "
           f"{os.path.relpath(result.out)} ({result.files} file(s), {ui.human_size(result.size)})")


def register(app: typer.Typer) -> None:
    model_app = typer.Typer(help="The model registry: versions and stages as git tags.",
                            no_args_is_help=True)
    model_app.command("register")(register_cmd)
    model_app.command("promote")(promote_cmd)
    model_app.command("ls")(ls_cmd)
    model_app.command("get")(get_cmd)
    app.add_typer(model_app, name="model")
