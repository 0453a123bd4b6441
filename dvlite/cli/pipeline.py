"""Pipeline commands: stage add, repro, dag, params diff, metrics show/diff/check, lineage."""

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
    json_out: bool = JSON,
) -> None:
    """Append a stage to dvlite.yaml (validated first; nothing is run)."""
    from dvlite.pipelines.project import add_stage

    repo = find_repo()
    with locked(repo, "stage add"):
        stage = add_stage(repo, name, " ".join(cmd), deps or [], outs or [], params or [],
                              metrics or [], wdir)
    if json_out:
        return ui.emit_json({"name": stage.name, "file": stage.file, "cmd": stage.cmd_record(),
                             "deps": list(stage.deps), "outs": [o.path for o in stage.outs]})
    ui.say(f"Added stage {stage.name!r} to dvlite.yaml")
    ui.say("Run it with `dvlite repro " + stage.name + "`.", style="dim")

def print_event(e) -> None:
    """One repro event, as `repro` prints it (also used by `exp run`)."""
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
    elif e.kind == "check-passed":
        ui.say(f"  ✓ {e.text}", style="green")
    elif e.kind == "check-failed":
        ui.say(f"  ✗ {e.text}", style="bold red")
    elif e.kind == "checks-skipped":
        ui.note(e.text)


def repro(
    targets: list[str] = typer.Argument(None, help="Stages (default: all); their upstream stages run too."),
    force: bool = typer.Option(False, "-f", "--force", help="Run even if nothing changed (no run cache)."),
    single_item: bool = typer.Option(False, "-s", "--single-item", help="Only the named stages."),
    downstream: bool = typer.Option(False, "--downstream", help="The named stages and those after them."),
    dry: bool = typer.Option(False, "--dry", help="Print what would run and why; run nothing."),
    keep_going: bool = typer.Option(False, "--keep-going", help="After a failure, run what does not depend on it."),
    no_run_cache: bool = typer.Option(False, "--no-run-cache", help="Do not restore outs from earlier runs."),
    no_checks: bool = typer.Option(False, "--no-checks", help="Skip data contracts and metric gates (said once)."),
    json_out: bool = JSON,
) -> None:
    """Run the stages whose cmd, deps, params or outs changed since dvlite.lock, in order."""
    from dvlite.pipelines import repro as repro_mod

    repo = find_repo()

    def on_event(e) -> None:
        if not json_out:
            print_event(e)

    with locked(repo, "repro"):
        result = repro_mod.repro(repo, targets or [], force=force, single_item=single_item,
                           downstream=downstream, dry=dry, keep_going=keep_going,
                           use_run_cache=not no_run_cache, checks=not no_checks, on_event=on_event)
    if json_out:
        ui.emit_json(result)
    else:
        for stage, why in result.failed:
            hint = result.hints.get(stage) or "its lock entry was not updated"
            ui.error(why, hint + "; the stages after it did not run")
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
    changes_table(rows, json_out, md, "params", a_rev or "HEAD", b_rev or "workspace")

def metrics_show(
    all_commits: bool = typer.Option(False, "-A", "--all-commits", help="Every commit's metrics."),
    chart: bool = typer.Option(False, "--chart", help="A sparkline per metric over the commits (with -A)."),
    metric: str | None = typer.Option(None, "--metric", help="With --chart: only this metric, as a text chart."),
    json_out: bool = JSON,
    md: bool = MD,
) -> None:
    """Metrics values from the stages' metrics files (JSON, YAML or TOML)."""
    from dvlite.formats import params as P
    from dvlite.pipelines import values

    rows = values.metrics_show(find_repo(), all_commits)
    if chart and not json_out:
        return _metric_charts(rows, metric)
    if json_out:
        return ui.emit_json(rows)
    if not rows:
        ui.say("No metrics.")
        return
    columns = (["rev"] if all_commits else []) + ["path", "metric", "value"]
    body = [([r["rev"]] if all_commits else []) + [r["path"], r["key"], P.show(r["value"])] for r in rows]
    _table(columns, body, md)

def _metric_charts(rows: list[dict], only: str | None) -> None:
    """Each metric over the commits, oldest first: a sparkline with its first and last values
    and its range; one metric (`--metric`) as a text chart."""
    import sys

    from dvlite.errors import BadInputError
    from dvlite.formats import params as P
    from dvlite.plots import text

    revs = list(dict.fromkeys(r["rev"] for r in rows))[::-1]
    series: dict[str, dict[str, object]] = {}
    for r in rows:
        series.setdefault(f"{r['path']}:{r['key']}", {})[r["rev"]] = r["value"]
    if only is not None:
        series = {k: v for k, v in series.items() if only in (k, k.split(":", 1)[1])}
        if not series:
            raise BadInputError(f"--metric {only}: no such metric")
    if not series:
        ui.say("No metrics.")
        return
    width = max(len(k) for k in series)
    lines = []
    for name, by_rev in series.items():
        values = [by_rev.get(rev) for rev in revs]
        numbers = [v for v in values if P.is_number(v)]
        span = f"  {P.show(numbers[0])} -> {P.show(numbers[-1])}  (min {P.show(min(numbers))}, " \
               f"max {P.show(max(numbers))})" if numbers else "  (not numeric)"
        lines.append(f"{name.ljust(width)}  {text.sparkline(values)}{span}")
    if len(series) == 1 and len(revs) > 1:
        (name, by_rev), = series.items()
        lines += ["", name] + text.line_chart([(rev, by_rev.get(rev)) for rev in revs])
    sys.stdout.write("\n".join(lines) + "\n")
    ui.note(f"{len(revs)} revision(s), oldest first: {revs[0]} ... {revs[-1]}")


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
    changes_table(rows, json_out, md, "metrics", a_rev or "HEAD", b_rev or "workspace")

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


def changes_table(rows, json_out: bool, md: bool, what: str, a: str, b: str) -> None:
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


def metrics_check(
    rev: str | None = typer.Option(None, "--rev", help="Check a commit's metrics instead of the workspace's."),
    baseline: str | None = typer.Option(None, "--baseline", help="What `previous` means (default HEAD, or REV~1)."),
    json_out: bool = JSON,
) -> None:
    """Judge the gates of dvlite.yaml (`accuracy: ">= 0.9"`): exit 1 when one fails."""
    from dvlite.pipelines.gates import check

    report = check(find_repo(), rev, baseline)
    if json_out:
        ui.emit_json({"rev": report.rev, "baseline": report.baseline, "passed": report.ok, "gates": [
            {"path": o.condition.path, "key": o.condition.key, "condition": o.condition.text,
             "value": o.value, "previous": o.previous, "bound": o.bound, "status": o.status}
            for o in report.outcomes]})
    else:
        rows = []
        for o in report.outcomes:
            detail = "" if o.bound is None or not o.condition.relative else \
                f"(bound {o.bound:g}, previous {o.previous})"
            status = {"failed": "FAILED", "no-baseline": "no baseline"}.get(o.status, o.status)
            rows.append([o.condition.path, o.condition.key, "" if o.value is None else str(o.value),
                         o.condition.text, status, detail])
        ui.table(["file", "metric", "value", "gate", "status", "detail"], rows)
        failed = sum(not o.ok for o in report.outcomes)
        base = f"baseline {report.baseline[:10]}" if report.baseline else "no baseline revision"
        ui.say(f"{failed} of {len(report.outcomes)} gates failed ({base})" if failed
               else f"All {len(report.outcomes)} gates passed ({base}).",
               style="bold red" if failed else "green")
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    stage_app = typer.Typer(help="Manage pipeline stages in dvlite.yaml.", no_args_is_help=True)
    stage_app.command("add")(stage_add)
    params_app = typer.Typer(help="Parameters of pipeline stages.", no_args_is_help=True)
    params_app.command("diff")(params_diff)
    metrics_app = typer.Typer(help="Metrics written by pipeline stages.", no_args_is_help=True)
    metrics_app.command("show")(metrics_show)
    metrics_app.command("diff")(metrics_diff)
    metrics_app.command("check")(metrics_check)
    for command in (repro, dag, lineage):
        app.command()(command)
    app.add_typer(stage_app, name="stage")
    app.add_typer(params_app, name="params")
    app.add_typer(metrics_app, name="metrics")
