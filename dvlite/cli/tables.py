"""Tables inside tracked files: `table show`, `table diff`, `validate`, `drift`."""

from __future__ import annotations

import functools
import math
import sys

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, find_repo

FORMAT = typer.Option(None, "--format", help="Read as: parquet, ipc (feather, arrow), csv, tsv, jsonl.")
REMOTE = typer.Option(None, "-r", "--remote", help="Remote to fetch objects the cache lacks from.")
REV = typer.Option(None, "--rev", help="A git revision, or `workspace` for the file on disk.")
REVS = typer.Option(None, "--rev", help="A and B: git revisions or `workspace` (one: vs the workspace).")
STATS_SHOWN = 3  # top values per column in the stats table


def _rel(repo, path: str) -> str:
    from dvlite.errors import BadInputError
    from dvlite.outputs import to_rel

    rel = to_rel(repo, path)
    if not rel:
        raise BadInputError(f"{path} is the repository root; name a table file")
    return rel


def _two_revs(revs: list[str] | None) -> tuple[str | None, str | None]:
    from dvlite.errors import BadInputError

    revs = revs or []
    if len(revs) > 2:
        raise BadInputError("give at most two --rev (A and B)")
    if not revs:
        return "HEAD", None
    return (revs[0], None) if len(revs) == 1 else (revs[0], revs[1])


def _num(value) -> str:
    """Numbers to four significant digits, without an exponent between 0.001 and 1e9."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value == 0 or not math.isfinite(value) or not 1e-3 <= abs(value) < 1e9:
            return f"{value:.4g}"
        return f"{value:,.{max(0, 3 - math.floor(math.log10(abs(value))))}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _table(columns: list[str], rows: list[list[str]]) -> None:
    """Like ui.table, but rows never wrap: piped output keeps one line per row."""
    from rich.table import Table

    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for c in columns:
        t.add_column(ui.escape(c), no_wrap=True)
    for row in rows:
        t.add_row(*[ui.escape(str(v)) for v in row])
    _console().print(t)


@functools.cache
def _console():
    """The terminal's console; piped, one as wide as any row (rich would cut at 80)."""
    if ui.out.is_terminal:
        return ui.out
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, width=100_000)


def _cell(value) -> str:
    from dvlite.tables.report import cell

    return cell(value)


# --- table show ---------------------------------------------------------------------------

def show(
    path: str = typer.Argument(..., help="A tracked table file (or one inside a tracked directory)."),
    rev: str | None = REV,
    head: int | None = typer.Option(None, "--head", help="Show the first N rows (default 10)."),
    schema: bool = typer.Option(False, "--schema", help="Only the schema and row count."),
    stats: bool = typer.Option(False, "--stats", help="Per-column statistics (cached per object)."),
    fmt: str | None = FORMAT,
    remote: str | None = REMOTE,
    json_out: bool = JSON,
) -> None:
    """Schema, row count, first rows and statistics of a table at a revision."""
    from dvlite.tables import ops

    repo = find_repo()
    rows = head if head is not None else (0 if schema or stats else 10)
    result = ops.show(repo, _rel(repo, path), rev, rows, stats, fmt, remote)
    if json_out:
        return ui.emit_json(result)
    ui.say(f"{result.source}: {result.format}, {result.rows:,} rows, {len(result.columns)} columns")
    if result.stats is None:
        _table(["column", "type", "nullable"],
                 [[c.name, c.type, "yes" if c.nullable else "no"] for c in result.columns])
    else:
        _render_stats(result.stats)
    if result.head:
        names = [c.name for c in result.columns]
        _table(names, [[_cell(r.get(n)) for n in names] for r in result.head])


def _render_stats(stats) -> None:
    rows = []
    for c in stats.columns:
        distinct = f"{'' if c.distinct_exact else '~'}{c.distinct:,}"
        top = ", ".join(f"{_cell(v)} ({n:,})" for v, n in (c.values or [])[:STATS_SHOWN])
        if c.values and not c.values_exact:
            top = "~ " + top
        nulls = f"{c.nulls:,}" + (f" (+{c.nans:,} NaN)" if c.nans else "")
        rows.append([c.name, c.type, nulls, distinct, _cell(_num(c.min)), _cell(_num(c.max)),
                     _num(c.mean), _num(c.std), top])
    _table(["column", "type", "nulls", "distinct", "min", "max", "mean", "std", "top values"], rows)


def key_columns(key: str | None) -> list[str] | None:
    return [k.strip() for k in key.split(",") if k.strip()] if key else None


# --- table diff ---------------------------------------------------------------------------

def table_diff(
    path: str = typer.Argument(..., help="A tracked table file (or one inside a tracked directory)."),
    rev: list[str] | None = REVS,
    key: str | None = typer.Option(None, "--key", help="Key column(s), comma-separated: match rows by key."),
    fmt: str | None = FORMAT,
    remote: str | None = REMOTE,
    md: bool = typer.Option(False, "--md", help="Markdown (for a pull-request comment)."),
    json_out: bool = JSON,
) -> None:
    """Schema and row changes of a table between two revisions (default HEAD and the workspace)."""
    from dvlite.tables import ops

    repo = find_repo()
    a, b = _two_revs(rev)
    keys = key_columns(key)
    result = ops.diff(repo, _rel(repo, path), a, b, keys, fmt, remote)
    if json_out:
        return ui.emit_json(result)
    render_diff(result, md)


def render_diff(result, md: bool) -> None:
    """One table diff: rich tables, or GitHub Markdown with `md`."""
    from dvlite.tables import report

    if md:
        sys.stdout.write(report.markdown(result) + "\n")
        return
    ui.say(report.summary(result))
    for section in report.sections(result):
        ui.say(f"\n{section.title}", style="bold")
        _table(section.columns, section.rows)


# --- validate -----------------------------------------------------------------------------

def validate(
    paths: list[str] = typer.Argument(None, help="Paths with a contract (default: all in dvlite.yaml)."),
    rev: str | None = REV,
    fmt: str | None = FORMAT,
    remote: str | None = REMOTE,
    json_out: bool = JSON,
) -> None:
    """Run the contracts of dvlite.yaml's `checks:` section; exit 1 when one fails."""
    from dvlite.tables import ops

    repo = find_repo()
    reports = ops.validate(repo, [_rel(repo, p) for p in paths or []], rev, fmt, remote)
    passed = all(r.passed for r in reports)
    if json_out:
        ui.emit_json({"passed": passed, "reports": reports})
    elif not reports:
        ui.say("No contracts to run: add a `checks:` section to dvlite.yaml.")
    for r in reports if not json_out else []:
        _render_report(r)
    if not passed:
        raise typer.Exit(1)


def _render_report(r) -> None:
    verdict = "passed" if r.passed else "FAILED"
    ui.say(f"{r.source}: {verdict} ({r.rows:,} rows, contract {r.contract})",
           style="green" if r.passed else "bold red")
    _table(["", "check", "target", "failing rows", "detail"],
             [["ok" if c.passed else "FAIL", c.check, c.target, _num(c.failing_rows) if c.failing_rows else "",
               c.detail] for c in r.checks])
    for c in r.checks:
        if c.sample and not c.passed:
            names = list(dict.fromkeys(k for row in c.sample for k in row))
            ui.say(f"\n{c.check} {c.target}: sample of failing rows", style="bold")
            _table(names, [[_cell(row.get(n)) for n in names] for row in c.sample])


# --- drift --------------------------------------------------------------------------------

def drift(
    path: str = typer.Argument(..., help="A tracked table file (or one inside a tracked directory)."),
    rev: list[str] | None = REVS,
    columns: list[str] | None = typer.Option(None, "--columns", help="Only these columns (comma-separated)."),
    all_commits: bool = typer.Option(False, "-A", "--all-commits",
                                     help="Every commit of HEAD's history that changed the file."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when any column drifted."),
    fmt: str | None = FORMAT,
    remote: str | None = REMOTE,
    json_out: bool = JSON,
) -> None:
    """Distribution drift of a table between two revisions, or along its history (-A)."""
    from dvlite.errors import BadInputError
    from dvlite.tables import ops

    repo = find_repo()
    rel = _rel(repo, path)
    wanted = [c.strip() for item in columns or [] for c in item.split(",") if c.strip()] or None
    if all_commits:
        if rev:
            raise BadInputError("-A compares every version; leave out --rev")
        history = ops.drift_history(repo, rel, wanted, fmt, remote)
        drifted = any(s.report.drifted for s in history.steps)
        if json_out:
            ui.emit_json(history)
        else:
            _render_history(history)
    else:
        a, b = _two_revs(rev)
        result = ops.drift(repo, rel, a, b, wanted, fmt, remote)
        drifted = bool(result.drifted)
        if json_out:
            ui.emit_json(result)
        else:
            _render_drift(result)
    if exit_code and drifted:
        raise typer.Exit(1)


def _render_drift(r) -> None:
    ui.say(f"{r.a} -> {r.b}: rows {r.rows_a:,} -> {r.rows_b:,}")
    rows = []
    for c in r.columns:
        nulls = f"{_pct(c.null_rate_a)} -> {_pct(c.null_rate_b)}"
        distinct = f"{_num(c.distinct_a)} -> {_num(c.distinct_b)}"
        rows.append([c.column, c.kind, c.status, _num(c.psi), _num(c.ks), _num(c.js), nulls, distinct,
                     "; ".join(c.reasons)])
    _table(["column", "kind", "status", "psi", "ks", "js", "nulls", "distinct", "why"], rows)
    if r.drifted:
        ui.say(f"verdict: drift in {len(r.drifted)} of {len(r.columns)} columns: {', '.join(r.drifted)}",
               style="bold yellow")
    else:
        ui.say("verdict: no drift", style="green")


def _pct(rate) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


def _render_history(h) -> None:
    if not h.steps:
        ui.say(f"{h.path}: only one version in HEAD's history ({h.versions[0].commit[:12]}); nothing to compare.")
        return
    rows = [[s.commit[:12], _cell(s.subject), f"{s.report.rows_a:,} -> {s.report.rows_b:,}",
             s.report.verdict, ", ".join(s.report.drifted)] for s in h.steps]
    ui.say(f"{h.path}: {len(h.versions)} versions in HEAD's history")
    _table(["commit", "subject", "rows", "verdict", "drifted columns"], rows)


def register(app: typer.Typer) -> None:
    table_app = typer.Typer(help="Look inside tables: schema, statistics, row diffs.",
                            no_args_is_help=True)
    table_app.command("show")(show)
    table_app.command("diff")(table_diff)
    app.add_typer(table_app, name="table")
    app.command("validate")(validate)
    app.command("drift")(drift)
