"""Plots commands: `plots show` (the workspace) and `plots diff` (revisions and experiments), as one
self-contained HTML file or `--json` data."""

from __future__ import annotations

import os

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, find_repo

DEFAULT_OUT = os.path.join("dvlite_plots", "index.html")
OUT = typer.Option(DEFAULT_OUT, "-o", "--out", help="The HTML file to write.")
OPEN = typer.Option(False, "--open", help="Open the page in a browser.")


def _targets(repo, targets: list[str] | None) -> list[str]:
    from dvlite.outputs import to_rel

    return [to_rel(repo, t) for t in targets or []]


def _revision(repo, name: str):
    """A name on the command line: `workspace`, an experiment, or a git revision."""
    from dvlite import scm as scm_mod
    from dvlite.errors import BadInputError
    from dvlite.experiments import refs
    from dvlite.pipelines.plotdata import Revision

    if name == "workspace":
        return Revision("workspace", None, "the files in the workspace")
    try:
        exp = refs.resolve(repo, name)
        return Revision(name, exp.commit, f"experiment of {exp.base[:7]} ({exp.commit[:7]})")
    except BadInputError:
        pass
    sha = repo.require_scm().resolve(name)
    subject = scm_mod.commit_dates(repo.require_scm().worktree, [sha]).get(sha, (0, ""))[1]
    return Revision(name, sha, f"{sha[:7]} {subject}")


def _render(repo, revisions, targets, metrics: bool, out: str, open_it: bool, json_out: bool) -> None:
    from dvlite.fsutil import atomic_write
    from dvlite.pipelines import plotdata
    from dvlite.plots import render

    plots = plotdata.build(repo, revisions, _targets(repo, targets))
    if metrics and len(revisions) > 1 and not targets:
        plots += plotdata.metric_plots(repo, revisions)
    labels = [r.label for r in revisions]
    if json_out:
        return ui.emit_json(render.to_json(plots, labels))
    if not plots:
        ui.say("No plots: declare them under `plots:` of a stage in dvlite.yaml.")
        return
    page = render.render_html(plots, labels, title=f"dvlite plots: {', '.join(labels)}",
                              details={r.label: r.detail for r in revisions})
    path = os.path.abspath(out)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, page.encode("utf-8"))
    ui.say(f"Wrote {len(plots)} plot(s) to {os.path.relpath(path)}")
    if open_it:
        import webbrowser

        webbrowser.open("file://" + path)


def show(
    targets: list[str] = typer.Argument(None, help="Plot files (default: every plot of dvlite.yaml)."),
    out: str = OUT,
    open_it: bool = OPEN,
    json_out: bool = JSON,
) -> None:
    """The plots of the workspace, drawn into one self-contained HTML file."""
    from dvlite.pipelines.plotdata import Revision

    _render(find_repo(), [Revision("workspace", None, "the files in the workspace")], targets, False,
            out, open_it, json_out)


def diff(
    revisions: list[str] = typer.Argument(None, help="Revisions or experiments (default: workspace and HEAD)."),
    targets: list[str] = typer.Option(None, "-t", "--targets", help="Only these plot files (repeatable)."),
    out: str = OUT,
    open_it: bool = OPEN,
    json_out: bool = JSON,
) -> None:
    """The plots and metrics of several revisions and experiments, one colour each, in one page."""
    repo = find_repo()
    names = list(dict.fromkeys(revisions or ["workspace", "HEAD"]))
    _render(repo, [_revision(repo, n) for n in names], targets, True, out, open_it, json_out)


def register(app: typer.Typer) -> None:
    plots_app = typer.Typer(help="Charts of the stages' plots and metrics.", no_args_is_help=True)
    plots_app.command("show")(show)
    plots_app.command("diff")(diff)
    app.add_typer(plots_app, name="plots")
