"""Pipeline commands: stage add, repro, dag, params diff, metrics show/diff, lineage."""

from __future__ import annotations

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, find_repo, locked

MD = typer.Option(False, "--md", help="A Markdown table (for a CI bot to post).")


def stage_add(
    cmd: list[str] = typer.Argument(..., help="The command (quote it, or put it after --)."),
    name: str = typer.Option(..., "-n", "--name", help="Stage name."),
    deps: list[str] = typer.Option(None, "-d", "--deps", help="A dependency (repeatable)."),
    outs: list[str] = typer.Option(None, "-o", "--outs", help="An output, cached (repeatable)."),
    params: list[str] = typer.Option(None, "-p", "--params",
                                     help="A param key, or FILE:key1,key2 (repeatable)."),
    metrics: list[str] = typer.Option(None, "-m", "--metrics", help="A metrics file, not cached."),
    wdir: str | None = typer.Option(None, "--wdir", help="Directory to run in (repo-relative)."),
) -> None:
    """Append a stage to dvlite.yaml (validated first; nothing is run)."""
    from dvlite.pipelines.project import add_stage

    repo = find_repo()
    with locked(repo, "stage add"):
        stage = add_stage(repo, name, " ".join(cmd), deps or [], outs or [], params or [],
                              metrics or [], wdir)
    ui.say(f"Added stage {stage.name!r} to dvlite.yaml")
    ui.say("Run it with `dvlite repro " + stage.name + "`.", style="dim")

def repro(
    targets: list[str] = typer.Argument(None, help="Stages (default: all); their upstream stages run too."),
    force: bool = typer.Option(False, "-f", "--force", help="Run even if nothing changed (no run cache)."),
    single_item: bool = typer.Option(False, "-s", "--single-item", help="Only the named stages."),
    downstream: bool = typer.Option(False, "--downstream", help="The named stages and those after them."),
    dry: bool = typer.Option(False, "--dry", help="Print what would run and why; run nothing."),
    keep_going: bool = typer.Option(False, "--keep-going", help="After a failure, run what does not depend on it."),
    no_run_cache: bool = typer.Option(False, "--no-run-cache", help="Do not restore outs from earlier runs."),
    json_out: bool = JSON,
) -> None:
    """Run the stages whose cmd, deps, params or outs changed since dvlite.lock, in order."""
    from dvlite.pipelines import repro as repro_mod

    repo = find_repo()

    def on_event(e) -> None:
        if json_out:
            return
        if e.kind == "output":
            ui.out.print(ui.escape(f"[{e.stage}] ") + ui.escape(e.text), highlight=False)
        elif e.kind == "start":
            ui.say(f"Running stage {e.stage!r}:", style="bold")
            ui.say(f"> {e.text}")
        elif e.kind == "restored":
            ui.say(f"Stage {e.stage!r} restored from the run cache (its command was not run).", style="cyan")
        elif e.kind == "up-to-date":
            ui.say(f"Stage {e.stage!r} didn't change, skipping.", style="dim")
        elif e.kind == "frozen":
            ui.say(f"Stage {e.stage!r} is frozen, skipping.", style="dim")
        elif e.kind == "would-run":
            ui.say(f"Would run stage {e.stage!r}: {'; '.join(e.reasons)}")
        elif e.kind == "skipped":
            ui.say(f"Stage {e.stage!r} not run: {e.text}.", style="yellow")
        elif e.kind == "done":
            ui.say(f"Updated dvlite.lock for stage {e.stage!r}.", style="green")

    with locked(repo, "repro"):
        result = repro_mod.repro(repo, targets or [], force=force, single_item=single_item,
                           downstream=downstream, dry=dry, keep_going=keep_going,
                           use_run_cache=not no_run_cache, on_event=on_event)
    if json_out:
        ui.emit_json(result)
    else:
        for stage, why in result.failed:
            ui.error(why, "its lock entry was not updated; the stages after it did not run")
        if dry and not result.would_run:
            ui.say("Nothing to run: every stage is up to date.")
        elif not dry and not (result.ran or result.restored or result.failed):
            ui.say("Data and pipelines are up to date.")
        elif result.ran or result.restored:
            ui.git_hint(sorted({"dvlite.lock", *result.gitignores}))
    if result.failed:
        raise typer.Exit(1)

def dag(
    dot: bool = typer.Option(False, "--dot", help="Graphviz DOT text."),
    mermaid: bool = typer.Option(False, "--mermaid", help="Mermaid flowchart text."),
    json_out: bool = JSON,
) -> None:
    """The pipeline graph: stages and which feeds which."""
    from dvlite.pipelines.project import load_pipeline

    pipe = load_pipeline(find_repo())
    order = pipe.order()
    edges = pipe.edges()
    if json_out:
        return ui.emit_json({"stages": order, "edges": [list(e) for e in edges]})
    if dot:
        lines = ["digraph dvlite {"] + [f'    "{n}";' for n in order]
        lines += [f'    "{a}" -> "{b}";' for a, b in edges] + ["}"]
        ui.out.file.write("\n".join(lines) + "\n")
        return
    if mermaid:
        ids = {n: f"s{i}" for i, n in enumerate(order)}
        lines = ["flowchart TD"] + [f'    {ids[n]}["{n}"]' for n in order]
        lines += [f"    {ids[a]} --> {ids[b]}" for a, b in edges]
        ui.out.file.write("\n".join(lines) + "\n")
        return
    down: dict[str, list[str]] = {}
    for a, b in edges:
        down.setdefault(a, []).append(b)
    for n in order:
        targets = down.get(n, [])
        ui.say(f"* {n}" + (f"  -> {', '.join(targets)}" if targets else ""))

def params_diff(
    a_rev: str | None = typer.Argument(None, help="Old revision (default HEAD)."),
    b_rev: str | None = typer.Argument(None, help="New revision (default: the workspace)."),
    show_all: bool = typer.Option(False, "--all", help="Show unchanged params too."),
    json_out: bool = JSON,
    md: bool = MD,
) -> None:
    """Params that differ between two revisions (default HEAD vs the workspace)."""
    from dvlite.pipelines import values

    rows = values.params_diff(find_repo(), a_rev, b_rev, show_all)
    _changes_table(rows, json_out, md, "params", a_rev or "HEAD", b_rev or "workspace")

def metrics_show(
    all_commits: bool = typer.Option(False, "--all-commits", help="Every commit's metrics."),
    json_out: bool = JSON,
    md: bool = MD,
) -> None:
    """Metrics values from the stages' metrics files (JSON, YAML or TOML)."""
    from dvlite.formats import params as P
    from dvlite.pipelines import values

    rows = values.metrics_show(find_repo(), all_commits)
    if json_out:
        return ui.emit_json(rows)
    if not rows:
        ui.say("No metrics.")
        return
    columns = (["rev"] if all_commits else []) + ["path", "metric", "value"]
    body = [([r["rev"]] if all_commits else []) + [r["path"], r["key"], P.show(r["value"])] for r in rows]
    _table(columns, body, md)

def metrics_diff(
    a_rev: str | None = typer.Argument(None, help="Old revision (default HEAD)."),
    b_rev: str | None = typer.Argument(None, help="New revision (default: the workspace)."),
    show_all: bool = typer.Option(False, "--all", help="Show unchanged metrics too."),
    json_out: bool = JSON,
    md: bool = MD,
) -> None:
    """Metrics that differ between two revisions, with numeric changes."""
    from dvlite.pipelines import values

    rows = values.metrics_diff(find_repo(), a_rev, b_rev, show_all)
    _changes_table(rows, json_out, md, "metrics", a_rev or "HEAD", b_rev or "workspace")

def lineage(
    path: str = typer.Argument(..., help="An artifact: a stage out or tracked data."),
    rev: str | None = typer.Option(None, "--rev", help="At a git revision (read from history)."),
    json_out: bool = JSON,
) -> None:
    """Where an artifact came from: its stage, command, inputs with digests, params, upstream."""
    from dvlite.outputs import to_rel
    from dvlite.pipelines import lineage as lineage_mod

    repo = find_repo()
    doc = lineage_mod.lineage(repo, to_rel(repo, path), rev)  # PATH need not exist now (--rev)
    if json_out:
        return ui.emit_json(doc)
    ui.say(f"{doc['target']} at {doc['rev']}:", style="bold")
    _print_node(doc["lineage"], "", "")


def _print_node(node: dict, lead: str, indent: str) -> None:
    from dvlite.formats.params import show

    where = {"matches": "workspace matches", "differs": "workspace differs",
             "missing": "missing in the workspace"}[node["workspace"]]
    files = f", {node['files']} files" if node["kind"] == "dir" else ""
    label = {"stage": "", "tracked": f" (tracked by {node.get('pointer')})", "file": " (file)"}[node["source"]]
    ui.say(f"{lead}{node['path']}{label}: {node['digest']} ({ui.human_size(node['size'])}{files}; {where})")
    if "recorded_digest" in node:
        ui.say(f"{indent}  the stage ran on {node['recorded_digest']}", style="yellow")
    stage = node.get("stage")
    if stage is None:
        return
    cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " && ".join(stage["cmd"])
    ui.say(f"{indent}  produced by stage {stage['name']!r}: {cmd}")
    for file, values in sorted(stage["params"].items()):
        for key, value in sorted(values.items()):
            ui.say(f"{indent}  param {key} = {show(value)} ({file})")
    for dep in stage["deps"]:
        _print_node(dep, indent + "  <- ", indent + "     ")


def _table(columns: list[str], rows: list[list[str]], md: bool) -> None:
    if md:
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
        ui.out.file.write("\n".join(lines) + "\n")
    else:
        ui.table(columns, rows)


def _changes_table(rows, json_out: bool, md: bool, what: str, a: str, b: str) -> None:
    from dvlite.formats.params import show

    if json_out:
        return ui.emit_json(rows)
    if not rows:
        if md:
            ui.out.file.write(f"No {what} changed between {a} and {b}.\n")
        else:
            ui.say(f"No {what} changed between {a} and {b}.")
        return
    body = []
    for r in rows:
        change = "" if r.change is None else (f"+{r.change}" if r.change > 0 else str(r.change))
        body.append([r.path, r.key, show(r.old), show(r.new), change])
    _table(["path", what.removesuffix("s"), a, b, "change"], body, md)


def register(app: typer.Typer) -> None:
    stage_app = typer.Typer(help="Manage pipeline stages in dvlite.yaml.", no_args_is_help=True)
    stage_app.command("add")(stage_add)
    params_app = typer.Typer(help="Parameters of pipeline stages.", no_args_is_help=True)
    params_app.command("diff")(params_diff)
    metrics_app = typer.Typer(help="Metrics written by pipeline stages.", no_args_is_help=True)
    metrics_app.command("show")(metrics_show)
    metrics_app.command("diff")(metrics_diff)
    for command in (repro, dag, lineage):
        app.command()(command)
    app.add_typer(stage_app, name="stage")
    app.add_typer(params_app, name="params")
    app.add_typer(metrics_app, name="metrics")
